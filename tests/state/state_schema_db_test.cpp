// The state schema (state_schema.h) against a real PostgreSQL: created once under the setup
// lock however many runners start at the same instant; made by a DBA for a role without CREATE
// on the database, and used as it is; a schema of an older version upgraded in place by the
// next run, its batches kept.
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
