// Bad input: exit 2, a message naming the file and line or the job, and nothing written —
// neither the state schema nor a row of the target.
#include <catch2/catch.hpp>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

// Runs `pgxform run` on `yaml` and checks the three promises of bad input.
CliResult expect_rejected(TestDatabase& db, const TempDir& dir, const std::string& yaml) {
  const std::string path = dir.write("jobs.yaml", yaml);
  CliResult r = run_cli({"run", "-f", path, "--dsn", db.dsn()});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_FALSE(db.schema_exists("pgxform"));
  CHECK(db.count("SELECT count(*) FROM target.items") == 0);
  return r;
}

std::string job_with(const std::string& fields) {
  return "version: 1\nlists:\n  - name: main\n    jobs:\n      - name: items\n" + fields;
}

}  // namespace

TEST_CASE("a typo in a field name exits 2 naming the file and line, and writes nothing") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  auto r = expect_rejected(db, dir,
                           job_with("        table: legacy.items\n        key: id\n"
                                    "        function: xf.items\n        batchsize: 10\n"));
  CHECK_THAT(r.err, Catch::Contains("jobs.yaml:9:") && Catch::Contains("batchsize"));
}

TEST_CASE("a YAML syntax error exits 2 naming the line, and writes nothing") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  auto r = expect_rejected(db, dir, "version: 1\nlists:\n  - name: [main\n");
  CHECK_THAT(r.err, Catch::Contains("jobs.yaml:") && Catch::Contains("YAML syntax error"));
}

TEST_CASE("a cycle in after exits 2 and writes nothing") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  auto r = expect_rejected(db, dir,
                           "version: 1\nlists:\n"
                           "  - name: a\n    after: [b]\n    jobs: [{name: x, sql: SELECT 1}]\n"
                           "  - name: b\n    after: [a]\n    jobs: [{name: y, sql: SELECT 1}]\n");
  CHECK_THAT(r.err, Catch::Contains("cycle"));
}

TEST_CASE("a missing table exits 2 naming the job and the table, and writes nothing") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  auto r = expect_rejected(
      db, dir,
      job_with("        table: legacy.nope\n        key: id\n        function: xf.items\n"));
  CHECK_THAT(r.err, Catch::Contains("job 'items'") && Catch::Contains("legacy.nope") &&
                        Catch::Contains("does not exist"));
}

TEST_CASE("a missing key column exits 2 naming the job and the column, and writes nothing") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  auto r = expect_rejected(
      db, dir,
      job_with("        table: legacy.items\n        key: nokey\n        function: xf.items\n"));
  CHECK_THAT(r.err, Catch::Contains("job 'items'") && Catch::Contains("nokey"));
}

TEST_CASE("a missing function exits 2 naming the job and the function, and writes nothing") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  auto r = expect_rejected(
      db, dir,
      job_with("        table: legacy.items\n        key: id\n        function: xf.nope\n"));
  CHECK_THAT(r.err, Catch::Contains("job 'items'") && Catch::Contains("xf.nope"));
}

TEST_CASE("a function that does not take two arguments of the key's type exits 2") {
  TestDatabase db;
  create_items(db, 100);
  db.exec("CREATE FUNCTION xf.dates(a date, b date) RETURNS void LANGUAGE sql AS 'SELECT'");
  TempDir dir;
  auto r = expect_rejected(
      db, dir,
      job_with("        table: legacy.items\n        key: id\n        function: xf.dates\n"));
  CHECK_THAT(r.err, Catch::Contains("job 'items'") && Catch::Contains("bigint") &&
                        Catch::Contains("does not accept two arguments"));
}

TEST_CASE("a function returning something other than a count or void exits 2") {
  TestDatabase db;
  create_items(db, 100);
  db.exec(
      "CREATE FUNCTION xf.texty(a bigint, b bigint) RETURNS text LANGUAGE sql AS 'SELECT ''x'''");
  TempDir dir;
  auto r = expect_rejected(
      db, dir,
      job_with("        table: legacy.items\n        key: id\n        function: xf.texty\n"));
  CHECK_THAT(r.err, Catch::Contains("returns text"));
}

TEST_CASE("every problem of the preflight is reported at once") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  auto r = expect_rejected(db, dir,
                           "version: 1\nlists:\n  - name: main\n    jobs:\n"
                           "      - {name: a, table: legacy.nope, key: id, function: xf.items}\n"
                           "      - {name: b, table: legacy.items, key: id, function: xf.nope}\n");
  CHECK_THAT(r.err, Catch::Contains("job 'a'") && Catch::Contains("job 'b'") &&
                        Catch::Contains("2 problem(s)"));
}

TEST_CASE("an unknown command or option exits 2") {
  CHECK(run_cli({"frobnicate"}).exit_code == 2);
  CHECK(run_cli({"run", "--batchsize", "3"}).exit_code == 2);
  CHECK(run_cli({}).exit_code == 2);
}

TEST_CASE("help is printed for the program and for each command") {
  auto top = run_cli({"--help"});
  CHECK(top.exit_code == 0);
  CHECK_THAT(top.out, Catch::Contains("run") && Catch::Contains("status"));
  for (const char* command : {"run", "status"}) {
    auto r = run_cli({command, "--help"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains(std::string("usage: pgxform ") + command) &&
                          Catch::Contains("--dsn"));
  }
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
      job_with(
          "        table: legacy.nullable\n        key: id\n"
          "        function: xf.nullable\n        batch_size: 20\n        target_batch_ms: 0\n"));
  auto r = run_cli({"run", "-f", path, "--dsn", db.dsn()});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("job 'items'") && Catch::Contains("NULLs"));
  CHECK(db.count("SELECT count(*) FROM target.items") == 50);
}

TEST_CASE("a password in the DSN never appears in a message or a log line") {
  TestDatabase db;
  create_items(db, 100);
  // A role of this test's own, with a password that the server really checks (scram) when the
  // cluster asks for one, as pg_virtualenv's does over TCP.
  const std::string role = db.name() + "_pw";
  db.exec("CREATE ROLE " + role + " LOGIN SUPERUSER PASSWORD 'Sekrit-4711'");
  TempDir dir;
  const std::string path = dir.write("jobs.yaml", items_jobs_yaml(10));
  auto ok = run_cli(
      {"run", "-v", "-f", path, "--dsn", db.dsn() + " user=" + role + " password=Sekrit-4711"});
  auto status = run_cli(
      {"status", "-v", "-f", path, "--dsn", "postgresql://" + role + ":Sekrit-4711@/" + db.name()});
  // A wrong password: the error must not echo either password.
  auto wrong = run_cli(
      {"status", "-f", path, "--dsn", db.dsn() + " user=nobody_" + role + " password=Wrong-0815"});
  db.exec("DROP OWNED BY " + role + "; DROP ROLE " + role);
  INFO(ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(status.exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM target.items") == 100);
  for (const auto* r : {&ok, &status, &wrong}) {
    CHECK_THAT(r->err, !Catch::Contains("Sekrit-4711") && !Catch::Contains("Wrong-0815"));
    CHECK_THAT(r->out, !Catch::Contains("Sekrit-4711"));
  }
  CHECK(wrong.exit_code == 2);
  CHECK_THAT(wrong.err, Catch::Contains("cannot connect"));
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
