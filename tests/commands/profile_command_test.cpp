// profile and rehearse, computed and rendered from plain structs (no database): batches placed
// in the key range, the ETA, the table and the --json objects.
#include "commands/profile_command.h"

#include <catch2/catch.hpp>
#include <sstream>

#include "analysis/job_profile.h"
#include "commands/rehearse_command.h"
#include "support/test_json.h"

using pgxform::LoggedBatch;
using pgxform::ProfileInputs;
using pgxform_test::Json;
using pgxform_test::parse_json;

namespace {

// `n` batches of 100 rows over keys 1..100n, 10 ms each, one a second.
ProfileInputs inputs(int n, bool counters) {
  ProfileInputs in;
  in.job = "items";
  in.list = "main";
  in.status = "running";
  for (int i = 0; i < n; ++i) {
    LoggedBatch b;
    b.batch_no = i + 1;
    b.first_key = std::to_string(i * 100 + 1);
    b.last_key = std::to_string(i * 100 + 100);
    b.rows = 100;
    b.duration_ms = 10;
    b.started_s = 1.7e9 + i;
    if (counters) b.blocks = pgxform::BlockCounters{150, 50, 1, 0, 0, 0, 0, 0};
    in.batches.push_back(b);
    in.rows_done += b.rows;
  }
  return in;
}

}  // namespace

TEST_CASE("a profile places numeric keys in the key range, else keeps batch order") {
  ProfileInputs in = inputs(20, false);
  in.span = pgxform::KeySpan{1, 4000, std::nullopt};
  const auto placed = pgxform::compute_profile(in);
  CHECK(placed.key_positions);
  CHECK(placed.batches.front().position == Approx(49.5 / 3999).epsilon(0.01));
  CHECK(placed.batches.back().position == Approx(1949.5 / 3999).epsilon(0.01));
  CHECK(placed.batch_numbers.back() == 20);
  CHECK(placed.first_keys.front() == "1");
  in.span.reset();
  CHECK_FALSE(pgxform::compute_profile(in).key_positions);
  in.span = pgxform::KeySpan{1, 4000, std::nullopt};
  in.batches.front().first_key = "a1";  // not a number: no position for any batch
  CHECK_FALSE(pgxform::compute_profile(in).key_positions);
}

TEST_CASE(
    "the ETA covers the rows the planner expects beyond those done, and a done job has none") {
  ProfileInputs in = inputs(20, false);
  in.estimated_rows = 4000;
  const auto running = pgxform::compute_profile(in);
  REQUIRE(running.remaining_rows);
  CHECK(*running.remaining_rows == 2000);
  REQUIRE(running.eta_seconds);
  CHECK(*running.eta_seconds > 0);
  in.status = "done";
  CHECK_FALSE(pgxform::compute_profile(in).eta_seconds);
  in.status = "running";
  in.estimated_rows.reset();
  CHECK_FALSE(pgxform::compute_profile(in).eta_seconds);
}

TEST_CASE("profile --json holds the documented keys in order, rounded, counters null without") {
  std::vector<pgxform::JobProfile> jobs{pgxform::compute_profile(inputs(20, true)),
                                        pgxform::compute_profile(inputs(3, false))};
  jobs[1].job = "other";
  std::ostringstream out;
  pgxform::print_profile_json(out, jobs);
  const Json doc = parse_json(out.str());
  REQUIRE(doc["jobs"].size() == 2);
  const Json& items = doc["jobs"][0];
  std::vector<std::string> keys;
  for (const auto& item : items.items()) keys.push_back(item.key());
  CHECK(keys == std::vector<std::string>{"job",
                                         "trend",
                                         "batches",
                                         "rows",
                                         "rows_per_second",
                                         "p50_ms",
                                         "p95_ms",
                                         "max_ms",
                                         "growth",
                                         "eta_seconds",
                                         "status",
                                         "shared_blks_hit",
                                         "shared_blks_read",
                                         "shared_blks_dirtied",
                                         "shared_blks_written",
                                         "local_blks_hit",
                                         "local_blks_read",
                                         "temp_blks_read",
                                         "temp_blks_written",
                                         "blocks_per_row",
                                         "blocks_growth",
                                         "bisect_batches",
                                         "bisect_rows",
                                         "retry_batches",
                                         "retry_rows"});
  CHECK(items["trend"] == "flat");
  CHECK(items["batches"] == 20);
  CHECK(items["rows"] == 2000);
  CHECK(items["p50_ms"] == 10.0);
  CHECK(items["shared_blks_hit"] == 3000);
  CHECK(items["blocks_per_row"] == 2.0);
  const Json& other = doc["jobs"][1];
  CHECK(other["trend"] == "insufficient");
  CHECK(other["growth"].is_null());
  CHECK(other["shared_blks_hit"].is_null());
  CHECK(other["eta_seconds"].is_null());
}

