// profile against a real PostgreSQL: the planted O(N²) transform (support/planted.h) is
// growing and a linear one over the same table flat, with fixed and with time-sized batches,
// and flat once the DBA adds the index; a job that never ran, an unfinished one, an unknown
// one; a real run's bisect and retry-failed batches set apart from the job's figures.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "base/errors.h"
#include "commands/profile_command.h"
#include "support/fixtures.h"
#include "support/planted.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

TEST_CASE("a planted O(N²) transform is growing, a linear one over the same table is flat",
          "[timing]") {
  TestDatabase db;
  create_planted(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", planted_yaml());
  run_planted(db, path);

  const std::string json = profile_json(db, path);
  INFO(json);
  CHECK(parse_json(json)["jobs"][0]["job"] == "quadratic");
  CHECK(parse_json(json)["jobs"][0]["trend"] == "growing");
  CHECK(profile_field(json, "linear", "trend") == "\"flat\"");
  CHECK(profile_field(json, "quadratic", "batches") ==
        std::to_string(k_planted_rows / k_planted_batch));
  CHECK(profile_field(json, "quadratic", "rows") == std::to_string(k_planted_rows));
  CHECK(profile_field(json, "quadratic", "status") == "\"done\"");
  CHECK(profile_field(json, "quadratic", "eta_seconds") == "null");
  const double growth = std::stod(profile_field(json, "quadratic", "growth"));
  const double linear_growth = std::stod(profile_field(json, "linear", "growth"));
  CHECK(growth > 2);
  CHECK(linear_growth < 1.5);
  WARN("planted O(N²): growth " << growth << "x; linear: " << linear_growth << "x");

  pgxform::ProfileOptions o;
  o.file = path;
  o.dsn = db.dsn();
  o.html = dir.path() + "/report.html";
  std::ostringstream out;
  REQUIRE(pgxform::profile_command(o, out) == 0);
  CHECK(out.str().find("warning: quadratic is growing") != std::string::npos);
  CHECK(out.str().find("warning: linear") == std::string::npos);
  std::ifstream in(*o.html);
  std::stringstream html;
  html << in.rdbuf();
  std::size_t charts = 0;
  for (auto at = html.str().find("<svg class=\"chart\""); at != std::string::npos;
       at = html.str().find("<svg class=\"chart\"", at + 1))
    ++charts;
  CHECK(charts == 2);
  CHECK(html.str().find("data-job=\"quadratic\"") != std::string::npos);
  CHECK(html.str().find("class=\"warning\" data-job=\"quadratic\"") != std::string::npos);
}

TEST_CASE("with time-sized batches, the planted O(N²) transform is growing and the linear one flat",
          "[timing]") {
  TestDatabase db;
  create_planted(db);
  TempDir dir;
  const auto path = dir.write(
      "jobs.yaml",
      // Batches of at most 600 rows, as the fixed batches of the test above are of 500: larger
      // ones would spread the growing scan of the target over so many rows that 40,000 rows
      // would not show it.
      planted_yaml(
          "batch_size: 100, target_batch_ms: 10, min_batch_size: 50, max_batch_size: 600"));
  run_planted(db, path);
  const std::string json = profile_json(db, path);
  INFO(json);
  INFO(
      db.scalar("SELECT string_agg(job || ':' || batch_size, ' ' ORDER BY job, batch_no)"
                " FROM pgxform.batch_log"));
  // The sizes did vary, for both jobs: the probe's, the size it gave, and more as the time per
  // row moved (a fast server reaches the cap of 600 from the third batch, a slow one varies
  // below it all along).
  CHECK(db.count("SELECT count(DISTINCT batch_size) FROM pgxform.batch_log"
                 " WHERE job = 'quadratic'") >= 3);
  CHECK(db.count("SELECT count(DISTINCT batch_size) FROM pgxform.batch_log"
                 " WHERE job = 'linear'") >= 3);
  CHECK(profile_field(json, "quadratic", "trend") == "\"growing\"");
  CHECK(profile_field(json, "linear", "trend") == "\"flat\"");
  CHECK(profile_field(json, "quadratic", "rows") == std::to_string(k_planted_rows));
}

TEST_CASE("after the DBA adds the index on the target's key, the same job is flat", "[timing]") {
  TestDatabase db;
  create_planted(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", planted_yaml());
  run_planted(db, path);
  REQUIRE(profile_field(profile_json(db, path), "quadratic", "trend") == "\"growing\"");

  // The fix, as a DBA would apply it: start the job again on an empty target with the index.
  const auto reset = run_cli({"reset", "-f", path, "--dsn", db.dsn(), "quadratic"});
  INFO(reset.err);
  REQUIRE(reset.exit_code == 0);
  db.exec("TRUNCATE target.items; CREATE INDEX ON target.items (id)");
  run_planted(db, path);
  REQUIRE(db.count("SELECT count(*) FROM target.items") == k_planted_rows);

  const std::string json = profile_json(db, path);
  INFO(json);
  CHECK(profile_field(json, "quadratic", "trend") == "\"flat\"");
  CHECK(profile_field(json, "quadratic", "batches") ==
        std::to_string(k_planted_rows / k_planted_batch));
  WARN("with the index: growth " << profile_field(json, "quadratic", "growth") << "x");

  const std::string text = explain_text(db, path, "quadratic", std::string("60000"));
  INFO(text);
  CHECK(text.find("none: no statement reads much more than its batch needs") != std::string::npos);
}

TEST_CASE("profile of a job that never ran, of an unfinished job, and of an unknown job",
          "[timing]") {
  TestDatabase db;
  // 5 ms of work per batch: sub-millisecond batches are all noise, and the ETA below is
  // compared with the job's own pace.
  create_items(db, 3000, 5);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  // No state schema yet: every job pending, nothing to tell.
  std::string json = profile_json(db, path);
  CHECK(parse_json(json) ==
        parse_json(
            "{\"jobs\": [{\"job\": \"items\", \"trend\": \"insufficient\", \"batches\": 0, "
            "\"rows\": 0,"
            " \"rows_per_second\": 0.0, \"p50_ms\": 0.000, \"p95_ms\": 0.000, \"max_ms\": 0.000,"
            " \"growth\": null, \"eta_seconds\": null, \"status\": \"pending\","
            " \"shared_blks_hit\": null, \"shared_blks_read\": null, \"shared_blks_dirtied\": null,"
            " \"shared_blks_written\": null, \"local_blks_hit\": null, \"local_blks_read\": null,"
            " \"temp_blks_read\": null, \"temp_blks_written\": null, \"blocks_per_row\": null,"
            " \"blocks_growth\": null, \"bisect_batches\": 0, \"bisect_rows\": 0,"
            " \"retry_batches\": 0, \"retry_rows\": 0}]}"));
  CHECK(json.back() == '\n');
  CHECK_FALSE(db.schema_exists("pgxform"));

  // Half the job done: 15 batches of 100, and 1500 rows left by the planner's estimate.
  REQUIRE(run_cli({"run", "-f", path, "--dsn", db.dsn()}).exit_code == 0);
  db.exec(
      "DELETE FROM pgxform.batch_log WHERE batch_no > 15;"
      "UPDATE pgxform.job_state SET status = 'pending', rows_done = 1500, batches_done = 15,"
      " last_key = '4500'");
  json = profile_json(db, path);
  INFO(json);
  CHECK(profile_field(json, "items", "trend") == "\"flat\"");
  CHECK(profile_field(json, "items", "status") == "\"pending\"");
  CHECK(profile_field(json, "items", "batches") == "15");
  const double eta = std::stod(profile_field(json, "items", "eta_seconds"));
  const double rate = std::stod(profile_field(json, "items", "rows_per_second"));
  // 1500 rows at the job's own pace, give or take its slowest batches.
  CHECK(eta > 0);
  CHECK(eta > 1500 / rate / 2);
  CHECK(eta < 1500 / rate * 2);

  pgxform::ProfileOptions o;
  o.file = path;
  o.dsn = db.dsn();
  o.jobs = {"nope"};
  std::ostringstream out;
  CHECK_THROWS_AS(pgxform::profile_command(o, out), pgxform::PreflightError);
}

TEST_CASE(
    "a real run's bisect and retry-failed batches are set apart from the job's figures, in "
    "profile and in its report") {
  TestDatabase db;
  // Keys 3 to 1500 in batches of 100; key 900 fails until cured. Each call sleeps 0.2 ms per
  // row: 20 ms for a batch, a fraction of that for a bisect range of a few rows.
  create_items(db, 500);
  db.exec(
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS 'SELECT pg_sleep(0.0002 * (SELECT count(*) FROM legacy.items WHERE id"
      " BETWEEN first_key AND last_key)); WITH i AS (INSERT INTO target.items SELECT id, v * 10"
      " / CASE WHEN id = 900 THEN 0 ELSE 1 END FROM legacy.items WHERE id BETWEEN first_key AND"
      " last_key RETURNING 1) SELECT count(*) FROM i'");
  TempDir dir;
  const auto path = dir.write(
      "jobs.yaml", items_jobs_yaml(100, 1, "        on_error: skip\n        bisect: true\n"));
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  REQUIRE(db.scalar("SELECT first_key || '-' || last_key FROM pgxform.failed_batches") ==
          "900-900");
  plain_items_function(db);
  REQUIRE(run_cli(with_db(db, path, {"retry-failed"})).exit_code == 0);
  REQUIRE(missing_items(db) == 0);

  // What batch_log holds: the run's batches with their size, the ranges of bisect and the one
  // of retry-failed without.
  const long long own = db.count("SELECT count(*) FROM pgxform.batch_log WHERE batch_size > 0");
  const long long bisect = db.count(
      "SELECT count(*) FROM pgxform.batch_log WHERE batch_size IS NULL AND first_key <> '900'");
  CHECK(own == 4);
  CHECK(bisect >= 5);
  const auto p50 = [&](const std::string& where) {
    return std::stod(
        db.scalar("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) FROM"
                  " pgxform.batch_log" +
                  where));
  };
  const double own_p50 = p50(" WHERE batch_size IS NOT NULL");
  const double mixed_p50 = p50("");
  INFO("p50 of the job's batches " << own_p50 << " ms, of all " << mixed_p50 << " ms");
  REQUIRE(own_p50 > mixed_p50);

  const std::string json = profile_json(db, path);
  INFO(json);
  const Json items = job_in(parse_json(json), "items");
  CHECK(items["batches"] == own);
  CHECK(items["rows"] == 400);
  CHECK(items["p50_ms"].get<double>() == Approx(own_p50).margin(0.001));
  CHECK(items["max_ms"].get<double>() ==
        Approx(std::stod(db.scalar(
                   "SELECT max(duration_ms) FROM pgxform.batch_log WHERE batch_size IS NOT NULL")))
            .margin(0.001));
  CHECK(items["bisect_batches"] == bisect);
  CHECK(items["bisect_rows"] == 99);
  CHECK(items["retry_batches"] == 1);
  CHECK(items["retry_rows"] == 1);

  pgxform::ProfileOptions o;
  o.file = path;
  o.dsn = db.dsn();
  o.html = dir.path() + "/report.html";
  std::ostringstream out;
  REQUIRE(pgxform::profile_command(o, out) == 0);
  CHECK(out.str().find("note: items: its figures leave out " + std::to_string(bisect) +
                       " bisect batches (99 rows") != std::string::npos);
  std::ifstream in(*o.html);
  std::stringstream read;
  read << in.rdbuf();
  const std::string html = read.str();
  CHECK(html.find("\">" + std::to_string(own) + " <span class=\"apart\"") != std::string::npos);
  std::size_t marks = 0;
  for (auto at = html.find(", not in the job&#39;s figures</title>"); at != std::string::npos;
       at = html.find(", not in the job&#39;s figures</title>", at + 1))
    ++marks;
  CHECK(marks == std::size_t(bisect + 1));
  CHECK(html.find("<title>retry-failed range [900, 900]") != std::string::npos);

  // Rows logged before the state schema had sizes are all the job's: nothing tells them apart.
  db.exec(
      "UPDATE pgxform.schema_version SET applied_at = now() + interval '1 hour'"
      " WHERE version = 6");
  const Json before = job_in(parse_json(profile_json(db, path)), "items");
  CHECK(before["batches"] == own + bisect + 1);
  CHECK(before["bisect_batches"] == 0);
  CHECK(before["retry_batches"] == 0);
}
