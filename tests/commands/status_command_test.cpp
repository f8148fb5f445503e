// status, computed and rendered from plain structs (no database): percent done, the rows of a
// jobs file, the table and the --json object.
#include "commands/status_command.h"

#include <catch2/catch.hpp>
#include <sstream>

#include "support/test_json.h"

using pgxform::JobStatus;
using pgxform::KeySpan;
using pgxform::StatusFacts;
using pgxform_test::Json;
using pgxform_test::parse_json;

namespace {

JobStatus state(const std::string& status, long long batches, long long rows) {
  JobStatus s;
  s.job = "items";
  s.status = status;
  s.batches_done = batches;
  s.rows_done = rows;
  return s;
}

// A job that failed on its batch [1503, 1800], with two ranges set aside before.
JobStatus failed_state() {
  JobStatus s = state("failed", 5, 500);
  s.list = "main";
  s.last_key = "1500";
  s.error = "division by zero";
  s.sqlstate = "22012";
  s.error_first_key = "1503";
  s.error_last_key = "1800";
  s.set_aside = 2;
  return s;
}

// A row as compute_status makes it: the state row, its percent and trend, nothing else known.
pgxform::StatusRow row_of(const JobStatus& s, std::optional<double> percent, pgxform::Trend trend) {
  pgxform::StatusRow row;
  row.state = s;
  row.percent = percent;
  row.trend = trend;
  return row;
}

StatusFacts estimate(double rows) {
  StatusFacts f;
  f.estimated_rows = rows;
  return f;
}

const pgxform::JobsFile k_status_file = pgxform::parse_jobs_text(R"(version: 1
lists:
  - name: main
    jobs:
      - {name: items, table: legacy.items, key: id, function: xf.items}
      - {name: step, sql: ANALYZE legacy.items}
)",
                                                                 "jobs.yaml");

}  // namespace

TEST_CASE("percent done is the rows done over the rows in all, never the key's position") {
  using pgxform::percent_done;
  // 500 rows done of 2000 in all (those done and the planner's estimate above the cursor).
  CHECK(*percent_done(state("running", 5, 500), false, estimate(2000)) == 25);
  // More rows done than the estimate (rows appended while it ran), or a few rows short of it:
  // never 100 for a job that is not done.
  CHECK(*percent_done(state("running", 5, 5000), false, estimate(2000)) == Approx(99.9));
  CHECK(*percent_done(state("failed", 5, 9999), false, estimate(10000)) == Approx(99.9));
  CHECK(*percent_done(state("done", 5, 500), false, estimate(2000)) == 100);
  CHECK_FALSE(percent_done(state("running", 5, 500), false, estimate(0)));
  CHECK_FALSE(percent_done(state("running", 5, 500), false, StatusFacts{}));
  // Known without any figures.
  CHECK(*percent_done(state("done", 9, 900), false, StatusFacts{}) == 100);
  CHECK(*percent_done(state("pending", 0, 0), false, StatusFacts{}) == 0);
  CHECK(*percent_done(state("done", 1, 0), true, std::nullopt) == 100);
  CHECK(*percent_done(state("pending", 0, 0), true, std::nullopt) == 0);
  // A job that does not resolve against the catalog: nothing can be told.
  CHECK_FALSE(percent_done(state("running", 5, 500), false, std::nullopt));
}

TEST_CASE("status has a row for every job of the file, in file order, pending until recorded") {
  JobStatus recorded = state("running", 5, 500);
  recorded.list = "old list";
  const auto rows = pgxform::compute_status(k_status_file, {recorded}, {{"items", estimate(2000)}});
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].state.job == "items");
  CHECK(rows[0].state.list == "main");  // as the jobs file says now
  CHECK(*rows[0].percent == 25);
  CHECK(rows[1].state.job == "step");
  CHECK(rows[1].state.status == "pending");
  CHECK(*rows[1].percent == 0);
  CHECK(rows[1].trend == pgxform::Trend::insufficient);
}

