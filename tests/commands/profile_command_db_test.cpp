// Profiling against a real PostgreSQL: a planted O(N²) transform (an anti-join against the
// target it fills, without an index) next to a linear one over the same table, run by the real
// runner; then profile, explain and rehearse on them.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "catalog/catalog.h"
#include "commands/explain_command.h"
#include "commands/profile_command.h"
#include "commands/rehearse_command.h"
#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

namespace {

constexpr int k_rows = 40000;  // keys 3, 6, ..., 120000
constexpr int k_batch = 500;

// legacy.items as in fixtures.h; target.items WITHOUT an index, filled by xf.quadratic only
// with the rows NOT EXISTS in it yet (each batch scans everything the batches before it wrote);
// target.copies filled by xf.linear with a plain INSERT ... SELECT, after 5 ms of other work
// (batches of 1 ms move between two speeds with the machine's state: a step, not a trend).
void create_planted(TestDatabase& db) {
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.items (id bigint PRIMARY KEY, v int NOT NULL);"
      "INSERT INTO legacy.items SELECT g * 3, g FROM generate_series(1, " +
      std::to_string(k_rows) +
      ") g;"
      "CREATE TABLE target.items (id bigint NOT NULL, v int NOT NULL);"
      "CREATE TABLE target.copies (id bigint NOT NULL, v int NOT NULL);"
      "CREATE FUNCTION xf.quadratic(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS $$"
      "  WITH ins AS (INSERT INTO target.items SELECT l.id, l.v * 10 FROM legacy.items l"
      "   WHERE l.id BETWEEN first_key AND last_key"
      "   AND NOT EXISTS (SELECT 1 FROM target.items t WHERE t.id = l.id) RETURNING 1)"
      "  SELECT count(*) FROM ins $$;"
      "CREATE FUNCTION xf.linear(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS $$ SELECT pg_sleep(0.005);"
      "  WITH ins AS (INSERT INTO target.copies SELECT l.id, l.v * 10 FROM legacy.items l"
      "   WHERE l.id BETWEEN first_key AND last_key RETURNING 1)"
      "  SELECT count(*) FROM ins $$;"
      "ANALYZE legacy.items;");
}

// Fixed batches of k_batch rows, or as `sizing` says (e.g. "batch_size: 100, target_batch_ms:
// 10").
std::string planted_yaml(const std::string& sizing = "") {
  const std::string batch =
      sizing.empty() ? "batch_size: " + std::to_string(k_batch) + ", target_batch_ms: 0" : sizing;
  return "version: 1\nlists:\n"
         "  - name: planted\n    jobs:\n"
         "      - {name: quadratic, table: legacy.items, key: id, function: xf.quadratic,"
         " " +
         batch +
         "}\n"
         "  - name: plain\n    jobs:\n"
         "      - {name: linear, table: legacy.items, key: id, function: xf.linear,"
         " " +
         batch + "}\n";
}

