// Faults a run survives: its connection terminated mid-batch, and transient errors
// (serialization failure, deadlock) raised inside a batch.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

CliResult run_jobs(TestDatabase& db, const std::string& path) {
  return run_cli({"run", "-f", path, "--dsn", db.dsn()});
}

// Makes xf.items raise `sqlstate` the first `times` times it is called for the batch holding
// key 1500. The attempts are counted by a sequence, which a rollback does not undo.
void fail_transiently(TestDatabase& db, const std::string& sqlstate, int times) {
  db.exec(
      "CREATE SEQUENCE xf.attempts;"
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE plpgsql AS $$ DECLARE n bigint; BEGIN"
      " INSERT INTO target.items SELECT id, v * 10 FROM legacy.items"
      "  WHERE id BETWEEN first_key AND last_key;"
      " GET DIAGNOSTICS n = ROW_COUNT;"
      " IF 1500 BETWEEN first_key AND last_key AND nextval('xf.attempts') <= " +
      std::to_string(times) + " THEN RAISE EXCEPTION 'forced transient failure' USING ERRCODE = '" +
      sqlstate + "'; END IF; RETURN n; END $$");
}

}  // namespace

TEST_CASE("a serialization failure in a batch is retried and the run completes exactly once") {
  TestDatabase db;
  create_items(db, 1000);
  fail_transiently(db, "40001", 2);
  TempDir dir;
  auto r = run_jobs(db, dir.write("jobs.yaml", items_jobs_yaml(100)));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(db.count("SELECT last_value FROM xf.attempts") == 3);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}

TEST_CASE("a deadlock in a batch is retried and the run completes exactly once") {
  TestDatabase db;
  create_items(db, 1000);
  fail_transiently(db, "40P01", 1);
  TempDir dir;
  auto r = run_jobs(db, dir.write("jobs.yaml", items_jobs_yaml(100)));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(db.count("SELECT last_value FROM xf.attempts") == 2);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}

TEST_CASE("a transient error that outlasts the retries fails the job with its SQLSTATE") {
  TestDatabase db;
  create_items(db, 1000);
  fail_transiently(db, "40001", 1000);
  TempDir dir;
  auto r = run_jobs(db, dir.write("jobs.yaml", items_jobs_yaml(100)));
  CHECK(r.exit_code == 1);
  CHECK(db.scalar("SELECT status || ' ' || sqlstate FROM pgxform.job_state") == "failed 40001");
  CHECK(db.count("SELECT last_value FROM xf.attempts") == 6);  // the first try and 5 retries
  CHECK(duplicate_items(db) == 0);
}

TEST_CASE(
    "the runner's connection terminated mid-batch is reopened and the batch retried, "
    "exactly once") {
  TestDatabase db;
  create_items(db, 1000, 100);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  Child child({"run", "-f", path, "--dsn", db.dsn()}, dir.path());
  int terminated = 0;
  for (int i = 0; i < 500 && terminated < 3; ++i) {
    terminated += int(db.count(std::string("SELECT count(*) FROM (SELECT pg_terminate_backend(pid)"
                                           " FROM ") +
                               k_batches_in_flight + ") x"));
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  CHECK(terminated == 3);
  const int code = child.wait();
  INFO(child.err());
  CHECK(code == 0);
  CHECK_THAT(child.err(), Catch::Contains("retrying"));
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}
