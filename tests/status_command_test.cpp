// status, computed and rendered from plain structs (no database): percent done, the rows of a
// jobs file, the table and the --json object.
#include "status_command.h"

#include <catch2/catch.hpp>
#include <sstream>

#include "test_json.h"

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

StatusFacts span(double first, double last, double at) {
  StatusFacts f;
  f.span = KeySpan{first, last, at};
  return f;
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

TEST_CASE("percent done follows the key's position, else rows against the estimate") {
  using pgxform::percent_done;
  // The cursor at key 1500 of 3..3000.
  CHECK(*percent_done(state("running", 5, 500), false, span(3, 3000, 1500)) ==
        Approx(49.95).epsilon(0.001));
  // Past the largest key (rows appended while it ran), or a few keys short of it: never 100
  // for a job that is not done.
  CHECK(*percent_done(state("running", 5, 500), false, span(3, 3000, 4000)) == Approx(99.9));
  CHECK(*percent_done(state("failed", 5, 500), false, span(1, 10000100, 10000098)) == Approx(99.9));
  CHECK(*percent_done(state("done", 5, 500), false, span(3, 3000, 2000)) == 100);
  // No key position (a text key, or a single key value): rows done against the estimate,
  // short of 100 until the job is done.
  CHECK(*percent_done(state("running", 5, 500), false, estimate(2000)) == 25);
  CHECK(*percent_done(state("running", 5, 5000), false, estimate(2000)) == Approx(99.9));
  StatusFacts one_key = span(7, 7, 7);
  CHECK_FALSE(percent_done(state("running", 5, 500), false, one_key));
  one_key.estimated_rows = 1000;
  CHECK(*percent_done(state("running", 5, 500), false, one_key) == 50);
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
  pgxform::print_status_json(out, {{failed_state(), 49.94999, pgxform::Trend::flat, std::nullopt,
                                    "", std::nullopt, std::nullopt}});
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
                                         "changes_pending",
                                         "oldest_change_s"});
  CHECK(job["percent"] == 49.9);
  CHECK(job["runner"].is_null());
  CHECK(job["last_key"] == "1500");
  CHECK(job["sqlstate"] == "22012");
  CHECK(job["trend"] == "flat");
  CHECK(job["set_aside"] == 2);
  CHECK(job["waiting"].is_null());
  CHECK(job["changes_pending"].is_null());  // no changes: trigger
  CHECK(out.str().back() == '\n');
}

TEST_CASE("the status table shows the error, the set-aside ranges and a growing trend") {
  JobStatus s = failed_state();
  s.last_key.reset();
  std::ostringstream out;
  pgxform::print_status_table(out, {{s, std::nullopt, pgxform::Trend::growing, std::nullopt, "",
                                     std::nullopt, std::nullopt}});
  const std::string text = out.str();
  INFO(text);
  CHECK(text.rfind("LIST", 0) == 0);
  CHECK(text.find("error (SQLSTATE 22012) in batch [1503, 1800]: division by zero") !=
        std::string::npos);
  CHECK(text.find("2 key range(s) set aside in failed_batches") != std::string::npos);
  CHECK(text.find("the O(N^2) signature") != std::string::npos);
  CHECK(text.find("      ?  -") != std::string::npos);  // no percent, no last key
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

TEST_CASE("the status table's LIST and JOB columns widen for long names") {
  JobStatus s = failed_state();
  s.list = "logistic_events_of_the_year";
  s.job = "logistic_events_of_the_year_2024";
  std::ostringstream out;
  pgxform::print_status_table(
      out, {{s, std::nullopt, pgxform::Trend::flat, std::nullopt, "", std::nullopt, std::nullopt}});
  CHECK_THAT(out.str(),
             Catch::Contains("logistic_events_of_the_year  logistic_events_of_the_year_2024  "));
}

TEST_CASE("status shows a capturing job's pending changes and the age of the oldest") {
  pgxform::JobStatus s = failed_state();
  s.error.reset();
  std::ostringstream out;
  pgxform::print_status_table(
      out, {{s, std::nullopt, pgxform::Trend::flat, std::nullopt, "", 12LL, 61.5}});
  CHECK_THAT(out.str(), Catch::Contains("capturing changes: 12 pending, the oldest 62 s old: "
                                        "pgxform catch-up " +
                                        s.job));
  std::ostringstream json;
  pgxform::print_status_json(
      json, {{s, std::nullopt, pgxform::Trend::flat, std::nullopt, "", 0LL, std::nullopt}});
  const Json job = parse_json(json.str()).at("jobs").at(0);
  CHECK(job["changes_pending"] == 0);
  CHECK(job["oldest_change_s"].is_null());
}
