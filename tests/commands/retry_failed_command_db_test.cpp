// retry-failed against a real PostgreSQL: the ranges a skip run set aside, retried once the
// function is cured, logged with their slice and counted in the slice and the job.
#include <catch2/catch.hpp>

#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

TEST_CASE(
    "retry-failed logs a sliced job's range with its slice, and counts it in the slice and the "
    "job",
    "[threads]") {
  TestDatabase db;
  create_items(db, 1000);
  // Key 2400, in the upper slice of two, is poison until cured.
  poisoned_items_function(db, 2400);
  TempDir dir;
  const auto path =
      dir.write("jobs.yaml", "version: 1\ndefaults: {on_error: skip, bisect: true}\n" +
                                 items_jobs_yaml(100, 2).substr(11));
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  const std::string slice = db.scalar("SELECT slice FROM pgxform.failed_batches");
  REQUIRE(slice == db.scalar("SELECT slice FROM pgxform.job_slice WHERE hi_key IS NULL"));
  const long long slice_rows =
      db.count("SELECT rows_done FROM pgxform.job_slice WHERE slice = " + slice);
  plain_items_function(db);
  const auto fixed = run_cli(with_db(db, path, {"retry-failed"}));
  INFO(fixed.out);
  CHECK(fixed.exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.scalar("SELECT slice || ' ' || rows || ' ' || (shared_blks_hit IS NOT NULL) FROM"
                  " pgxform.batch_log WHERE first_key = '2400'") == slice + " 1 true");
  CHECK(db.count("SELECT rows_done FROM pgxform.job_slice WHERE slice = " + slice) ==
        slice_rows + 1);
  CHECK(db.count("SELECT rows_done FROM pgxform.job_state") == 1000);
  // The cursors stayed where the run left them: at the end of each slice.
  CHECK(db.count("SELECT count(*) FROM pgxform.job_slice WHERE status = 'done'") == 2);
}
