// batch_sizer: sizes that follow a transform's cost per row, simulated (no clock, no database):
// each batch "lasts" fixed + rows × cost per row, as a batch of a real transform does.
#include "engine/batch_sizer.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "analysis/trend.h"

using pgxform::BatchSizer;
using pgxform::BatchSizing;

namespace {

constexpr double k_fixed_ms = 2;  // a batch's round trips and COMMIT

// Runs `n` batches; cost(i, rows_done) is the cost per row of batch i. Returns the sizes asked.
template <typename Cost>
std::vector<long> simulate(BatchSizer& sizer, int n, Cost cost, double noise = 0,
                           std::vector<pgxform::BatchSample>* samples = nullptr) {
  std::mt19937 random(7);
  std::uniform_real_distribution<double> wobble(1 - noise, 1 + noise);
  std::vector<long> sizes;
  double done = 0;
  for (int i = 0; i < n; ++i) {
    const long size = sizer.size();
    sizes.push_back(size);
    const double ms = (k_fixed_ms + double(size) * cost(i, done)) * wobble(random);
    sizer.batch_done(size, ms);
    if (samples) {
      pgxform::BatchSample b;
      b.rows = size;
      b.asked = size;
      b.duration_ms = ms;
      samples->push_back(b);
    }
    done += double(size);
  }
  return sizes;
}

double duration_of(long size, double ms_per_row) {
  return k_fixed_ms + double(size) * ms_per_row;
}

}  // namespace

TEST_CASE("time-sized batches converge near the target on a transform of steady cost",
          "[batch_sizer]") {
  BatchSizer sizer(BatchSizing{10000, 100, 1000000, 500});
  const double cost = 0.004;  // ms per row: 125,000 rows in 500 ms
  const auto sizes = simulate(
      sizer, 40, [&](int, double) { return cost; }, 0.05);
  for (std::size_t i = 20; i < sizes.size(); ++i) {
    INFO("batch " << i << " of " << sizes[i] << " rows");
    CHECK(duration_of(sizes[i], cost) > 500 * 0.75);
    CHECK(duration_of(sizes[i], cost) < 500 * 1.25);
  }
}

TEST_CASE("without history, the first batch is a probe whose cost sizes the second for the target",
          "[batch_sizer]") {
  // batch_size 10,000 of a cheap transform: 12 ms, where 500 ms are wanted.
  BatchSizer sizer(BatchSizing{10000, 100, 1000000, 500});
  const auto sizes = simulate(sizer, 6, [](int, double) { return 0.001; });
  CHECK(sizes[0] == 10000);
  for (std::size_t i = 1; i < sizes.size(); ++i) {
    INFO("batch " << i << " of " << sizes[i] << " rows");
    CHECK(duration_of(sizes[i], 0.001) > 500 * 0.75);
    CHECK(duration_of(sizes[i], 0.001) < 500 * 1.25);
  }
}

TEST_CASE("after the probe, time-sized batches grow at most twice per batch", "[batch_sizer]") {
  // A probe of 100 rows that mostly measured the batch's fixed cost (2 ms against 0.1 ms of
  // rows): its estimate is far too dear, and the batches after it double towards the target.
  BatchSizer sizer(BatchSizing{100, 100, 1000000, 500});
  const auto sizes = simulate(sizer, 30, [](int, double) { return 0.001; });
  CHECK(sizes.front() == 100);
  CHECK(sizes[1] > 2 * sizes[0]);
  for (std::size_t i = 2; i < sizes.size(); ++i) CHECK(sizes[i] <= 2 * sizes[i - 1]);
  CHECK(duration_of(sizes[16], 0.001) > 500 * 0.75);
}

TEST_CASE("a job's history sizes its first batch for the target, within the job's limits",
          "[batch_sizer]") {
  SECTION("0.004 ms a row: 125,000 rows make 500 ms") {
    BatchSizer sizer(BatchSizing{10000, 100, 1000000, 500}, 0.004);
    CHECK(sizer.size() == 125000);
    CHECK(sizer.ms_per_row() == 0.004);
  }
  SECTION("held to max_batch_size") {
    BatchSizer sizer(BatchSizing{10000, 100, 50000, 500}, 0.004);
    CHECK(sizer.size() == 50000);
  }
  SECTION("held to min_batch_size") {
    BatchSizer sizer(BatchSizing{10000, 100, 1000000, 500}, 50.0);
    CHECK(sizer.size() == 100);
  }
  SECTION("unused with fixed sizes, and when it says nothing") {
    CHECK(BatchSizer(BatchSizing{2500, 100, 1000000, 0}, 0.004).size() == 2500);
    CHECK(BatchSizer(BatchSizing{2500, 100, 1000000, 500}, 0.0).size() == 2500);
  }
  SECTION("later batches are averaged with it, not a probe") {
    BatchSizer sizer(BatchSizing{10000, 100, 1000000, 500}, 0.004);
    sizer.batch_done(125000, 125000 * 0.0044);  // 10 % dearer: within the dead band
    CHECK(sizer.size() == 125000);
  }
}

