// The preflight against PostgreSQL's catalogs (catalog.h: check_catalog): a job's missing table,
// key column or function, a function of the wrong signature or return type, a key of a type
// without an ordering, each refused with exit 2 naming the job, all problems at once, nothing
// written; a key that holds NULLs warned about; and a database error while checking is a
// failure (exit 1), never bad input.
#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

TEST_CASE("a missing table exits 2 naming the job and the table, and writes nothing") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  auto r = expect_run_refused(
      db, dir,
      items_job_with("        table: legacy.nope\n        key: id\n        function: xf.items\n"));
  CHECK_THAT(r.err, Catch::Contains("job 'items'") && Catch::Contains("legacy.nope") &&
                        Catch::Contains("does not exist"));
}

TEST_CASE("a missing key column exits 2 naming the job and the column, and writes nothing") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  auto r = expect_run_refused(
      db, dir,
      items_job_with(
          "        table: legacy.items\n        key: nokey\n        function: xf.items\n"));
  CHECK_THAT(r.err, Catch::Contains("job 'items'") && Catch::Contains("nokey"));
}

TEST_CASE("a missing function exits 2 naming the job and the function, and writes nothing") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  auto r = expect_run_refused(
      db, dir,
      items_job_with("        table: legacy.items\n        key: id\n        function: xf.nope\n"));
  CHECK_THAT(r.err, Catch::Contains("job 'items'") && Catch::Contains("xf.nope"));
}

TEST_CASE("a function that does not take two arguments of the key's type exits 2") {
  TestDatabase db;
  create_items(db, 100);
  db.exec("CREATE FUNCTION xf.dates(a date, b date) RETURNS void LANGUAGE sql AS 'SELECT'");
  TempDir dir;
  auto r = expect_run_refused(
      db, dir,
      items_job_with("        table: legacy.items\n        key: id\n        function: xf.dates\n"));
  CHECK_THAT(r.err, Catch::Contains("job 'items'") && Catch::Contains("bigint") &&
                        Catch::Contains("does not accept two arguments"));
}

TEST_CASE("a function returning something other than a count or void exits 2") {
  TestDatabase db;
  create_items(db, 100);
  db.exec(
      "CREATE FUNCTION xf.texty(a bigint, b bigint) RETURNS text LANGUAGE sql AS 'SELECT ''x'''");
  TempDir dir;
  auto r = expect_run_refused(
      db, dir,
      items_job_with("        table: legacy.items\n        key: id\n        function: xf.texty\n"));
  CHECK_THAT(r.err, Catch::Contains("returns text"));
}

TEST_CASE("every problem of the preflight is reported at once") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  auto r =
      expect_run_refused(db, dir,
                         "version: 1\nlists:\n  - name: main\n    jobs:\n"
                         "      - {name: a, table: legacy.nope, key: id, function: xf.items}\n"
                         "      - {name: b, table: legacy.items, key: id, function: xf.nope}\n");
  CHECK_THAT(r.err, Catch::Contains("job 'a'") && Catch::Contains("job 'b'") &&
                        Catch::Contains("2 problem(s)"));
}

TEST_CASE("rows whose key is NULL are warned about and left out of every batch") {
  TestDatabase db;
  create_items(db, 100);
  db.exec(
      "CREATE TABLE legacy.nullable (id bigint, v int NOT NULL);"
      "CREATE INDEX ON legacy.nullable (id);"
      "INSERT INTO legacy.nullable SELECT g, g FROM generate_series(1, 50) g;"
      "INSERT INTO legacy.nullable VALUES (NULL, 7), (NULL, 8);"
      "CREATE FUNCTION xf.nullable(a bigint, b bigint) RETURNS bigint LANGUAGE sql AS"
      " 'WITH i AS (INSERT INTO target.items SELECT id, v FROM legacy.nullable"
      "  WHERE id BETWEEN a AND b RETURNING 1) SELECT count(*) FROM i'");
  TempDir dir;
  const std::string path = dir.write(
      "jobs.yaml",
      items_job_with(
          "        table: legacy.nullable\n        key: id\n"
          "        function: xf.nullable\n        batch_size: 20\n        target_batch_ms: 0\n"));
  auto r = run_cli({"run", "-f", path, "--dsn", db.dsn()});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("job 'items'") && Catch::Contains("NULLs"));
  CHECK(db.count("SELECT count(*) FROM target.items") == 50);
}

TEST_CASE("a database error while checking is a failure (exit 1), never reported as bad input") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const std::string path = dir.write("jobs.yaml", items_jobs_yaml(10));
  REQUIRE(run_cli({"run", "-f", path, "--dsn", db.dsn()}).exit_code == 0);
  // A role that may read all that validate reads, but the slices' table.
  const std::string role = db.name() + "_reader";
  db.exec("CREATE ROLE " + role + " LOGIN PASSWORD 'Reader-1';" +
          "GRANT USAGE ON SCHEMA legacy, target, xf, pgxform TO " + role + ";" +
          "GRANT SELECT ON ALL TABLES IN SCHEMA legacy, pgxform TO " + role + ";" +
          "REVOKE SELECT ON pgxform.job_slice FROM " + role);
  const auto r =
      run_cli({"validate", "-f", path, "--dsn", db.dsn() + " user=" + role + " password=Reader-1"});
  db.exec("DROP OWNED BY " + role + "; DROP ROLE " + role);
  INFO(r.err);
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("permission denied"));
  CHECK_THAT(r.out, !Catch::Contains("error:"));
}

TEST_CASE("a key of a type without an ordering is refused by validate and run, nothing written") {
  TestDatabase db;
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.docs (doc json);"
      "CREATE FUNCTION xf.docs(a json, b json) RETURNS void LANGUAGE sql AS 'SELECT 1'");
  TempDir dir;
  const auto path = dir.write("jobs.yaml",
                              "version: 1\nlists:\n  - name: l\n    jobs:\n"
                              "      - {name: docs, table: legacy.docs, key: doc,"
                              " function: xf.docs}\n");
  for (const char* command : {"validate", "run"}) {
    const auto r = run_cli(with_db(db, path, {command}));
    INFO(command << ": " << r.err << r.out);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err + r.out, Catch::Contains("is of type json, which has no ordering"));
  }
  CHECK_FALSE(db.schema_exists("pgxform"));
}

TEST_CASE("a lock wait that times out on a catalog probe is a failure (exit 1), not bad input") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10));
  // Another session holds the table: the probe of the key's ordering waits for it, then gives
  // up after lock_timeout (55P03).
  pqxx::connection holder(db.dsn());
  pqxx::work hold(holder);
  hold.exec("LOCK TABLE legacy.items IN ACCESS EXCLUSIVE MODE");
  for (const char* command : {"validate", "run"}) {
    const auto r =
        run_cli({command, "-f", path, "--dsn", db.dsn() + " options='-c lock_timeout=200'"});
    INFO(command << ": " << r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains("lock timeout") && !Catch::Contains("has no ordering"));
  }
  hold.abort();
  CHECK_FALSE(db.schema_exists("pgxform"));
}
