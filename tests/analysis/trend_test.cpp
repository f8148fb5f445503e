// The trend of a job's batches, on synthetic batches: flat, noisy, with outliers, growing.
#include "analysis/trend.h"

#include <catch2/catch.hpp>
#include <random>

using pgxform::analyze_batches;
using pgxform::BatchSample;
using pgxform::Trend;

namespace {

// `n` batches of `rows` rows whose cost per row is cost(i) ms, one after the other in time.
template <typename Cost>
std::vector<BatchSample> batches(std::size_t n, Cost cost, long long rows = 1000) {
  std::vector<BatchSample> out;
  double t = 1000;
  for (std::size_t i = 0; i < n; ++i) {
    BatchSample b;
    b.rows = rows;
    b.duration_ms = cost(i) * double(rows);
    b.position = double(i) / double(n);
    b.started_s = t;
    t += b.duration_ms / 1000 + 0.002;
    out.push_back(b);
  }
  return out;
}

// Multiplies each batch's duration by a factor in [1 - amplitude, 1 + amplitude].
std::vector<BatchSample> noisy(std::vector<BatchSample> in, unsigned seed, double amplitude) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> factor(1 - amplitude, 1 + amplitude);
  for (auto& b : in) b.duration_ms *= factor(rng);
  return in;
}

const auto flat = [](std::size_t) { return 0.01; };

}  // namespace

TEST_CASE("fewer than 12 batches cannot tell a trend") {
  CHECK_FALSE(pgxform::enough_batches(11));
  CHECK(pgxform::enough_batches(12));
  CHECK(analyze_batches(batches(11, flat)).trend == Trend::insufficient);
  CHECK(analyze_batches(batches(11, [](std::size_t i) { return 0.01 * double(i + 1); })).trend ==
        Trend::insufficient);
  CHECK(analyze_batches(batches(12, flat)).trend == Trend::flat);
  CHECK(analyze_batches({}).trend == Trend::insufficient);
  CHECK_FALSE(analyze_batches(batches(3, flat)).growth);
  CHECK(std::string(pgxform::trend_name(Trend::insufficient)) == "insufficient");
}

TEST_CASE("a job of steady batches is flat, with its figures") {
  const auto f = analyze_batches(batches(50, flat));
  CHECK(f.trend == Trend::flat);
  CHECK(f.batches == 50);
  CHECK(f.rows == 50000);
  CHECK(f.p50_ms == Approx(10));
  CHECK(f.p95_ms == Approx(10));
  CHECK(f.max_ms == Approx(10));
  CHECK(*f.growth == Approx(1));
  // 10 ms per 1000 rows, with 2 ms between batches: 1000 rows per 12 ms.
  CHECK(f.rows_per_second == Approx(1000 / 0.012).epsilon(0.01));
}

TEST_CASE("a single slow batch does not make a flat job growing") {
  for (std::size_t n : {12, 13, 20, 50, 200}) {
    for (std::size_t at : {std::size_t(0), n / 2, n - 2, n - 1}) {
      auto b = batches(n, flat);
      b[at].duration_ms *= 50;
      INFO("n = " << n << ", slow batch " << at);
      const auto f = analyze_batches(b);
      CHECK(f.trend == Trend::flat);
      CHECK(f.max_ms == Approx(500));
    }
  }
}

TEST_CASE("noise of 30% per batch does not make a flat job growing") {
  int growing = 0;
  for (std::size_t n : {12, 16, 20, 40, 100, 1000})
    for (unsigned seed = 0; seed < 300; ++seed) {
      auto b = noisy(batches(n, flat), seed, 0.3);
      if (seed % 3 == 0) b[seed % n].duration_ms *= 20;  // and a slow batch now and then
      if (analyze_batches(b).trend != Trend::flat) {
        ++growing;
        WARN("n = " << n << ", seed " << seed << " was called growing");
      }
    }
  CHECK(growing == 0);
}

TEST_CASE("a slow start (cold cache) and a short last batch do not make a job growing") {
  auto b = batches(30, [](std::size_t i) { return i < 3 ? 0.05 : 0.01; });
  b.back().rows = 7;
  b.back().duration_ms = 2;  // mostly fixed overhead: 0.29 ms per row
  CHECK(analyze_batches(b).trend == Trend::flat);
}

TEST_CASE("a cost per row rising linearly with progress (quadratic total) is growing") {
  // The planted O(N²) shape: a fixed cost per row plus a scan of everything done so far.
  const auto rising = [](std::size_t i) { return 0.01 * (1 + 0.1 * double(i)); };
  SECTION("within 20 batches, exactly") {
    const auto f = analyze_batches(batches(20, rising));
    CHECK(f.trend == Trend::growing);
    CHECK(*f.growth > 2);
  }
  SECTION("within 20 batches, with 30% noise") {
    int flat_ones = 0;
    for (unsigned seed = 0; seed < 300; ++seed)
      if (analyze_batches(noisy(batches(20, rising), seed, 0.3)).trend != Trend::growing)
        ++flat_ones;
    CHECK(flat_ones == 0);
  }
  SECTION("over a long job with noise and slow batches") {
    for (unsigned seed = 0; seed < 20; ++seed) {
      auto b = noisy(batches(3000, [](std::size_t i) { return 0.01 * (1 + 0.002 * double(i)); }),
                     seed, 0.3);
      b[100].duration_ms *= 100;
      CHECK(analyze_batches(b).trend == Trend::growing);
    }
  }
}

