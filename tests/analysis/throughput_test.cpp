// The throughput series of the report's chart, from synthetic batches: pauses cut out of the
// time axis, one segment per stretch of work, no false dip after a resume.
#include "analysis/throughput.h"

#include <catch2/catch.hpp>

using pgxform::BatchSample;

namespace {

// `n` batches of 1000 rows, 100 ms each, one every 110 ms from `start` (seconds).
void add_run(std::vector<BatchSample>& batches, std::size_t n, double start) {
  for (std::size_t i = 0; i < n; ++i) {
    BatchSample b;
    b.rows = 1000;
    b.duration_ms = 100;
    b.started_s = start + 0.11 * double(i);
    batches.push_back(b);
  }
}

}  // namespace

TEST_CASE("a run without pauses is one segment over its wall time") {
  std::vector<BatchSample> batches;
  add_run(batches, 60, 1.7e9);
  const auto t = pgxform::throughput(batches, 100);
  REQUIRE(t.segments.size() == 1);
  CHECK(t.pauses.empty());
  CHECK(t.span_s == Approx(59 * 0.11 + 0.1));
  // A window of 4 batches: the first point once 4 have ended, then one per batch.
  CHECK(t.segments[0].size() == 57);
  CHECK(t.segments[0].back().at_s == Approx(t.span_s));
  for (const auto& point : t.segments[0])
    CHECK(point.rows_per_second == Approx(1000 / 0.11).epsilon(0.1));
}

TEST_CASE("a pause between runs is cut out of the time axis and breaks the line in two") {
  std::vector<BatchSample> batches;
  add_run(batches, 60, 1.7e9);
  add_run(batches, 60, 1.7e9 + 60 * 0.11 + 540);  // resumed after 9 idle minutes
  const auto t = pgxform::throughput(batches, 100);
  REQUIRE(t.segments.size() == 2);
  REQUIRE(t.pauses.size() == 1);
  CHECK(t.pauses[0].wall_s == Approx(540 + 0.01));
  // The working time of two runs of 6.6 s, not the 9 minutes between them.
  const double run = 59 * 0.11 + 0.1;
  CHECK(t.span_s == Approx(2 * run));
  CHECK(t.pauses[0].at_s == Approx(run));
  CHECK(t.segments[0].back().at_s == Approx(run));
  CHECK(t.segments[1].front().at_s > run);
  CHECK(t.segments[1].back().at_s == Approx(2 * run));
  // No false dip after the resume: the window starts afresh, so no rate divides by idle time.
  for (const auto& segment : t.segments)
    for (const auto& point : segment)
      CHECK(point.rows_per_second == Approx(1000 / 0.11).epsilon(0.1));
}

TEST_CASE("a gap of a few seconds between batches is the job's own time, not a pause") {
  std::vector<BatchSample> batches;
  add_run(batches, 30, 1.7e9);
  add_run(batches, 30, 1.7e9 + 30 * 0.11 + 3);  // 3 s: below the shortest pause, 5 s
  const auto t = pgxform::throughput(batches, 100);
  CHECK(t.segments.size() == 1);
  CHECK(t.pauses.empty());
  CHECK(t.span_s == Approx(59 * 0.11 + 0.1 + 3));
}

TEST_CASE("a stretch of a single batch is a segment of one point") {
  std::vector<BatchSample> batches;
  add_run(batches, 60, 1.7e9);
  add_run(batches, 1, 1.7e9 + 3600);
  const auto t = pgxform::throughput(batches, 100);
  REQUIRE(t.segments.size() == 2);
  REQUIRE(t.segments[1].size() == 1);
  CHECK(t.segments[1][0].rows_per_second == Approx(10000));
  CHECK(t.segments[1][0].at_s == Approx(t.span_s));
}

TEST_CASE("without start times, batch time is the time axis") {
  std::vector<BatchSample> batches;
  add_run(batches, 20, 0);
  for (auto& b : batches) b.started_s = std::nan("");
  const auto t = pgxform::throughput(batches, 100);
  REQUIRE(t.segments.size() == 1);
  CHECK(t.pauses.empty());
  CHECK(t.span_s == Approx(2.0));
  CHECK(pgxform::throughput({}, 0).segments.empty());
}

TEST_CASE("an instant of wall time has its place in working time, a pause its cut") {
  std::vector<BatchSample> batches;
  add_run(batches, 60, 1000);
  add_run(batches, 60, 2000);
  const auto t = pgxform::throughput(batches, 100);
  const double run = 59 * 0.11 + 0.1;
  CHECK_FALSE(pgxform::at_work(t, 999));
  CHECK(*pgxform::at_work(t, 1001) == Approx(1));
  CHECK(*pgxform::at_work(t, 1500) == Approx(run));  // idle: at the cut
  CHECK(*pgxform::at_work(t, 2001) == Approx(run + 1));
  CHECK_FALSE(pgxform::at_work(t, 5000));  // after the last batch
  for (auto& b : batches) b.started_s = std::nan("");
  CHECK_FALSE(pgxform::at_work(pgxform::throughput(batches, 100), 0.5));
}