// One run, one thread: the two jobs one after the other, so that neither slows the other.
void run_all(TestDatabase& db, const std::string& path) {
  const auto r = run_cli({"run", "-f", path, "--dsn", db.dsn(), "--threads", "1"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
}

std::string profile_json(TestDatabase& db, const std::string& path) {
  pgxform::ProfileOptions o;
  o.file = path;
  o.dsn = db.dsn();
  o.format = pgxform::ProfileFormat::json;
  std::ostringstream out;
  REQUIRE(pgxform::profile_command(o, out) == 0);
  return out.str();
}

// The value of `key` in the --json object of `job`, as JSON text ("\"flat\"", "80", "null").
std::string json_field(const std::string& json, const std::string& job, const std::string& key) {
  return job_in(parse_json(json), job).at(key).dump();
}

std::string explain(TestDatabase& db, const std::string& path, const std::string& job,
                    std::optional<std::string> at) {
  pgxform::ExplainOptions o;
  o.file = path;
  o.dsn = db.dsn();
  o.job = job;
  o.at = std::move(at);
  std::ostringstream out;
  REQUIRE(pgxform::explain_command(o, out) == 0);
  return out.str();
}

// Everything a rehearsal must leave as it was.
std::string snapshot(TestDatabase& db) {
  std::string s =
      db.scalar("SELECT count(*) || '/' || coalesce(sum(id * v), 0) FROM target.items") + " " +
      db.scalar("SELECT count(*) FROM target.copies") + " " +
      db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgxform'") + " " +
      db.scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = 'target'") + " " +
      db.scalar("SELECT count(*) FROM pg_extension");
  if (db.schema_exists("pgxform"))
    s += " " +
         db.scalar(
             "SELECT string_agg(job || status || rows_done || coalesce(last_key, '-'),"
             " ',' ORDER BY job) FROM pgxform.job_state") +
         " " + db.scalar("SELECT count(*) FROM pgxform.batch_log");
  return s;
}

}  // namespace

TEST_CASE("a planted O(N²) transform is growing, a linear one over the same table is flat",
          "[timing]") {
  TestDatabase db;
  create_planted(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", planted_yaml());
  run_all(db, path);

  const std::string json = profile_json(db, path);
  INFO(json);
  CHECK(parse_json(json)["jobs"][0]["job"] == "quadratic");
  CHECK(parse_json(json)["jobs"][0]["trend"] == "growing");
  CHECK(json_field(json, "linear", "trend") == "\"flat\"");
  CHECK(json_field(json, "quadratic", "batches") == std::to_string(k_rows / k_batch));
  CHECK(json_field(json, "quadratic", "rows") == std::to_string(k_rows));
  CHECK(json_field(json, "quadratic", "status") == "\"done\"");
  CHECK(json_field(json, "quadratic", "eta_seconds") == "null");
  const double growth = std::stod(json_field(json, "quadratic", "growth"));
  const double linear_growth = std::stod(json_field(json, "linear", "growth"));
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
  run_all(db, path);
  const std::string json = profile_json(db, path);
  INFO(json);
  INFO(
      db.scalar("SELECT string_agg(job || ':' || batch_size, ' ' ORDER BY job, batch_no)"
                " FROM pgxform.batch_log"));
  // The sizes did vary, for both jobs.
  CHECK(db.count("SELECT count(DISTINCT batch_size) FROM pgxform.batch_log"
                 " WHERE job = 'quadratic'") >= 4);
  CHECK(db.count("SELECT count(DISTINCT batch_size) FROM pgxform.batch_log"
                 " WHERE job = 'linear'") >= 4);
  CHECK(json_field(json, "quadratic", "trend") == "\"growing\"");
  CHECK(json_field(json, "linear", "trend") == "\"flat\"");
  CHECK(json_field(json, "quadratic", "rows") == std::to_string(k_rows));
}

TEST_CASE("each batch_log row carries the blocks its batch touched, the function's included") {
  TestDatabase db;
  create_planted(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", planted_yaml());
  run_all(db, path);

  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == 2 * k_rows / k_batch);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE shared_blks_hit IS NULL"
                 " OR shared_blks_read IS NULL OR shared_blks_dirtied IS NULL"
                 " OR shared_blks_written IS NULL OR local_blks_hit IS NULL"
                 " OR local_blks_read IS NULL OR temp_blks_read IS NULL"
                 " OR temp_blks_written IS NULL") == 0);
  // Each batch inserts k_batch rows: it touches at least a block per row, and dirties some.
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log"
                 " WHERE shared_blks_hit + shared_blks_read < rows OR shared_blks_dirtied = 0") ==
        0);
  // The quadratic job's anti-join scans all of target.items that the batches before it wrote:
  // its late batches touch about the table's final size in blocks more than its early ones.
  // The linear job scans nothing it wrote. Counts, not timings: no noise.
  const auto extra = [&](const std::string& job) {
    const std::string touched = "(shared_blks_hit + shared_blks_read)";
    return db.count("SELECT (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY " + touched +
                    ") FROM pgxform.batch_log WHERE job = '" + job + "' AND batch_no > " +
                    std::to_string(k_rows / k_batch - 10) +
                    ") - (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY " + touched +
                    ") FROM pgxform.batch_log WHERE job = '" + job + "' AND batch_no <= 10)");
  };
  const long long pages = db.count("SELECT pg_relation_size('target.items') / 8192");
  CHECK(extra("quadratic") > pages / 2);
  CHECK(extra("quadratic") < pages * 2);
  CHECK(std::abs(extra("linear")) < pages / 4);

  // profile sums them, and compares the blocks per row of the first and last quarter.
  const std::string json = profile_json(db, path);
  INFO(json);
  CHECK(std::stoll(json_field(json, "quadratic", "shared_blks_hit")) +
            std::stoll(json_field(json, "quadratic", "shared_blks_read")) ==
        db.count("SELECT sum(shared_blks_hit + shared_blks_read) FROM pgxform.batch_log"
                 " WHERE job = 'quadratic'"));
  CHECK(std::stod(json_field(json, "quadratic", "blocks_growth")) > 1.1);
  CHECK(std::stod(json_field(json, "linear", "blocks_growth")) < 1.05);
  CHECK(std::stod(json_field(json, "linear", "blocks_per_row")) >= 1);
}

