// pgxform run's command against a real PostgreSQL: a jobs file it refuses (a typo, YAML, a
// cycle, names alike but for a NUL byte) and a selection it refuses (--only a list whose
// dependency is not done, a job's parallel changed after it started) stop it before it writes
// anything (exit 2); --exclude leaves a job alone.
#include <catch2/catch.hpp>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

TEST_CASE(
    "selecting with --only a list whose dependency is not done exits 2 naming it, and writes "
    "nothing") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10) +
                                               "  - name: second\n    after: [main]\n"
                                               "    jobs: [{name: step, sql: SELECT 1}]\n");
  auto r = run_with_db(db, path, {"run", "--only", "second"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("'step'") && Catch::Contains("'items'") &&
                        Catch::Contains("not done and not selected"));
  CHECK_FALSE(db.schema_exists("pgxform"));
  // Once main is done, the same selection runs.
  REQUIRE(run_with_db(db, path, {"run", "--only", "main"}).exit_code == 0);
  CHECK(db.scalar("SELECT status FROM pgxform.job_state WHERE job = 'step'") == "pending");
  REQUIRE(run_with_db(db, path, {"run", "--only", "second"}).exit_code == 0);
  CHECK(db.scalar("SELECT status FROM pgxform.job_state WHERE job = 'step'") == "done");
}

TEST_CASE("selecting with --exclude leaves a job alone") {
  TestDatabase db;
  create_items(db, 100);
  db.exec("CREATE TABLE target.steps (name text)");
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10) +
                                               "  - name: other\n"
                                               "    jobs: [{name: s, sql: INSERT INTO target.steps"
                                               " VALUES ('s')}]\n");
  REQUIRE(run_with_db(db, path, {"run", "--exclude", "main"}).exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM target.items") == 0);
  CHECK(db.count("SELECT count(*) FROM target.steps") == 1);
}

TEST_CASE("changing parallel after a job started exits 2 and writes nothing") {
  TestDatabase db;
  create_items(db, 300);
  TempDir dir;
  REQUIRE(run_with_db(db, dir.write("jobs.yaml", items_jobs_yaml(100, 3)), {"run"}).exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.job_slice WHERE job = 'items'") == 3);
  auto r = run_with_db(db, dir.write("jobs.yaml", items_jobs_yaml(100, 2)), {"run"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("parallel changed from 3 to 2"));
  CHECK(db.count("SELECT count(*) FROM pgxform.job_slice WHERE job = 'items'") == 3);
}

TEST_CASE("a typo in a field name exits 2 naming the file and line, and writes nothing") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  auto r =
      expect_run_refused(db, dir,
                         items_job_with("        table: legacy.items\n        key: id\n"
                                        "        function: xf.items\n        batchsize: 10\n"));
  CHECK_THAT(r.err, Catch::Contains("jobs.yaml:9:") && Catch::Contains("batchsize"));
}

TEST_CASE("a YAML syntax error exits 2 naming the line, and writes nothing") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  auto r = expect_run_refused(db, dir, "version: 1\nlists:\n  - name: [main\n");
  CHECK_THAT(r.err, Catch::Contains("jobs.yaml:") && Catch::Contains("YAML syntax error"));
}

TEST_CASE("a cycle in after exits 2 and writes nothing") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  auto r =
      expect_run_refused(db, dir,
                         "version: 1\nlists:\n"
                         "  - name: a\n    after: [b]\n    jobs: [{name: x, sql: SELECT 1}]\n"
                         "  - name: b\n    after: [a]\n    jobs: [{name: y, sql: SELECT 1}]\n");
  CHECK_THAT(r.err, Catch::Contains("cycle"));
}

TEST_CASE("two jobs named alike but for a NUL byte are refused before anything is written") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const auto path = dir.write(
      "jobs.yaml",
      "version: 1\nlists:\n  - name: l\n    jobs:\n"
      "      - {name: \"items\\0a\", table: legacy.items, key: id, function: xf.items}\n"
      "      - {name: \"items\\0b\", table: legacy.items, key: id, function: xf.items}\n");
  const auto r = run_cli(with_db(db, path, {"run"}));
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("jobs.yaml:5:") && Catch::Contains("a NUL byte"));
  CHECK_FALSE(db.schema_exists("pgxform"));
}
