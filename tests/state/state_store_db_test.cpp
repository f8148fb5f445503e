// The job and slice rows (state_store.h) through real runs: a sliced job's slices cut once and
// covering the key range, each batch within its slice, the rows appended later sliced by the
// next run; a function changed under a started job refused naming both versions until the
// job is reset or the change accepted.
#include <catch2/catch.hpp>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

TEST_CASE("a sliced job covers the whole key range once, each slice within its bounds",
          "[threads]") {
  TestDatabase db;
  create_items(db, 2000);
  TempDir dir;
  REQUIRE(run_with_db(db, dir.write("jobs.yaml", items_jobs_yaml(70, 4)), {"run", "--threads", "4"})
              .exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.count(
            "SELECT count(*) FROM pgxform.job_slice WHERE job = 'items' AND status = 'done'") == 4);
  // Every logged batch lies inside its slice's bounds.
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log b JOIN pgxform.job_slice s"
                 " ON s.job = b.job AND s.slice = b.slice WHERE (s.lo_key IS NOT NULL AND"
                 " b.first_key::bigint <= s.lo_key::bigint) OR (s.hi_key IS NOT NULL AND"
                 " b.last_key::bigint > s.hi_key::bigint)") == 0);
  CHECK(db.scalar("SELECT rows_done || ' ' || status FROM pgxform.job_state") == "2000 done");
  // Rows appended past the end go to the last slice on the next run.
  db.exec("INSERT INTO legacy.items SELECT g * 3, g FROM generate_series(2001, 2100) g");
  REQUIRE(run_with_db(db, dir.write("jobs.yaml", items_jobs_yaml(70, 4)), {"run"}).exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}

TEST_CASE("a sliced job over an empty table finishes, and the next run slices the rows that came") {
  TestDatabase db;
  create_items(db, 0);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50, 3));
  auto first = run_with_db(db, path, {"run"});
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  CHECK(db.scalar("SELECT status FROM pgxform.job_state WHERE job = 'items'") == "done");
  db.exec(
      "INSERT INTO legacy.items SELECT g * 3, g FROM generate_series(1, 600) g;"
      "ANALYZE legacy.items");
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.job_slice WHERE job = 'items'") == 3);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}

TEST_CASE(
    "a function changed mid-job is refused naming both versions, and reset starts the job again "
    "with the new one") {
  TestDatabase db;
  create_items(db, 1000, 0);
  poisoned_items_function(db, 1500);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 1);
  const std::string before = db.scalar("SELECT fn_version FROM pgxform.job_state");
  CHECK(before.size() == 32);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE fn_version <> '" + before + "'") ==
        0);
  plain_items_function(db);
  auto refused = run_cli(with_db(db, path, {"run"}));
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.err, Catch::Contains(before.substr(0, 12)));
  CHECK(db.scalar("SELECT fn_version FROM pgxform.job_state") == before);
  // A change of whitespace alone is not a change.
  db.exec(
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS 'WITH i AS (INSERT INTO target.items SELECT id, v * 10 / CASE WHEN"
      " id = 1500   THEN 0   ELSE 1 END FROM legacy.items WHERE id BETWEEN first_key AND"
      "    last_key RETURNING 1)   SELECT count(*) FROM i'");
  CHECK(run_cli(with_db(db, path, {"run"})).exit_code == 1);  // runs (and fails on 1500 again)
  plain_items_function(db);
  REQUIRE(run_cli(with_db(db, path, {"reset", "items"})).exit_code == 0);
  db.exec("TRUNCATE target.items");
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.count("SELECT count(DISTINCT fn_version) FROM pgxform.batch_log") == 1);
  CHECK(db.scalar("SELECT fn_version FROM pgxform.job_state") != before);
}