TEST_CASE(
    "a job's percentiles are of its own batches: bisect and retry-failed ranges are counted "
    "apart") {
  // 40 batches of 100 rows at 10 ms; after the 20th, a failing batch narrowed down by bisect
  // into 30 ranges of a row at 1 ms; then retry-failed redid 2 keys at 2 ms.
  ProfileInputs in = inputs(40, false);
  const auto explicit_range = [](pgxform::BatchKind kind, long long key, double ms) {
    LoggedBatch b;
    b.kind = kind;
    b.first_key = b.last_key = std::to_string(key);
    b.rows = 1;
    b.duration_ms = ms;
    b.started_s = 1.7e9 + 20;
    return b;
  };
  for (int i = 0; i < 30; ++i)
    in.batches.insert(in.batches.begin() + 20 + i,
                      explicit_range(pgxform::BatchKind::bisect, 2001 + i, 1));
  for (int i = 0; i < 2; ++i)
    in.batches.push_back(explicit_range(pgxform::BatchKind::retry, 2031 + i, 2));
  in.span = pgxform::KeySpan{1, 4000, std::nullopt};
  const auto p = pgxform::compute_profile(in);
  // Mixed in, the 32 ranges would make the p50 1 ms.
  CHECK(p.figures.batches == 40);
  CHECK(p.figures.rows == 4000);
  CHECK(p.figures.p50_ms == 10);
  CHECK(p.figures.rows_per_second == Approx(100 / 1.0).epsilon(0.05));
  CHECK(p.batches.size() == 40);
  CHECK(p.batch_numbers.size() == 40);
  CHECK(p.bisected.batches == 30);
  CHECK(p.bisected.rows == 30);
  CHECK(p.bisected.p50_ms == 1);
  CHECK(p.retried.batches == 2);
  CHECK(p.retried.max_ms == 2);
  REQUIRE(p.set_apart.size() == 32);
  CHECK(p.set_apart.front().after == 20);
  CHECK(p.set_apart.front().position == Approx(2000.0 / 3999).epsilon(0.01));

  std::ostringstream json;
  pgxform::print_profile_json(json, {p});
  const Json items = parse_json(json.str())["jobs"][0];
  CHECK(items["batches"] == 40);
  CHECK(items["p50_ms"] == 10.0);
  CHECK(items["bisect_batches"] == 30);
  CHECK(items["bisect_rows"] == 30);
  CHECK(items["retry_batches"] == 2);
  CHECK(items["retry_rows"] == 2);
  std::ostringstream table;
  pgxform::print_profile_table(table, {p});
  CHECK(table.str().find("note: items: its figures leave out 30 bisect batches (30 rows, p50 1.0"
                         " ms) and 2 retry-failed batches (2 rows, p50 2.0 ms)") !=
        std::string::npos);
  std::ostringstream plain;
  pgxform::print_profile_table(plain, {pgxform::compute_profile(inputs(20, false))});
  CHECK(plain.str().find("note:") == std::string::npos);
}

TEST_CASE("the profile table has a row per job and a warning per growing job") {
  ProfileInputs growing = inputs(40, false);
  for (std::size_t i = 0; i < growing.batches.size(); ++i)
    growing.batches[i].duration_ms = 10.0 * double(i + 1);
  const auto profile = pgxform::compute_profile(growing);
  REQUIRE(profile.figures.trend == pgxform::Trend::growing);
  std::ostringstream out;
  pgxform::print_profile_table(out, {profile});
  INFO(out.str());
  CHECK(out.str().rfind("JOB", 0) == 0);
  CHECK(out.str().find("items") != std::string::npos);
  CHECK(out.str().find("warning: items is growing") != std::string::npos);
}

TEST_CASE("rehearse --json carries whole rows and batches, and nulls for a failed job") {
  pgxform::Rehearsal r;
  r.threads = 2;
  r.commit_ms = 0.5;
  r.run.seconds = 12.3456;
  r.run.critical_path = {"main"};
  r.run.list_finish = {{"main", 12.3456}};
  pgxform::JobRehearsal ok;
  ok.job = "items";
  ok.rows = 200000;
  ok.batches = 40;
  ok.projected_ms = 12345.6;
  ok.growth = 1.1;
  ok.samples.push_back({0.05, std::nullopt, 3, 15000, 30, 0, 0.002});
  ok.samples.push_back({0.95, std::string("190003"), 3, 15000, 33, 0, 0.0022});
  pgxform::JobRehearsal failed;
  failed.job = "broken";
  failed.rows = 10;
  failed.error = "SQLSTATE 22012: division by zero";
  r.jobs = {ok, failed};
  std::ostringstream out;
  pgxform::print_rehearsal_json(out, r);
  const Json doc = parse_json(out.str());
  CHECK(doc["threads"] == 2);
  CHECK(doc["seconds"] == 12.346);
  CHECK(doc["fk_check_ms"].is_null());
  CHECK(doc["critical_path"] == Json::array({"main"}));
  CHECK(doc["lists"][0] == parse_json(R"({"list": "main", "finish_seconds": 12.346})"));
  const Json& items = doc["jobs"][0];
  CHECK(items["rows"].is_number_integer());
  CHECK(items["rows"] == 200000);
  CHECK(items["batches"] == 40);
  CHECK(items["projected_seconds"] == 12.346);
  CHECK(items["trend"] == "flat");
  CHECK(items["samples"][0]["after"].is_null());
  CHECK(items["samples"][1]["after"] == "190003");
  CHECK(items["error"].is_null());
  const Json& broken = doc["jobs"][1];
  CHECK(broken["projected_seconds"].is_null());
  CHECK(broken["trend"].is_null());
  CHECK(broken["error"] == "SQLSTATE 22012: division by zero");

  std::ostringstream table;
  pgxform::print_rehearsal_table(table, r, 3);
  INFO(table.str());
  CHECK(table.str().rfind("rehearse: 3 sample batches per job", 0) == 0);
  CHECK(table.str().find("error: broken: a sample batch failed: SQLSTATE 22012") !=
        std::string::npos);
  CHECK(table.str().find("whole run on 2 threads: 12.3 s (critical path: main)") !=
        std::string::npos);
}