TEST_CASE("time-sized batches are cut at once after a batch far slower than the target",
          "[batch_sizer]") {
  BatchSizer sizer(BatchSizing{10000, 100, 1000000, 500});
  simulate(sizer, 30, [](int, double) { return 0.004; });
  const long before = sizer.size();
  // A batch ten times slower than its size should take (a lock wait, a cold table).
  sizer.batch_done(before, 10 * duration_of(before, 0.004));
  CHECK(sizer.size() <= before / 8);
  CHECK(sizer.size() >= before / 12);
}

TEST_CASE("time-sized batches do not oscillate on a noisy transform of steady cost",
          "[batch_sizer]") {
  BatchSizer sizer(BatchSizing{10000, 100, 1000000, 500});
  const auto sizes = simulate(
      sizer, 300, [](int, double) { return 0.01; }, 0.15);
  int changes = 0;
  for (std::size_t i = 30; i < sizes.size(); ++i) changes += sizes[i] != sizes[i - 1];
  CHECK(changes <= 5);
}

TEST_CASE("time-sized batches follow a transform that gets dearer", "[batch_sizer]") {
  BatchSizer sizer(BatchSizing{10000, 100, 1000000, 500});
  // Ten times dearer per row from batch 40 on.
  const auto sizes = simulate(sizer, 80, [](int i, double) { return i < 40 ? 0.002 : 0.02; });
  CHECK(duration_of(sizes[79], 0.02) < 500 * 1.25);
  CHECK(duration_of(sizes[79], 0.02) > 500 * 0.75);
}

TEST_CASE("time-sized batches stay within min_batch_size and max_batch_size", "[batch_sizer]") {
  SECTION("a transform so cheap that the target would want more than the maximum") {
    BatchSizer sizer(BatchSizing{1000, 100, 50000, 500});
    const auto sizes = simulate(sizer, 30, [](int, double) { return 0.00001; });
    CHECK(sizes.back() == 50000);
  }
  SECTION("a transform so dear that the target would want less than the minimum") {
    BatchSizer sizer(BatchSizing{1000, 100, 50000, 500});
    const auto sizes = simulate(sizer, 30, [](int, double) { return 50.0; });
    CHECK(sizes.back() == 100);
  }
  SECTION("a first size outside [min, max] widens the range to hold it") {
    BatchSizer sizer(BatchSizing{10, 100, 50000, 500});
    CHECK(sizer.size() == 10);
  }
}

TEST_CASE("target_batch_ms 0 keeps every batch at the first size", "[batch_sizer]") {
  BatchSizer sizer(BatchSizing{2500, 100, 1000000, 0});
  const auto sizes = simulate(sizer, 20, [](int i, double) { return i % 2 ? 0.0001 : 5.0; });
  for (long size : sizes) CHECK(size == 2500);
}

TEST_CASE("the trend of time-sized batches: a linear job stays flat, an O(N²) job grows",
          "[batch_sizer][trend]") {
  SECTION("steady cost per row, sizes growing from a small start") {
    BatchSizer sizer(BatchSizing{100, 100, 1000000, 500});
    std::vector<pgxform::BatchSample> samples;
    simulate(
        sizer, 120, [](int, double) { return 0.003; }, 0.1, &samples);
    CHECK(pgxform::analyze_batches(samples).trend == pgxform::Trend::flat);
  }
  SECTION("cost per row that grows with the rows done, sizes shrinking as it does") {
    BatchSizer sizer(BatchSizing{10000, 100, 1000000, 500});
    std::vector<pgxform::BatchSample> samples;
    const auto sizes = simulate(
        sizer, 120, [](int, double done) { return 0.001 + done * 1e-8; }, 0.1, &samples);
    CHECK(sizes.back() < sizes[10] / 2);  // the sizes did follow
    CHECK(pgxform::analyze_batches(samples).trend == pgxform::Trend::growing);
  }
}

TEST_CASE("a first size past every batch's limit is held to it, never overflowing",
          "[batch_sizer]") {
  BatchSizer sizer(BatchSizing{std::numeric_limits<long>::max(), 100, 1000000, 500});
  CHECK(sizer.size() == 1000000000);
  sizer.batch_done(1000, 1);  // cheap: it would grow
  CHECK(sizer.size() > 0);
  CHECK(sizer.size() <= 1000000000);
  BatchSizer fixed(BatchSizing{std::numeric_limits<long>::max(), 100, 1000000, 0});
  CHECK(fixed.size() == 1000000000);
}