TEST_CASE("status --json holds every documented key, in order, nulls for what is unknown") {
  std::ostringstream out;
  pgxform::print_status_json(out, {row_of(failed_state(), 49.94999, pgxform::Trend::flat)});
  const Json doc = parse_json(out.str());
  const Json& job = doc.at("jobs").at(0);
  std::vector<std::string> keys;
  for (const auto& item : job.items()) keys.push_back(item.key());
  CHECK(keys == std::vector<std::string>{"job",
                                         "list",
                                         "status",
                                         "rows_done",
                                         "batches_done",
                                         "last_key",
                                         "percent",
                                         "slices",
                                         "slices_done",
                                         "slices_held",
                                         "runner",
                                         "started_at",
                                         "updated_at",
                                         "finished_at",
                                         "error",
                                         "sqlstate",
                                         "error_first_key",
                                         "error_last_key",
                                         "trend",
                                         "set_aside",
                                         "waiting",
                                         "rows_per_s",
                                         "eta_s",
                                         "batch_size",
                                         "changes_pending",
                                         "oldest_change_s",
                                         "catch_up_runner",
                                         "changes_per_s",
                                         "changes_eta_s",
                                         "catch_up_waiting",
                                         "holders",
                                         "in_flight_s",
                                         "in_flight_wait",
                                         "table",
                                         "key",
                                         "ignored",
                                         "capture",
                                         "capture_missing",
                                         "capture_lost",
                                         "slot"});
  CHECK(job["percent"] == 49.9);
  CHECK(job["runner"].is_null());
  CHECK(job["last_key"] == "1500");
  CHECK(job["sqlstate"] == "22012");
  CHECK(job["trend"] == "flat");
  CHECK(job["set_aside"] == 2);
  CHECK(job["waiting"].is_null());
  CHECK(job["rows_per_s"].is_null());
  CHECK(job["eta_s"].is_null());
  CHECK(job["batch_size"].is_null());
  CHECK(job["changes_pending"].is_null());  // no changes: trigger
  CHECK(job["holders"] == Json::array());
  CHECK(job["table"].is_null());  // not recorded yet
  CHECK(job["ignored"] == Json::array());
  std::vector<std::string> top;
  for (const auto& item : doc.items()) top.push_back(item.key());
  CHECK(top == std::vector<std::string>{"jobs", "runners", "ignored", "overrides"});
  CHECK(out.str().back() == '\n');
}

TEST_CASE("the status table shows the error, the set-aside ranges and a growing trend") {
  JobStatus s = failed_state();
  s.last_key.reset();
  std::ostringstream out;
  pgxform::print_status_table(out, {row_of(s, std::nullopt, pgxform::Trend::growing)});
  const std::string text = out.str();
  INFO(text);
  CHECK(text.rfind("LIST", 0) == 0);
  CHECK(text.find("error (SQLSTATE 22012) in batch [1503, 1800]: division by zero") !=
        std::string::npos);
  CHECK(text.find("2 key range(s) set aside in failed_batches") != std::string::npos);
  CHECK(text.find("the O(N^2) signature") != std::string::npos);
  // No percent, rate, ETA, batch size or last key.
  CHECK(text.find("      ?        -        -        -  -") != std::string::npos);
}

TEST_CASE("a running job that no session holds is shown as interrupted") {
  using pgxform::shown_status;
  JobStatus killed = state("running", 5, 500);  // its runner died: nobody holds it
  CHECK(shown_status(killed) == "interrupted");
  JobStatus held = killed;
  held.runner = "host-a:4711";
  CHECK(shown_status(held) == "running");
  for (const std::string other : {"pending", "done", "failed"})
    CHECK(shown_status(state(other, 5, 500)) == other);
  // A sliced job: interrupted when a slice says running and no slice is held; between two
  // slices of a live run, no slice says running.
  JobStatus sliced = state("running", 5, 500);
  sliced.slices = 4;
  sliced.slices_done = 1;
  CHECK(shown_status(sliced) == "running");
  sliced.slices_running = 1;
  CHECK(shown_status(sliced) == "interrupted");
  sliced.runner = "host-a:4711";
  CHECK(shown_status(sliced) == "running");
}

TEST_CASE("status shows interrupted in the table, its column wide enough, and in --json") {
  JobStatus killed = state("running", 5, 500);
  killed.list = "main";
  killed.slices = 4;
  killed.slices_done = 1;
  killed.slices_running = 3;
  const auto rows = pgxform::compute_status(k_status_file, {killed}, {});
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].state.status == "interrupted");
  std::ostringstream table;
  pgxform::print_status_table(table, rows);
  INFO(table.str());
  CHECK(table.str().find("items               interrupted 1/4          500") != std::string::npos);
  std::ostringstream json;
  pgxform::print_status_json(json, rows);
  const Json doc = parse_json(json.str());
  CHECK(doc.at("jobs").at(0).at("status") == "interrupted");
  CHECK(doc.at("jobs").at(1).at("status") == "pending");
}

