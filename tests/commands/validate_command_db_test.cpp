// validate against a real PostgreSQL: what a run would check, told before the window, writing
// nothing — a sound migration passes; every problem at once (exit 2); the pending script that
// would create a missing function named; a function changed under a started job reported.
#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>

#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

TEST_CASE("validate passes a sound migration and writes nothing") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const long long tables = db.count("SELECT count(*) FROM pg_class WHERE relkind = 'r'");
  auto r = run_with_db(db, dir.write("jobs.yaml", items_jobs_yaml(10)), {"validate"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("0 error(s), 0 warning(s)"));
  check_nothing_written(db, tables);
}

TEST_CASE(
    "validate warns about a key without an index, a table never analyzed, NULL keys and a "
    "function that is not volatile") {
  TestDatabase db;
  create_items(db, 100);
  db.exec(
      "CREATE TABLE legacy.raw (k int, v int);"  // no index, never analyzed
      "INSERT INTO legacy.raw VALUES (1, 1), (NULL, 2);"
      "CREATE FUNCTION xf.raw(a int, b int) RETURNS bigint STABLE LANGUAGE sql AS"
      " 'SELECT count(*) FROM legacy.raw WHERE k BETWEEN a AND b'");
  TempDir dir;
  const long long tables = db.count("SELECT count(*) FROM pg_class WHERE relkind = 'r'");
  auto r = run_with_db(db,
                       dir.write("jobs.yaml",
                                 "version: 1\nlists:\n  - name: main\n    jobs:\n"
                                 "      - {name: raw, table: legacy.raw, key: k,"
                                 " function: xf.raw}\n"),
                       {"validate"});
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("no btree index") && Catch::Contains("CREATE INDEX ON"));
  CHECK_THAT(r.out, Catch::Contains("has not been analyzed"));
  CHECK_THAT(r.out, Catch::Contains("holds NULLs"));
  CHECK_THAT(r.out, Catch::Contains("declared STABLE"));
  CHECK_THAT(r.out, Catch::Contains("4 warning(s)"));
  check_nothing_written(db, tables);
}

TEST_CASE("validate lists every problem at once and exits 2, writing nothing") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const long long tables = db.count("SELECT count(*) FROM pg_class WHERE relkind = 'r'");
  auto r = run_with_db(
      db,
      dir.write("jobs.yaml",
                "version: 1\nlists:\n  - name: main\n    jobs:\n"
                "      - {name: a, table: legacy.nope, key: id, function: xf.items}\n"
                "      - {name: b, table: legacy.items, key: nokey, function: xf.items}\n"
                "      - {name: c, table: legacy.items, key: id, function: xf.nope}\n"),
      {"validate"});
  CHECK(r.exit_code == 2);
  // The report on stdout, the problems as the command line reports every input error.
  CHECK_THAT(r.out, Catch::Contains("3 error(s)") && !Catch::Contains("error: "));
  CHECK_THAT(r.err, Catch::Contains("pgxform: error: ") && Catch::Contains("job 'a'") &&
                        Catch::Contains("job 'b'") && Catch::Contains("job 'c'"));
  check_nothing_written(db, tables);
}

TEST_CASE("validate names the pending script that would create a missing function") {
  TestDatabase db;
  create_items(db, 100);
  db.exec("DROP FUNCTION xf.items(bigint, bigint)");
  TempDir dir;
  std::filesystem::create_directory(dir.path() + "/sql");
  // The script that creates it, not yet applied; and one that only calls it.
  dir.write("sql/R__transforms.sql",
            "-- the transforms\nCREATE OR REPLACE FUNCTION \"xf\".ITEMS(first_key bigint,"
            " last_key bigint) RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint';\n");
  dir.write("sql/V1__uses.sql", "CREATE VIEW target.v AS SELECT 1 AS function_items;\n");
  const long long tables = db.count("SELECT count(*) FROM pg_class WHERE relkind = 'r'");
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10) +
                                               "      - {name: other, table: legacy.items,"
                                               " key: id, function: xf.other}\n");
  auto r = run_with_db(db, path, {"validate"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("function xf.items does not exist (pending script "
                                    "R__transforms.sql creates it: run pgxform migrate"));
  // A function that no script creates gets no hint.
  CHECK_THAT(r.err, Catch::Contains("function xf.other does not exist\n"));
  check_nothing_written(db, tables);
  // Once applied, the job validates.
  REQUIRE(run_with_db(db, path, {"migrate"}).exit_code == 0);
  CHECK_THAT(run_with_db(db, path, {"validate"}).err, !Catch::Contains("xf.items does not exist"));
}

