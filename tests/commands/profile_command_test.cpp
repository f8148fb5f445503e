// profile rendered from plain structs (no database): the table, with a warning per growing
// job, and the --json objects. (The profile's figures: tests/analysis/job_profile_test.cpp.)
#include "commands/profile_command.h"

#include <catch2/catch.hpp>
#include <sstream>

#include "analysis/job_profile.h"
#include "support/profile_inputs.h"
#include "support/test_json.h"

using pgxform::LoggedBatch;
using pgxform::ProfileInputs;
using pgxform_test::Counters;
using pgxform_test::Json;
using pgxform_test::parse_json;
using pgxform_test::profile_inputs;

TEST_CASE("profile --json holds the documented keys in order, rounded, counters null without") {
  std::vector<pgxform::JobProfile> jobs{
      pgxform::compute_profile(profile_inputs(20, Counters::with)),
      pgxform::compute_profile(profile_inputs(3, Counters::without))};
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

TEST_CASE("the profile table has a row per job and a warning per growing job") {
  ProfileInputs growing = profile_inputs(40, Counters::without);
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

TEST_CASE(
    "a job's percentiles are of its own batches: bisect and retry-failed ranges are counted "
    "apart") {
  // 40 batches of 100 rows at 10 ms; after the 20th, a failing batch narrowed down by bisect
  // into 30 ranges of a row at 1 ms; then retry-failed redid 2 keys at 2 ms.
  ProfileInputs in = profile_inputs(40, Counters::without);
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
  pgxform::print_profile_table(plain,
                               {pgxform::compute_profile(profile_inputs(20, Counters::without))});
  CHECK(plain.str().find("note:") == std::string::npos);
}