TEST_CASE("status shows a sliced job's slices done and how many workers hold its slices") {
  JobStatus split = state("running", 5, 500);
  split.list = "main";
  split.slices = 5;
  split.slices_done = 2;
  split.slices_running = 3;
  split.slices_held = 3;
  split.runner = "host-a:4711, host-b:42";
  const auto rows = pgxform::compute_status(k_status_file, {split}, {});
  std::ostringstream table;
  pgxform::print_status_table(table, rows);
  INFO(table.str());
  CHECK(table.str().find("running 2/5 (3 at work)") != std::string::npos);
  std::ostringstream json;
  pgxform::print_status_json(json, rows);
  const Json doc = parse_json(json.str());
  CHECK(doc.at("jobs").at(0).at("slices") == 5);
  CHECK(doc.at("jobs").at(0).at("slices_held") == 3);
}

TEST_CASE("the status table's LIST and JOB columns widen for long names") {
  JobStatus s = failed_state();
  s.list = "logistic_events_of_the_year";
  s.job = "logistic_events_of_the_year_2024";
  std::ostringstream out;
  pgxform::print_status_table(out, {row_of(s, std::nullopt, pgxform::Trend::flat)});
  CHECK_THAT(out.str(),
             Catch::Contains("logistic_events_of_the_year  logistic_events_of_the_year_2024  "));
}

namespace {

const pgxform::JobsFile k_two_lists = pgxform::parse_jobs_text(R"(version: 1
lists:
  - name: shop
    jobs:
      - {name: orders, table: legacy.items, key: id, function: xf.items}
      - {name: lines, table: legacy.items, key: id, function: xf.items}
  - name: billing
    after: [shop]
    jobs:
      - {name: invoices, table: legacy.items, key: id, function: xf.items}
)",
                                                               "jobs.yaml");

JobStatus named(const std::string& job, const std::string& status, long long rows) {
  JobStatus s = state(status, rows > 0 ? 1 : 0, rows);
  s.job = job;
  return s;
}

StatusFacts live_facts(long long recent_rows, double span_s, long long batch_size,
                       double estimated) {
  StatusFacts f;
  f.recent_rows = recent_rows;
  f.recent_span_s = span_s;
  f.batch_size = batch_size;
  f.estimated_rows = estimated;
  return f;
}

}  // namespace

TEST_CASE("a running job's rate is its last minute's rows, its ETA the rows left over it") {
  JobStatus running = named("orders", "running", 600);
  running.runner = "host-a:4711";
  const auto rows = pgxform::compute_status(
      k_two_lists, {running, named("lines", "done", 900)},
      {{"orders", live_facts(1200, 60, 250, 3000)}, {"lines", live_facts(0, 60, 500, 900)}});
  REQUIRE(rows.size() == 3);
  CHECK(*rows[0].rows_per_s == Approx(20));
  CHECK(*rows[0].percent == Approx(20));
  CHECK(*rows[0].eta_s == Approx(120));  // 2400 rows left at 20 rows/s
  CHECK(*rows[0].batch_size == 250);
  // A done job has a last batch size and no rate.
  CHECK_FALSE(rows[1].rows_per_s);
  CHECK_FALSE(rows[1].eta_s);
  CHECK(*rows[1].batch_size == 500);
  // A job at work for 10 s of the minute: its rows over those 10 s.
  const auto young =
      pgxform::compute_status(k_two_lists, {running}, {{"orders", live_facts(300, 10, 250, 3000)}});
  CHECK(*young[0].rows_per_s == Approx(30));
  // Running, nothing committed in the last minute (paused): rate 0, no ETA.
  const auto idle =
      pgxform::compute_status(k_two_lists, {running}, {{"orders", live_facts(0, 60, 250, 3000)}});
  CHECK(*idle[0].rows_per_s == 0);
  CHECK_FALSE(idle[0].eta_s);
  std::ostringstream table;
  pgxform::print_status_table(table, rows);
  INFO(table.str());
  CHECK_THAT(table.str(), Catch::Contains("RATE      ETA    BATCH  LAST KEY"));
  CHECK_THAT(table.str(), Catch::Contains("20.0       20    2m00s      250"));
}