TEST_CASE(
    "plan estimates an analyzed table's rows while the script creating its function is "
    "pending") {
  TestDatabase db;
  create_items(db, 100);
  db.exec("ANALYZE legacy.items; DROP FUNCTION xf.items(bigint, bigint)");
  TempDir dir;
  std::filesystem::create_directory(dir.path() + "/sql");
  dir.write("sql/R__transforms.sql",
            "CREATE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
            " LANGUAGE sql AS 'SELECT 0::bigint';\n");
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10));
  auto r = run_with_db(db, path, {"plan"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.out, Catch::Contains("~100 rows in ~10 batches"));
  CHECK_THAT(r.err, Catch::Contains("pending script R__transforms.sql creates it"));
  const auto json = parse_json(run_with_db(db, path, {"plan", "--json"}).out);
  CHECK(json["lists"][0]["jobs"][0]["estimated_rows"] == 100);
}

TEST_CASE("validate reports a function changed under a started job") {
  TestDatabase db;
  create_items(db, 1000);
  poisoned_items_function(db, 1500);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 1);
  db.exec(
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS 'SELECT 0::bigint'");
  auto r = run_with_db(db, path, {"validate"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("job 'items'") && Catch::Contains("changed since the job"));
}

TEST_CASE("validate's problems are JSON log lines under --log-format json, its report stays text") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_job_with("        table: legacy.nope\n"
                                                          "        key: id\n"
                                                          "        function: xf.items\n"));
  const auto r = run_with_db(db, path, {"validate", "--log-format", "json"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.out, Catch::Contains("1 error(s), 0 warning(s)"));
  std::istringstream lines(r.err);
  int errors = 0;
  for (std::string line; std::getline(lines, line);) {
    const Json j = parse_json(line);
    if (j.at("level") == "error" &&
        j.at("message").get<std::string>().find("legacy.nope does not exist") != std::string::npos)
      ++errors;
  }
  CHECK(errors == 1);
}

TEST_CASE(
    "a role that may not execute the batch or refresh function, or read the table, is told so "
    "with the grant, not a signature mismatch") {
  TestDatabase db;
  create_items(db, 100);
  db.exec(
      "ALTER TABLE legacy.items ADD UNIQUE (id);"
      "CREATE FUNCTION xf.items_refresh(keys bigint[]) RETURNS void LANGUAGE sql AS 'SELECT 1';"
      "REVOKE EXECUTE ON FUNCTION xf.items(bigint, bigint), xf.items_refresh(bigint[])"
      " FROM PUBLIC");
  TestRole migrator(db, "migrator");
  db.exec("GRANT USAGE ON SCHEMA legacy, target, xf TO " + migrator.name() +
          "; GRANT SELECT ON legacy.items TO " + migrator.name());
  TempDir dir;
  const auto path =
      dir.write("jobs.yaml", items_jobs_yaml(10, 1,
                                             "        changes: trigger\n"
                                             "        refresh_function: xf.items_refresh\n"));
  const auto as_role = [&] { return run_cli({"validate", "-f", path, "--dsn", migrator.dsn()}); };
  auto r = as_role();
  INFO(r.out << r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("job 'items': role " + migrator.name() +
                                    " may not execute function xf.items (SQLSTATE 42501): GRANT "
                                    "EXECUTE ON FUNCTION \"xf\".\"items\"(bigint, bigint) TO \"" +
                                    migrator.name() + "\""));
  CHECK_THAT(r.err, !Catch::Contains("does not accept"));

  db.exec("GRANT EXECUTE ON FUNCTION xf.items(bigint, bigint) TO " + migrator.name());
  r = as_role();
  CHECK_THAT(r.err, Catch::Contains("may not execute refresh_function xf.items_refresh (SQLSTATE "
                                    "42501): GRANT EXECUTE ON FUNCTION \"xf\".\"items_refresh\"("
                                    "bigint[]) TO \"" +
                                    migrator.name() + "\""));

  db.exec("GRANT EXECUTE ON FUNCTION xf.items_refresh(bigint[]) TO " + migrator.name() +
          "; REVOKE SELECT ON legacy.items FROM " + migrator.name());
  r = as_role();
  CHECK_THAT(r.err, Catch::Contains("may not read table legacy.items (SQLSTATE 42501): GRANT "
                                    "SELECT ON \"legacy\".\"items\" TO \"" +
                                    migrator.name() + "\""));
  CHECK_THAT(r.err, !Catch::Contains("no ordering"));
}

TEST_CASE("validate advises a VACUUM of a leading table whose pages are mostly not all-visible") {
  TestDatabase db;
  create_items(db, 0);
  // 200,000 rows: about 1,100 pages, loaded and analyzed but never vacuumed (autovacuum
  // would, after so many inserts).
  db.exec(
      "ALTER TABLE legacy.items SET (autovacuum_enabled = false);"
      "INSERT INTO legacy.items SELECT g * 3, g FROM generate_series(1, 200000) g;"
      "ANALYZE legacy.items");
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10));
  auto r = run_with_db(db, path, {"validate"});
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("0 % of its pages all-visible") &&
                        Catch::Contains("VACUUM \"legacy\".\"items\" before the run"));
  db.exec("VACUUM legacy.items");
  r = run_with_db(db, path, {"validate"});
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("0 error(s), 0 warning(s)"));
}
