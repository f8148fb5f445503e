// Projecting a job's duration from sampled batches, and a run's from its jobs' durations.
#include "analysis/run_estimate.h"

#include <catch2/catch.hpp>

using pgxform::estimate_run;
using pgxform::PlannedList;
using pgxform::projected_job_ms;

TEST_CASE("a job's duration integrates the sampled cost per row over its rows") {
  CHECK(projected_job_ms({}, 1000) == 0);
  CHECK(projected_job_ms({{0.5, 0.01}}, 1e6) == Approx(10000));
  CHECK(projected_job_ms({{0.1, 0.01}, {0.5, 0.01}, {0.9, 0.01}}, 1e6) == Approx(10000));
  // Rising from 1 to 2 ms per row across the key range: 1.5 on average.
  CHECK(projected_job_ms({{1, 2}, {0, 1}, {0.5, 1.5}}, 1000) == Approx(1500));
  // Held level before the first sample and after the last.
  CHECK(projected_job_ms({{0.25, 1}, {0.75, 3}}, 1000) ==
        Approx((0.25 * 1 + 0.5 * 2 + 0.25 * 3) * 1000));
}

TEST_CASE("independent lists run side by side, up to the thread count") {
  const std::vector<PlannedList> plan = {{"a", {}, {{"a1", 1}, {"a2", 1}}}, {"b", {}, {{"b1", 1}}}};
  const std::map<std::string, double> seconds = {{"a1", 10}, {"a2", 5}, {"b1", 12}};
  const auto two = estimate_run(plan, seconds, 2);
  CHECK(two.seconds == Approx(15));
  CHECK(two.list_finish.at("a") == Approx(15));
  CHECK(two.list_finish.at("b") == Approx(12));
  CHECK(two.critical_path == std::vector<std::string>{"a"});
  CHECK(estimate_run(plan, seconds, 1).seconds == Approx(27));
}

TEST_CASE("a list waits for the lists it is after, and the critical path says so") {
  const std::vector<PlannedList> plan = {{"customers", {}, {{"customers", 1}}},
                                         {"orders", {"customers"}, {{"orders", 1}}},
                                         {"logistics", {}, {{"events", 1}, {"analyze", 1}}}};
  const std::map<std::string, double> seconds = {{"customers", 4}, {"orders", 20}, {"events", 15}};
  const auto run = estimate_run(plan, seconds, 4);
  CHECK(run.seconds == Approx(24));
  CHECK(run.list_finish.at("logistics") == Approx(15));
  CHECK(run.critical_path == std::vector<std::string>{"customers", "orders"});
}

TEST_CASE("the slices of a job share its time across the threads") {
  const std::vector<PlannedList> plan = {{"big", {}, {{"events", 4}}}};
  const std::map<std::string, double> seconds = {{"events", 40}};
  CHECK(estimate_run(plan, seconds, 4).seconds == Approx(10));
  CHECK(estimate_run(plan, seconds, 2).seconds == Approx(20));
  CHECK(estimate_run(plan, seconds, 1).seconds == Approx(40));
  CHECK(estimate_run({}, seconds, 2).seconds == 0);
}

TEST_CASE("a job with parallel: auto is shared by the workers that fall idle, in the estimate") {
  // A big list and a small one on two threads: the big job alone to the end, unless it grows.
  const std::map<std::string, double> seconds{{"big", 100}, {"small", 10}};
  const std::vector<pgxform::PlannedList> fixed{{"a", {}, {{"big", 1}}}, {"b", {}, {{"small", 1}}}};
  CHECK(pgxform::estimate_run(fixed, seconds, 2).seconds == Approx(100));
  const std::vector<pgxform::PlannedList> grows{{"a", {}, {{"big", 1, pgxform::Phase::main, true}}},
                                                {"b", {}, {{"small", 1}}}};
  // 10 s side by side, then the 90 s left on two workers.
  CHECK(pgxform::estimate_run(grows, seconds, 2).seconds == Approx(55));
  CHECK(pgxform::estimate_run(grows, seconds, 1).seconds == Approx(110));
  // Alone on four threads: a quarter of the time.
  CHECK(pgxform::estimate_run({grows[0]}, seconds, 4).seconds == Approx(25));
}