TEST_CASE("eta_of takes the rows left from the percent done, else from the estimate") {
  using pgxform::eta_of;
  const JobStatus s = named("orders", "running", 500);
  CHECK(*eta_of(s, 25.0, std::nullopt, 10.0) == Approx(150));    // 1500 left
  CHECK(*eta_of(s, std::nullopt, 2500.0, 10.0) == Approx(200));  // 2000 left
  CHECK_FALSE(eta_of(s, 25.0, 2500.0, 0.0));
  CHECK_FALSE(eta_of(s, 25.0, 2500.0, std::nullopt));
  CHECK_FALSE(eta_of(s, std::nullopt, std::nullopt, 10.0));
}

TEST_CASE("while a runner works, a job not started says which list or job it waits for") {
  JobStatus orders = named("orders", "running", 600);
  orders.runner = "host-a:4711";
  const auto rows = pgxform::compute_status(k_two_lists, {orders}, {});
  REQUIRE(rows.size() == 3);
  CHECK_FALSE(rows[0].waiting);  // it works
  CHECK(*rows[1].waiting == "waiting for job orders");
  CHECK(*rows[2].waiting == "waiting for list shop");
  std::ostringstream table;
  pgxform::print_status_table(table, rows);
  CHECK_THAT(table.str(), Catch::Contains("    waiting for list shop\n"));
  std::ostringstream json;
  pgxform::print_status_json(json, rows);
  CHECK(parse_json(json.str()).at("jobs").at(2).at("waiting") == "waiting for list shop");
  // The list it is after is done: nothing to wait for but its turn, which has come.
  JobStatus lines = named("lines", "running", 10);
  lines.runner = "host-a:4711";
  const auto later = pgxform::compute_status(
      k_two_lists, {named("orders", "done", 900), lines, named("invoices", "pending", 0)}, {});
  CHECK(*later[2].waiting == "waiting for list shop");  // lines is not done yet
  const auto last = pgxform::compute_status(
      k_two_lists,
      {named("orders", "done", 900), named("lines", "done", 900), named("invoices", "pending", 0)},
      {});
  CHECK_FALSE(last[2].waiting);
  // No runner at work: nothing waits, whatever is left to do.
  const auto idle = pgxform::compute_status(k_two_lists, {named("orders", "interrupted", 5)}, {});
  for (const auto& row : idle) CHECK_FALSE(row.waiting);
}

TEST_CASE("status shows a capturing job's pending changes and the age of the oldest") {
  pgxform::JobStatus s = failed_state();
  s.error.reset();
  std::ostringstream out;
  pgxform::StatusRow capturing = row_of(s, std::nullopt, pgxform::Trend::flat);
  capturing.changes_pending = 12;
  capturing.oldest_change_s = 61.5;
  pgxform::print_status_table(out, {capturing});
  CHECK_THAT(out.str(), Catch::Contains("capturing changes: 12 pending, the oldest 62 s old: "
                                        "pgxform catch-up " +
                                        s.job));
  std::ostringstream json;
  capturing.changes_pending = 0;
  capturing.oldest_change_s.reset();
  pgxform::print_status_json(json, {capturing});
  const Json job = parse_json(json.str()).at("jobs").at(0);
  CHECK(job["changes_pending"] == 0);
  CHECK(job["oldest_change_s"].is_null());
}

TEST_CASE("a lock holder that is not the recorded runner is said under its job: who, since when") {
  pgxform::TaskHolder h;
  h.job = "items";
  h.pid = 4242;
  h.role = "mallory";
  h.application_name = "pgxform evilhost:1";
  h.client_addr = "10.0.0.5";
  h.connected_at = "2026-12-06 10:00:01+00";
  h.state = "idle";
  h.state_since = "2026-12-06 10:00:02+00";
  CHECK(pgxform::holder_line(h) ==
        "held by backend 4242 of role mallory ('pgxform evilhost:1', from 10.0.0.5), connected "
        "since 2026-12-06 10:00:01+00, idle since 2026-12-06 10:00:02+00: not the runner "
        "recorded for the job; if it is no runner of yours, end it: SELECT "
        "pg_terminate_backend(4242)");
  h.connected_at.reset();
  CHECK_THAT(pgxform::holder_line(h),
             Catch::Contains("since a time pg_stat_activity hides from this role"));

  JobStatus s = failed_state();
  s.error.reset();
  pgxform::StatusRow row = row_of(s, std::nullopt, pgxform::Trend::flat);
  row.holders = {h};
  std::ostringstream out;
  pgxform::print_status_table(out, {row});
  CHECK_THAT(out.str(), Catch::Contains("\n    held by backend 4242 of role mallory"));
  row.holders[0].recorded = true;  // a runner of this migration: its RUNNER column says enough
  std::ostringstream recorded;
  pgxform::print_status_table(recorded, {row});
  CHECK_THAT(recorded.str(), !Catch::Contains("held by backend"));
  std::ostringstream json;
  pgxform::print_status_json(json, {row});
  const Json holder = parse_json(json.str()).at("jobs").at(0).at("holders").at(0);
  CHECK(holder["task"] == "items");
  CHECK(holder["pid"] == 4242);
  CHECK(holder["role"] == "mallory");
  CHECK(holder["application_name"] == "pgxform evilhost:1");
  CHECK(holder["client_addr"] == "10.0.0.5");
  CHECK(holder["connected_at"].is_null());
  CHECK(holder["state"] == "idle");
  CHECK(holder["recorded"] == true);
}

