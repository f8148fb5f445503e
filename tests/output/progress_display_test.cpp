// What a run shows of its running tasks (progress.h, progress_display.h), without a database
// or threads: the figures of Progress::running() and the lines drawn from them.
#include "output/progress_display.h"

#include <catch2/catch.hpp>

using pgxform::Progress;
using pgxform::TaskView;

TEST_CASE("a running task shows its job's rows and percent, its rate and the job's ETA") {
  Progress progress;
  progress.set_total_rows("items", 10000);
  progress.set_job_rows("items", 2000);  // before this run
  progress.task_started("items", "items");
  progress.batch_done("items", "items", pgxform::Phase::main, 500, 500, 100, "1500");
  progress.batch_done("items", "items", pgxform::Phase::main, 500, 500, 100, "3000");
  const auto views = progress.running();
  REQUIRE(views.size() == 1);
  const TaskView& v = views.front();
  CHECK(v.task == "items");
  CHECK(v.rows == 1000);
  CHECK(v.batches == 2);
  CHECK(v.job_rows == 3000);
  CHECK(*v.percent == Approx(30));
  CHECK(v.last_key == "3000");
  CHECK_FALSE(v.waiting);
  progress.task_ended("items");
  CHECK(progress.running().empty());
}

TEST_CASE("a task's percent stays short of 100 until its job is done") {
  Progress progress;
  progress.set_total_rows("items", 100);
  progress.task_started("items", "items");
  progress.batch_done("items", "items", pgxform::Phase::main, 150, 150, 10, "450");
  CHECK(*progress.running().front().percent == Approx(99.9));
}

TEST_CASE("a paused, throttled or held task says what it waits for") {
  Progress progress;
  progress.task_started("items", "items");
  progress.set_waiting("items", std::string("paused (job items)"));
  CHECK(*progress.running().front().waiting == "paused (job items)");
  progress.set_waiting("items", std::nullopt);
  CHECK_FALSE(progress.running().front().waiting);
  progress.task_held("orders[2/4]", "orders", "host-b:4711");
  const auto views = progress.running();
  REQUIRE(views.size() == 2);
  CHECK(views[1].task == "orders[2/4]");
  CHECK(*views[1].waiting == "held by host-b:4711");
}

TEST_CASE("a block line holds rows, percent, rate, ETA and the reason, cut to the width") {
  TaskView v;
  v.task = "items";
  v.job_rows = 123456;
  v.percent = 41.25;
  v.rows_per_s = 4100;
  v.eta_s = 75;
  v.waiting = "throttled: max_xact_age_s 12 > 10";
  const std::string line = pgxform::block_line(v, 200);
  INFO(line);
  CHECK_THAT(line, Catch::StartsWith("items "));
  CHECK_THAT(line, Catch::Contains("123456 rows"));
  CHECK_THAT(line, Catch::Contains("41.2 %"));
  CHECK_THAT(line, Catch::Contains("4100/s"));
  CHECK_THAT(line, Catch::Contains("ETA 1m15s"));
  CHECK_THAT(line, Catch::EndsWith("throttled: max_xact_age_s 12 > 10"));
  CHECK(pgxform::block_line(v, 40).size() == 39);  // never wraps
  v.task = "evil\x1b[2Jname";
  CHECK(pgxform::block_line(v, 200).find('\x1b') == std::string::npos);
}

TEST_CASE("a plain progress line keeps today's words and adds percent, ETA and the reason") {
  TaskView v;
  v.task = "items";
  v.rows = 120000;
  v.batches = 12;
  v.last_key = "360011";
  v.rows_per_s = 4100;
  v.percent = 48;
  v.eta_s = 62;
  CHECK(pgxform::plain_line(v) ==
        "items: 120000 rows in 12 batches this run, last key 360011, 4100 rows/s, 48.0 %, ETA "
        "1m02s");
  v.waiting = "paused (job items)";
  CHECK_THAT(pgxform::plain_line(v), Catch::EndsWith("; paused (job items)"));
}

TEST_CASE("PGXFORM_PROGRESS_INTERVAL_MS sets the plain interval, else it is 10 s") {
  unsetenv("PGXFORM_PROGRESS_INTERVAL_MS");
  CHECK(pgxform::plain_interval() == std::chrono::seconds(10));
  setenv("PGXFORM_PROGRESS_INTERVAL_MS", "250", 1);
  CHECK(pgxform::plain_interval() == std::chrono::milliseconds(250));
  setenv("PGXFORM_PROGRESS_INTERVAL_MS", "soon", 1);
  CHECK(pgxform::plain_interval() == std::chrono::seconds(10));
  unsetenv("PGXFORM_PROGRESS_INTERVAL_MS");
}
