// The state schema (state_schema.h) against a real PostgreSQL: created once under the setup
// lock however many runners start at the same instant; made by a DBA for a role without CREATE
// on the database, and used as it is; a schema of an older version upgraded in place by the
// next run, its batches kept. And when a DBA's hand has been in it: a dropped table, a dropped
// schema_version, a schema of a newer pgxform. Each is said as what it is, with the way back, and
// nothing is written.
#include <catch2/catch.hpp>

#include "state/state_schema.h"
#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

TEST_CASE("four runners started at the same instant on a fresh database all finish, rows once") {
  for (int round = 0; round < 4; ++round) {
    TestDatabase db;
    create_items(db, 600);
    TempDir dir;
    const auto path = dir.write("jobs.yaml", items_jobs_yaml(50, 2) +
                                                 "  - name: other\n    jobs:\n"
                                                 "      - {name: step, sql: SELECT 1}\n");
    std::vector<std::unique_ptr<Child>> runners;
    for (int i = 0; i < 4; ++i)
      runners.push_back(std::make_unique<Child>(with_db(db, path, {"run"}), dir.path()));
    for (auto& runner : runners) {
      const int code = runner->wait();
      INFO("round " << round << ": " << runner->err());
      CHECK(code == 0);
    }
    CHECK(missing_items(db) == 0);
    CHECK(duplicate_items(db) == 0);
    CHECK(db.count("SELECT count(*) FROM pgxform.job_state WHERE status = 'done'") == 2);
  }
}

TEST_CASE("a role without CREATE on the database migrates with a state schema made for it") {
  TestDatabase db;
  create_items(db, 300);
  TestRole migrator(db, "migrator");
  // What a DBA grants: the legacy data to read, the target and transform schemas to own, and a
  // state schema created for the role. No CREATE on the database, no superuser.
  db.exec("REVOKE CREATE ON DATABASE " + db.name() + " FROM PUBLIC;" +
          "GRANT USAGE ON SCHEMA legacy TO " + migrator.name() + ";" +
          "GRANT SELECT ON legacy.items TO " + migrator.name() + ";" +
          "DROP SCHEMA target CASCADE; DROP SCHEMA xf CASCADE;" +
          "CREATE SCHEMA target AUTHORIZATION " + migrator.name() + ";" +
          "CREATE SCHEMA xf AUTHORIZATION " + migrator.name() + ";" +
          "CREATE SCHEMA pgxform AUTHORIZATION " + migrator.name());
  TempDir dir;
  std::filesystem::create_directory(dir.path() + "/sql");
  dir.write("sql/V1__target.sql", "CREATE TABLE target.items (id bigint NOT NULL, v int);");
  dir.write("sql/R__transforms.sql",
            "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint)"
            " RETURNS bigint LANGUAGE sql AS 'WITH i AS (INSERT INTO target.items SELECT id,"
            " v * 10 FROM legacy.items WHERE id BETWEEN first_key AND last_key RETURNING 1)"
            " SELECT count(*) FROM i';");
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50, 2));
  const auto run = run_cli({"run", "-f", path, "--dsn", migrator.dsn()});
  INFO(run.err);
  CHECK(run.exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  for (const char* command : {"status", "validate", "plan", "profile", "info", "verify"}) {
    const auto r = run_cli({command, "-f", path, "--dsn", migrator.dsn()});
    INFO(command << ": " << r.err);
    // verify has no verify: query to run (exit 2); everything else works.
    CHECK(r.exit_code == (std::string(command) == "verify" ? 2 : 0));
  }
}

TEST_CASE(
    "a state schema of the previous version is upgraded in place by the next run, its batches "
    "kept") {
  TestDatabase db;
  create_items(db, 250);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  // Back to version 4, as a pgxform before the batch counters and sizes left it.
  db.exec(
      "ALTER TABLE pgxform.batch_log DROP COLUMN shared_blks_hit, DROP COLUMN shared_blks_read,"
      " DROP COLUMN shared_blks_dirtied, DROP COLUMN shared_blks_written,"
      " DROP COLUMN local_blks_hit, DROP COLUMN local_blks_read, DROP COLUMN temp_blks_read,"
      " DROP COLUMN temp_blks_written, DROP COLUMN batch_size;"
      "DROP TABLE pgxform.control; ALTER TABLE pgxform.job_state DROP COLUMN waiting;"
      "DROP TABLE pgxform.change_log;"
      "ALTER TABLE pgxform.batch_log DROP COLUMN catch_up, ADD PRIMARY KEY (job, batch_no);"
      "ALTER TABLE pgxform.failed_batches DROP COLUMN catch_up;"
      "ALTER TABLE pgxform.job_state DROP COLUMN catch_up_waiting;"
      "ALTER TABLE pgxform.job_state DROP COLUMN table_schema, DROP COLUMN table_name,"
      " DROP COLUMN key_column, DROP COLUMN key_type, DROP COLUMN function_schema,"
      " DROP COLUMN function_name;"
      "DROP TABLE pgxform.runner_pool;"
      "DROP TABLE pgxform.capture_slot, pgxform.capture_table;"
      "ALTER TABLE pgxform.job_state DROP COLUMN capture_lost;"
      "DROP FUNCTION pgxform.key_reads_as(text, regtype);"
      "DELETE FROM pgxform.schema_version WHERE version >= 5");
  // Version 4 is what profile reads, too: no counters, no error.
  auto old = run_cli({"profile", "--json", "-f", path, "--dsn", db.dsn()});
  INFO(old.err);
  CHECK(old.exit_code == 0);
  CHECK(job_in(parse_json(old.out), "items")["shared_blks_hit"].is_null());

  db.exec("INSERT INTO legacy.items SELECT g * 3, g FROM generate_series(251, 420) g");
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  CHECK(db.scalar("SELECT max(version) FROM pgxform.schema_version") ==
        std::to_string(pgxform::newest_state_version()));
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  // The three batches of the first run, without counters or sizes; the two of the second,
  // with.
  CHECK(db.scalar("SELECT string_agg(batch_no || ':' || (shared_blks_hit IS NOT NULL) || ':' ||"
                  " coalesce(batch_size::text, '-'), ' ' ORDER BY batch_no)"
                  " FROM pgxform.batch_log") ==
        "1:false:- 2:false:- 3:false:- 4:true:100 5:true:100");
  auto now = run_cli({"profile", "--json", "-f", path, "--dsn", db.dsn()});
  CHECK(now.exit_code == 0);
  const Json upgraded = job_in(parse_json(now.out), "items");
  CHECK(upgraded["batches"] == 5);
  CHECK_FALSE(upgraded["shared_blks_hit"].is_null());
}

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
