// The counters (docs/cli.md, "Counters"): rows, batches and DONE% say the same thing in the
// run's log, status, status --json and the batch log, after a reset into the middle of a
// batch, a failure a few keys short of the end, and a skip run that bisects.
#include <catch2/catch.hpp>

#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

namespace {

long long json_rows_done(TestDatabase& db, const std::string& path) {
  const auto status = run_cli(with_db(db, path, {"status", "--json"}));
  REQUIRE(status.exit_code == 0);
  return job_in(parse_json(status.out), "items")["rows_done"].get<long long>();
}

// The batch log and the job's counters agree: every committed batch counted once.
void check_log_matches_counters(TestDatabase& db) {
  CHECK(db.count("SELECT rows_done FROM pgxform.job_state") ==
        db.count("SELECT coalesce(sum(rows), 0) FROM pgxform.batch_log"));
  CHECK(db.count("SELECT batches_done FROM pgxform.job_state") ==
        db.count("SELECT count(*) FROM pgxform.batch_log"));
}

}  // namespace

TEST_CASE("after reset --to a key inside a batch and a rerun each row is counted once") {
  TestDatabase db;
  create_items(db, 500);  // keys 3, 6, ..., 1500: batches of 100 end at 300, 600, 900, ...
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  REQUIRE(json_rows_done(db, path) == 500);

  // 750 cuts the batch [603, 900]: its rows up to 750 stay counted, the rest are run again.
  db.exec("DELETE FROM target.items WHERE id > 750");
  REQUIRE(run_cli(with_db(db, path, {"reset", "items", "--to", "750"})).exit_code == 0);
  CHECK(db.count("SELECT rows_done FROM pgxform.job_state") == 250);
  check_log_matches_counters(db);

  const auto again = run_cli(with_db(db, path, {"run"}));
  INFO(again.err);
  REQUIRE(again.exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(json_rows_done(db, path) == 500);
  check_log_matches_counters(db);
  // The run's last line counts this run's rows, and the job's rows in all as status does.
  CHECK_THAT(again.err, Catch::Contains("items: done, 250 rows in 3 batches this run"));
  CHECK_THAT(again.err, Catch::Contains("; 500 rows in all"));
}

TEST_CASE("a failed job a few keys short of the end of its range is not shown 100 percent done") {
  TestDatabase db;
  create_items(db, 0);
  // One key far below the rest: the cursor, after the first batch, sits 0.00002 % short of the
  // largest key, where the last key fails.
  db.exec(
      "INSERT INTO legacy.items VALUES (1, 1);"
      "INSERT INTO legacy.items SELECT g, 1 FROM generate_series(10000000, 10000100) g;"
      "ANALYZE legacy.items;");
  poisoned_items_function(db, 10000100);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  const auto run = run_cli(with_db(db, path, {"run"}));
  REQUIRE(run.exit_code == 1);
  REQUIRE(db.scalar("SELECT status || ' ' || last_key FROM pgxform.job_state") ==
          "failed 10000098");
  // The error names the DBA's function, not the wrapper each batch calls.
  CHECK_THAT(run.err,
             Catch::Contains("SQL function \"items\"") && !Catch::Contains("pgxform_batch_"));
  CHECK_THAT(db.scalar("SELECT error FROM pgxform.job_state"),
             Catch::Contains("division by zero") && !Catch::Contains("pgxform_batch_"));

  const auto json = run_cli(with_db(db, path, {"status", "--json"}));
  const auto job = job_in(parse_json(json.out), "items");
  CHECK(job["percent"].get<double>() == Approx(99.9));
  const auto table = run_cli(with_db(db, path, {"status"}));
  CHECK_THAT(table.out, Catch::Contains(" 99.9 ") && !Catch::Contains("100.0"));
}

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
  CHECK(json_rows_done(db, path) == 999);
  check_log_matches_counters(db);
  const long long batches = db.count("SELECT count(*) FROM pgxform.batch_log");
  CHECK_THAT(r.err, Catch::Contains("items: done, 999 rows in " + std::to_string(batches) +
                                    " batches this run"));
  CHECK_THAT(r.err, Catch::Contains(", 1 range set aside; 999 rows in all"));
}
