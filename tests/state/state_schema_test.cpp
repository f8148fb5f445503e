// The state schema (state_schema.h) against a real PostgreSQL, when a DBA's hand has been in
// it: a dropped table, a dropped schema_version, a schema of a newer pgxform. Each is said as
// what it is, with the way back, and nothing is written.
#include "state/state_schema.h"

#include <catch2/catch.hpp>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

TEST_CASE(
    "a dropped control table stops run, pause and status with its cause and the way back, not "
    "a bare error") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  db.exec("DROP TABLE pgxform.control");
  for (const char* command : {"run", "pause", "status"}) {
    std::vector<std::string> args{command};
    if (std::string(command) == "pause") args.push_back("items");
    const auto r = run_with_db(db, path, args);
    INFO(command << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("the state schema pgxform is at version") &&
                          Catch::Contains("but its table control is missing (dropped?): it holds "
                                          "the pauses and live settings") &&
                          Catch::Contains("docs/state-tables.md") &&
                          Catch::Contains("nothing was written"));
  }
  CHECK(db.scalar("SELECT to_regclass('pgxform.control') IS NULL") == "t");
}

TEST_CASE(
    "a dropped schema_version stops run with its cause, not 'relation job_state already "
    "exists', and writes nothing") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  db.exec("DROP TABLE pgxform.schema_version");
  for (const char* command : {"run", "status"}) {
    const auto r = run_with_db(db, path, {command});
    INFO(command << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("the state schema pgxform holds job_state but no version in "
                                      "schema_version") &&
                          Catch::Contains("restore it from a backup"));
    CHECK_THAT(r.err, !Catch::Contains("already exists"));
  }
  CHECK(db.scalar("SELECT to_regclass('pgxform.schema_version') IS NULL") == "t");
  CHECK(db.count("SELECT count(*) FROM pgxform.job_state WHERE status = 'done'") == 1);
}

TEST_CASE("status of a state schema of a newer pgxform warns that it shows only what it knows") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  const int newer = pgxform::newest_state_version() + 3;
  db.exec("INSERT INTO pgxform.schema_version (version, name) VALUES (" + std::to_string(newer) +
          ", 'from_the_future')");
  const auto status = run_with_db(db, path, {"status"});
  INFO(status.err);
  CHECK(status.exit_code == 0);
  CHECK_THAT(status.err,
             Catch::Contains("the state schema pgxform is at version " + std::to_string(newer) +
                             ", newer than this pgxform knows") &&
                 Catch::Contains("use that pgxform"));
  CHECK_THAT(status.out, Catch::Contains("done"));
  // A run refuses it, as it did.
  const auto run = run_with_db(db, path, {"run"});
  CHECK(run.exit_code != 0);
  CHECK_THAT(run.err, Catch::Contains("newer than this pgxform knows"));
}