TEST_CASE("the ETA extrapolates the cost per row over the remaining rows") {
  SECTION("flat: the recent cost per row times the rows left") {
    auto b = batches(20, flat);
    for (auto& x : b) x.started_s = std::nan("");  // no clock: batch time is wall time
    const auto f = analyze_batches(b);
    CHECK(*pgxform::eta_seconds(f, 100000) == Approx(1.0).epsilon(0.01));
    CHECK(*pgxform::eta_seconds(f, 0) == 0);
  }
  SECTION("growing: the integral of the rising line") {
    // c(r) = 0.001 + 1e-7 r ms per row, r the rows done; 20 batches of 1000 rows.
    auto b = batches(20, [](std::size_t i) { return 0.001 + 1e-7 * (double(i) * 1000 + 500); });
    for (auto& x : b) x.started_s = std::nan("");
    const auto f = analyze_batches(b);
    REQUIRE(f.trend == Trend::growing);
    // From 20000 to 120000 rows: 0.001 * 1e5 + 1e-7 * (120000² - 20000²) / 2 ms = 800 ms.
    CHECK(*pgxform::eta_seconds(f, 100000) == Approx(0.8).epsilon(0.02));
  }
  SECTION("wall time per batch time so far converts the estimate") {
    const auto f = analyze_batches(batches(20, flat));  // 12 ms of wall time per 10 ms batch
    CHECK(*pgxform::eta_seconds(f, 100000) == Approx(1.2).epsilon(0.01));
  }
  CHECK_FALSE(pgxform::eta_seconds(analyze_batches({}), 100));
}

TEST_CASE("a pause between runs does not count as time spent on the job") {
  auto b = batches(20, flat);
  for (std::size_t i = 10; i < b.size(); ++i) b[i].started_s += 86400;  // resumed a day later
  const auto f = analyze_batches(b);
  CHECK(f.active_seconds == Approx(20 * 0.012).epsilon(0.02));
  CHECK(f.batch_seconds == Approx(0.2));
}

TEST_CASE("slices running at once make wall time shorter than batch time") {
  auto b = batches(40, flat);
  for (std::size_t i = 20; i < b.size(); ++i) b[i].started_s = b[i - 20].started_s;
  const auto f = analyze_batches(b);
  CHECK(f.batch_seconds == Approx(0.4));
  CHECK(f.active_seconds == Approx(20 * 0.012).epsilon(0.02));
  CHECK(f.rows_per_second == Approx(40000 / 0.24).epsilon(0.02));
}

TEST_CASE("percentiles and durations read as people write them") {
  CHECK(pgxform::percentile({1, 2, 3, 4, 5}, 50) == 3);
  CHECK(pgxform::percentile({1, 2}, 50) == Approx(1.5));
  CHECK(pgxform::percentile({}, 95) == 0);
  CHECK(pgxform::percentile({7}, 95) == 7);
  CHECK(pgxform::human_duration(0.25) == "250 ms");
  CHECK(pgxform::human_duration(42) == "42.0 s");
  CHECK(pgxform::human_duration(720) == "12 min");
  CHECK(pgxform::human_duration(12000) == "3 h 20 min");
  CHECK(pgxform::human_duration(3 * 86400 + 4 * 3600) == "3 d 4 h");
}

namespace {

// A time-sized job (target 500 ms) run `runs` times, `per_run` batches each: every run's sizer
// starts again at 1000 keys and doubles until its batches last the target. A batch costs 20 ms
// of overhead plus its rows at cost(rows done before it) ms each.
template <typename Cost>
std::vector<BatchSample> resumed_runs(int runs, int per_run, Cost cost) {
  std::vector<BatchSample> out;
  double t = 1000, done = 0;
  for (int run = 0; run < runs; ++run) {
    long long size = 1000;
    for (int i = 0; i < per_run; ++i) {
      BatchSample b;
      b.rows = size;
      b.asked = size;
      b.duration_ms = 20 + double(size) * cost(done);
      b.started_s = t;
      t += b.duration_ms / 1000 + 0.002;
      done += double(size);
      out.push_back(b);
      size = std::min(2 * size, (long long)(500 / (b.duration_ms / double(b.rows))));
    }
    t += 3600;  // stopped for an hour, then resumed
  }
  return out;
}

}  // namespace

TEST_CASE("a resumed time-sized job whose cost per row rises is growing, its ramp-ups aside") {
  // The cost per row nearly triples over the job, as in issue 26's O(N^2) job (3.1 to 8.6 us);
  // each run's first batches, small and mostly overhead, cost more per row than any later one.
  // Six runs of eight batches: 1.15 million rows, the cost per row 3.9 times its start at the
  // end (before ramp-ups were left out: flat, growth 1.5, z 2.98).
  const auto rising = [](double done) { return 0.003 * (1 + done / 400000); };
  const auto f = analyze_batches(resumed_runs(6, 8, rising));
  CHECK(f.trend == Trend::growing);
  CHECK(*f.growth > 1.8);
  // The same ramp-ups on a flat cost are flat.
  CHECK(analyze_batches(resumed_runs(4, 12, [](double) { return 0.003; })).trend == Trend::flat);
}
