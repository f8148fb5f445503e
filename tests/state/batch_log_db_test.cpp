// The batch log (batch_log.h) through real runs: a row per batch that took effect, counting
// the rows of bisected batches as the job's counters do; each row carrying the blocks its
// batch touched (the function's included), the sorts past work_mem and temporary tables.
#include <catch2/catch.hpp>

#include "support/fixtures.h"
#include "support/planted.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

TEST_CASE("a skip run's log counts the rows of bisected batches as status does") {
  TestDatabase db;
  create_items(db, 1000);
  // Key 1500 fails: its batch is bisected, its other 99 rows commit in halves.
  poisoned_items_function(db, 1500);
  TempDir dir;
  const auto path =
      dir.write("jobs.yaml", "version: 1\ndefaults: {on_error: skip, bisect: true}\n" +
                                 items_jobs_yaml(100).substr(std::string("version: 1\n").size()));
  const auto r = run_cli(with_db(db, path, {"run"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(job_status_json(db, path, "items")["rows_done"].get<long long>() == 999);
  check_log_matches_counters(db);
  const long long batches = db.count("SELECT count(*) FROM pgxform.batch_log");
  CHECK_THAT(r.err, Catch::Contains("items: done, 999 rows in " + std::to_string(batches) +
                                    " batches this run"));
  CHECK_THAT(r.err, Catch::Contains(", 1 range set aside; 999 rows in all"));
}

TEST_CASE("each batch_log row carries the blocks its batch touched, the function's included") {
  TestDatabase db;
  create_planted(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", planted_yaml());
  run_planted(db, path);

  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == 2 * k_planted_rows / k_planted_batch);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE shared_blks_hit IS NULL"
                 " OR shared_blks_read IS NULL OR shared_blks_dirtied IS NULL"
                 " OR shared_blks_written IS NULL OR local_blks_hit IS NULL"
                 " OR local_blks_read IS NULL OR temp_blks_read IS NULL"
                 " OR temp_blks_written IS NULL") == 0);
  // Each batch inserts k_planted_batch rows: it touches at least a block per row, and dirties some.
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
                    std::to_string(k_planted_rows / k_planted_batch - 10) +
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
  CHECK(std::stoll(profile_field(json, "quadratic", "shared_blks_hit")) +
            std::stoll(profile_field(json, "quadratic", "shared_blks_read")) ==
        db.count("SELECT sum(shared_blks_hit + shared_blks_read) FROM pgxform.batch_log"
                 " WHERE job = 'quadratic'"));
  CHECK(std::stod(profile_field(json, "quadratic", "blocks_growth")) > 1.1);
  CHECK(std::stod(profile_field(json, "linear", "blocks_growth")) < 1.05);
  CHECK(std::stod(profile_field(json, "linear", "blocks_per_row")) >= 1);
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
  CHECK(std::stoll(profile_field(json, "spilling", "temp_blks_written")) ==
        db.count("SELECT sum(temp_blks_written) FROM pgxform.batch_log"));
}