TEST_CASE("status shows what a job is recorded on, and when the jobs file names another table") {
  const pgxform::JobIdentity items{"legacy", "items", "id", "bigint", "xf", "items"};
  pgxform::JobIdentity other = items;
  other.table_name = "other";
  StatusFacts facts = estimate(100);
  facts.now = other;
  JobStatus done = state("done", 3, 300);
  const auto rows = pgxform::compute_status(k_status_file, {done}, {{"items", facts}}, {}, {}, {},
                                            {{"items", {items, "done"}}});
  REQUIRE(rows[0].recorded);
  REQUIRE(rows[0].names_now);
  std::ostringstream table;
  pgxform::print_status_table(table, rows);
  CHECK_THAT(table.str(), Catch::Contains("    recorded on legacy.items by id (bigint) through "
                                          "xf.items; the jobs file now names legacy.other by id "
                                          "(bigint) through xf.items: pgxform reset items to "
                                          "start it over"));
  std::ostringstream json;
  pgxform::print_status_json(json, rows);
  const Json job = parse_json(json.str()).at("jobs").at(0);
  CHECK(job["table"] == "legacy.items");
  CHECK(job["key"] == "id");
  // The same table as recorded: nothing to say; the key's type alone is no other table.
  facts.now = items;
  facts.now->key_type = "numeric";
  const auto same = pgxform::compute_status(k_status_file, {done}, {{"items", facts}}, {}, {}, {},
                                            {{"items", {items, "done"}}});
  CHECK(same[0].recorded);
  CHECK_FALSE(same[0].names_now);
}

TEST_CASE("status shows the control values the runners ignore, and each runner's workers") {
  pgxform::ControlRow huge;
  huge.scope = pgxform::ControlScope::job;
  huge.name = "items";
  huge.values.batch_size = 9223372036854775807LL;
  const auto rows = pgxform::compute_status(k_status_file, {state("running", 3, 300)}, {}, {huge});
  CHECK(rows[0].ignored ==
        std::vector<std::string>{"batch_size 9223372036854775807 > 1000000000 (job items)"});
  CHECK(rows[1].ignored.empty());  // the step has no settings
  pgxform::StatusRunners runners;
  runners.ignored = {"threads 10000 > 1024 (all)"};
  pgxform::RunnerPool pool;
  pool.runner = "vm:4711";
  pool.command = "run";
  pool.figures = {3, 1024, 3, 42, 5};
  runners.pools = {pool};
  std::ostringstream table;
  pgxform::print_status_table(table, rows, runners);
  INFO(table.str());
  CHECK_THAT(table.str(),
             Catch::Contains("    ignored: batch_size 9223372036854775807 > 1000000000 (job "
                             "items)\n") &&
                 Catch::Contains("runner vm:4711 (run): 3 workers: 3 tasks can run, 42 "
                                 "connections free (1024 threads asked, 5 kept in reserve)\n") &&
                 Catch::Contains("\nignored: threads 10000 > 1024 (all)\n"));
  std::ostringstream json;
  pgxform::print_status_json(json, rows, runners);
  const Json doc = parse_json(json.str());
  CHECK(doc["jobs"][0]["ignored"][0] == "batch_size 9223372036854775807 > 1000000000 (job items)");
  CHECK(doc["ignored"][0] == "threads 10000 > 1024 (all)");
  const Json& runner = doc["runners"][0];
  std::vector<std::string> keys;
  for (const auto& item : runner.items()) keys.push_back(item.key());
  CHECK(keys == std::vector<std::string>{"runner", "command", "workers", "threads", "tasks",
                                         "connections_free", "reserve"});
  CHECK(runner["workers"] == 3);
  CHECK(runner["connections_free"] == 42);
}