TEST_CASE("a sort past work_mem and a temporary table show in the batch's counters") {
  TestDatabase db;
  create_items(db, 2000);
  // Each batch sorts 20 md5 strings per row with 64 kB of work_mem, and goes through a
  // temporary table, as seed 002's transform did.
  db.exec(
      "CREATE FUNCTION xf.spilling(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE plpgsql SET work_mem = '64kB' AS $$"
      " DECLARE n bigint; BEGIN"
      "  CREATE TEMP TABLE IF NOT EXISTS scratch (id bigint, m text) ON COMMIT DELETE ROWS;"
      "  INSERT INTO scratch SELECT l.id, md5(l.id::text || g) FROM legacy.items l,"
      "   generate_series(1, 20) g WHERE l.id BETWEEN first_key AND last_key;"
      "  SELECT count(*) INTO n FROM (SELECT m FROM scratch ORDER BY m OFFSET 0) s;"
      "  RETURN n; END $$");
  TempDir dir;
  const auto path =
      dir.write("jobs.yaml",
                "version: 1\nlists:\n  - name: l\n    jobs:\n"
                "      - {name: spilling, table: legacy.items, key: id, function: xf.spilling,"
                " batch_size: 500, target_batch_ms: 0}\n");
  const auto r = run_cli({"run", "-f", path, "--dsn", db.dsn()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == 4);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE temp_blks_written > 0"
                 " AND temp_blks_read > 0 AND local_blks_hit + local_blks_read > 0") == 4);
  const std::string json = profile_json(db, path);
  INFO(json);
  CHECK(std::stoll(json_field(json, "spilling", "temp_blks_written")) ==
        db.count("SELECT sum(temp_blks_written) FROM pgxform.batch_log"));
}

TEST_CASE("explain names the sequential scan of the planted case and proposes the index") {
  TestDatabase db;
  create_planted(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", planted_yaml());
  run_all(db, path);
  const std::string before = snapshot(db);

  // A batch from the middle of the key range, the target half full... as the run saw it.
  const std::string text = explain(db, path, "quadratic", std::string("60000"));
  INFO(text);
  CHECK(text.find("keys [60003, 61500], 500 rows") != std::string::npos);
  CHECK(text.find("Seq Scan on target.items") != std::string::npos);
  CHECK(text.find("findings:\n  1. statement 1: Seq Scan on target.items reads") !=
        std::string::npos);
  CHECK(text.find("proposed: CREATE INDEX ON target.items (id);") != std::string::npos);
  if (db.scalar("SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'") == "1")
    CHECK(text.find("hypopg: the planner would use it") != std::string::npos);
  else
    CHECK(text.find("hypopg is not installed") != std::string::npos);
  CHECK(text.find("nothing was written: the transaction was rolled back.") != std::string::npos);
  // The batch, the hypothetical index and hypopg itself were all rolled back.
  CHECK(snapshot(db) == before);

  // The linear job reads only its batch: nothing to point out.
  const std::string linear = explain(db, path, "linear", std::nullopt);
  INFO(linear);
  CHECK(linear.find("no keys are left after the cursor, so its last batch again") !=
        std::string::npos);
  CHECK(linear.find("none: no statement reads much more than its batch needs") !=
        std::string::npos);
  CHECK(snapshot(db) == before);

  pgxform::ExplainOptions unknown;
  unknown.file = path;
  unknown.dsn = db.dsn();
  unknown.job = "no_such_job";
  std::ostringstream ignored;
  CHECK_THROWS_AS(pgxform::explain_command(unknown, ignored), pgxform::PreflightError);
  unknown.job = "quadratic";
  unknown.at = "not a number";
  CHECK_THROWS_AS(pgxform::explain_command(unknown, ignored), pgxform::PreflightError);
}

TEST_CASE("after the DBA adds the index on the target's key, the same job is flat", "[timing]") {
  TestDatabase db;
  create_planted(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", planted_yaml());
  run_all(db, path);
  REQUIRE(json_field(profile_json(db, path), "quadratic", "trend") == "\"growing\"");

  // The fix, as a DBA would apply it: start the job again on an empty target with the index.
  const auto reset = run_cli({"reset", "-f", path, "--dsn", db.dsn(), "quadratic"});
  INFO(reset.err);
  REQUIRE(reset.exit_code == 0);
  db.exec("TRUNCATE target.items; CREATE INDEX ON target.items (id)");
  run_all(db, path);
  REQUIRE(db.count("SELECT count(*) FROM target.items") == k_rows);

  const std::string json = profile_json(db, path);
  INFO(json);
  CHECK(json_field(json, "quadratic", "trend") == "\"flat\"");
  CHECK(json_field(json, "quadratic", "batches") == std::to_string(k_rows / k_batch));
  WARN("with the index: growth " << json_field(json, "quadratic", "growth") << "x");

  const std::string text = explain(db, path, "quadratic", std::string("60000"));
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
  CHECK(json_field(json, "items", "trend") == "\"flat\"");
  CHECK(json_field(json, "items", "status") == "\"pending\"");
  CHECK(json_field(json, "items", "batches") == "15");
  const double eta = std::stod(json_field(json, "items", "eta_seconds"));
  const double rate = std::stod(json_field(json, "items", "rows_per_second"));
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

TEST_CASE("rehearse changes no data, before a run and after one") {
  TestDatabase db;
  create_planted(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", planted_yaml());
  pgxform::RehearseOptions o;
  o.file = path;
  o.dsn = db.dsn();
  o.samples = 3;

  std::string before = snapshot(db);
  std::ostringstream out;
  REQUIRE(pgxform::rehearse_command(o, out) == 0);
  INFO(out.str());
  CHECK(snapshot(db) == before);
  CHECK_FALSE(db.schema_exists("pgxform"));
  CHECK(out.str().find("whole run on 4 threads:") != std::string::npos);

  run_all(db, path);
  before = snapshot(db);
  std::ostringstream again;
  REQUIRE(pgxform::rehearse_command(o, again) == 0);
  CHECK(snapshot(db) == before);

  o.jobs = {"nope"};
  CHECK_THROWS_AS(pgxform::rehearse_command(o, again), pgxform::PreflightError);
}

TEST_CASE("rehearse projects a job's duration within a factor of 2 of the real run", "[timing]") {
  TestDatabase db;
  create_items(db, 200000);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(5000));
  pgxform::RehearseOptions o;
  o.file = path;
  o.dsn = db.dsn();
  const pgxform::Rehearsal rehearsal = pgxform::rehearse(o);
  REQUIRE(rehearsal.jobs.size() == 1);
  const pgxform::JobRehearsal& job = rehearsal.jobs.front();
  CHECK(job.error.empty());
  CHECK(job.samples.size() == 3);
  CHECK(job.rows == 200000);
  CHECK_FALSE(job.growing());
  CHECK(rehearsal.run.seconds == Approx(job.projected_ms / 1000));
  CHECK(db.count("SELECT count(*) FROM target.items") == 0);

  REQUIRE(run_cli({"run", "-f", path, "--dsn", db.dsn()}).exit_code == 0);
  const double real = std::stod(
      db.scalar("SELECT extract(epoch FROM finished_at - started_at) FROM pgxform.job_state"
                " WHERE job = 'items'"));
  const double projected = job.projected_ms / 1000;
  WARN("rehearse projected " << projected << " s, the run took " << real << " s; commit "
                             << rehearsal.commit_ms.value_or(-1) << " ms; ms per 1000 rows "
                             << job.samples[0].ms_per_row * 1000 << " "
                             << job.samples[1].ms_per_row * 1000 << " "
                             << job.samples[2].ms_per_row * 1000 << "; batch_log sum "
                             << db.scalar("SELECT sum(duration_ms) FROM pgxform.batch_log"));
  CHECK(projected > real / 2);
  CHECK(projected < real * 2);
}

TEST_CASE("rehearse counts the foreign-key checks it skips and adds their cost") {
  TestDatabase db;
  // As in the sample migration: `children` references rows that `parents`, in a list before
  // it, writes, so at rehearsal time every child row fails its foreign key. Each child row is
  // one check; the copy beside it, into a table without foreign keys, is none.
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.items (id bigint PRIMARY KEY, v int NOT NULL);"
      "INSERT INTO legacy.items SELECT g * 3, g FROM generate_series(1, 6000) g;"
      "CREATE TABLE target.parents (id bigint PRIMARY KEY);"
      "CREATE TABLE target.children (id bigint NOT NULL, parent bigint NOT NULL"
      " REFERENCES target.parents);"
      "CREATE TABLE target.copies (id bigint NOT NULL);"
      "CREATE FUNCTION xf.parents(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS $$ WITH ins AS (INSERT INTO target.parents SELECT id FROM legacy.items"
      " WHERE id BETWEEN first_key AND last_key RETURNING 1) SELECT count(*) FROM ins $$;"
      "CREATE FUNCTION xf.children(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS $$"
      "  INSERT INTO target.copies SELECT id FROM legacy.items"
      "   WHERE id BETWEEN first_key AND last_key;"
      "  WITH ins AS (INSERT INTO target.children SELECT id, id FROM legacy.items"
      "   WHERE id BETWEEN first_key AND last_key RETURNING 1) SELECT count(*) FROM ins $$;"
      "ANALYZE legacy.items;");
  TempDir dir;
  const auto path =
      dir.write("jobs.yaml",
                "version: 1\nlists:\n"
                "  - name: parents\n    jobs:\n"
                "      - {name: parents, table: legacy.items, key: id, function: xf.parents,"
                " batch_size: 500, target_batch_ms: 0}\n"
                "  - name: children\n    after: [parents]\n    jobs:\n"
                "      - {name: children, table: legacy.items, key: id, function: xf.children,"
                " batch_size: 500, target_batch_ms: 0}\n");
  const auto counts = [&db] {
    return db.scalar(
        "SELECT (SELECT count(*) FROM target.parents) || '/' || (SELECT count(*) FROM"
        " target.children) || '/' || (SELECT count(*) FROM target.copies)");
  };
  pgxform::RehearseOptions o;
  o.file = path;
  o.dsn = db.dsn();
  const pgxform::Rehearsal rehearsal = pgxform::rehearse(o);
  CHECK(counts() == "0/0/0");
  CHECK_FALSE(db.schema_exists("pgxform"));
  REQUIRE(rehearsal.jobs.size() == 2);

  const pgxform::JobRehearsal& parents = rehearsal.jobs[0];
  CHECK(parents.error.empty());
  CHECK_FALSE(parents.foreign_keys_unchecked);
  CHECK_FALSE(parents.fk_checks_per_row);
  CHECK(parents.projected_fk_ms == 0);

  const pgxform::JobRehearsal& children = rehearsal.jobs[1];
  INFO(children.error);
  REQUIRE(children.error.empty());
  CHECK(children.foreign_keys_unchecked);
  REQUIRE(children.samples.size() == 3);
  // Counted, not timed: one check per child row, none for the copies.
  for (const auto& s : children.samples) CHECK(s.fk_checks == s.rows);
  REQUIRE(children.fk_checks_per_row);
  CHECK(*children.fk_checks_per_row == 1.0);
  // Calibrated once, and the job's projection holds every row's check at that cost, on top of
  // what the samples measured and one COMMIT per batch.
  REQUIRE(rehearsal.fk_check_ms);
  CHECK(*rehearsal.fk_check_ms > 0);
  CHECK(children.projected_fk_ms == Approx(children.rows * *rehearsal.fk_check_ms));
  CHECK(children.projected_ms >
        children.projected_fk_ms + children.batches * rehearsal.commit_ms.value_or(0));
  WARN("a foreign-key check costs " << *rehearsal.fk_check_ms * 1000
                                    << " µs: " << children.projected_fk_ms << " of the "
                                    << children.projected_ms << " ms projected for children");

  std::ostringstream out;
  REQUIRE(pgxform::rehearse_command(o, out) == 0);
  INFO(out.str());
  CHECK(out.str().find("The checks' cost was estimated, 1.00 checks per row at ") !=
        std::string::npos);
  CHECK(counts() == "0/0/0");
}

TEST_CASE("rehearse --json prints the projections as one object and changes no data") {
  TestDatabase db;
  create_planted(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", planted_yaml());
  const std::string before = snapshot(db);
  const auto r = run_cli({"rehearse", "-f", path, "--dsn", db.dsn(), "--json"});
  INFO(r.err);
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(snapshot(db) == before);
  CHECK_FALSE(db.schema_exists("pgxform"));

  // PostgreSQL parses it: a jsonb cast fails on anything that is not one valid JSON value.
  const auto field = [&db, &r](const std::string& expression) {
    return db.scalar("SELECT " + expression + " FROM (SELECT $json$" + r.out +
                     "$json$::jsonb AS j) x");
  };
  CHECK(field("jsonb_typeof(j)") == "object");
  CHECK(field("j->>'threads'") == "4");
  CHECK(field("jsonb_typeof(j->'fk_check_ms')") == "null");
  CHECK(field("jsonb_array_length(j->'jobs')") == "2");
  CHECK(field("j->'jobs'->0->>'job'") == "quadratic");
  CHECK(field("j->'jobs'->1->>'job'") == "linear");
  const double quadratic = std::stod(field("j->'jobs'->0->>'projected_seconds'"));
  const double linear = std::stod(field("j->'jobs'->1->>'projected_seconds'"));
  CHECK(quadratic > 0);
  CHECK(linear > 0);
  // Two independent lists on 4 threads: side by side, so the run takes the longer of the two.
  CHECK(std::stod(field("j->>'seconds'")) == Approx(std::max(quadratic, linear)).margin(0.002));
  CHECK(field("j->'jobs'->0->>'rows'") == std::to_string(k_rows));
  CHECK(field("jsonb_array_length(j->'jobs'->0->'samples')") == "3");
  CHECK(field("jsonb_typeof(j->'jobs'->0->'samples'->0->'after')") == "null");
  CHECK(field("jsonb_typeof(j->'jobs'->0->'samples'->1->'after')") == "string");
  CHECK(field("j->'jobs'->0->>'foreign_keys_unchecked'") == "false");
  CHECK(field("jsonb_typeof(j->'jobs'->0->'fk_checks_per_row')") == "null");
  CHECK(field("jsonb_typeof(j->'jobs'->0->'error')") == "null");
  // Which of the two, a timing says: only its type is the format's.
  CHECK(field("jsonb_typeof(j->'jobs'->1->'trend')") == "string");
  CHECK(field("jsonb_array_length(j->'lists')") == "2");
}
