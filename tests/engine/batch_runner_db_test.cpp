// The core slice against a real PostgreSQL: batches, state, resume, key types, steps, failures.
#include <catch2/catch.hpp>
#include <regex>
#include <sstream>

#include "state/state_locks.h"
#include "state/state_schema.h"
#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

namespace {

CliResult run(TestDatabase& db, const std::string& path, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"run", "-f", path, "--dsn", db.dsn()};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_cli(args);
}

// A table keyed by `type` with `rows` distinct keys made by `key_expr` from g, a target with no
// constraint, and a transform copying a range.
void create_typed(TestDatabase& db, const std::string& type, const std::string& key_expr,
                  int rows) {
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.typed (k " +
      type +
      " PRIMARY KEY, g int NOT NULL);"
      "INSERT INTO legacy.typed SELECT " +
      key_expr + ", g FROM generate_series(1, " + std::to_string(rows) +
      ") g;"
      "CREATE TABLE target.typed (k " +
      type +
      ", g int);"
      "CREATE FUNCTION xf.typed(a " +
      type + ", b " + type +
      ") RETURNS void"
      " LANGUAGE sql AS 'INSERT INTO target.typed SELECT k, g FROM legacy.typed"
      " WHERE k BETWEEN a AND b'");
}

std::string typed_yaml() {
  return "version: 1\nlists:\n  - name: main\n    jobs:\n"
         "      - {name: typed, table: legacy.typed, key: k, function: xf.typed, batch_size: 37, "
         "target_batch_ms: 0}\n";
}

void check_typed_exactly_once(TestDatabase& db, int rows) {
  CHECK(db.count("SELECT count(*) FROM target.typed") == rows);
  CHECK(db.count("SELECT count(DISTINCT k) FROM target.typed") == rows);
  CHECK(db.count("SELECT count(*) FROM legacy.typed l WHERE NOT EXISTS"
                 " (SELECT 1 FROM target.typed t WHERE t.k = l.k AND t.g = l.g)") == 0);
  CHECK(db.count("SELECT batches_done FROM pgxform.job_state WHERE job = 'typed'") ==
        (rows + 36) / 37);
}

}  // namespace

TEST_CASE("every row of the leading table is processed exactly once, in batches of batch_size") {
  TestDatabase db;
  create_items(db, 1000);
  TempDir dir;
  auto r = run(db, dir.write("jobs.yaml", items_jobs_yaml(100)));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE job = 'items'") == 10);
  CHECK(db.scalar("SELECT status || ' ' || last_key || ' ' || rows_done || ' ' || batches_done"
                  " FROM pgxform.job_state WHERE job = 'items'") == "done 3000 1000 10");
  // Each batch_log row covers exactly batch_size keys, and ranges follow each other.
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE rows <> 100 OR rows_written <> 100"
                 " OR duration_ms < 0") == 0);
  CHECK(db.scalar("SELECT string_agg(first_key || '-' || last_key, ',' ORDER BY batch_no)"
                  " FROM pgxform.batch_log WHERE batch_no <= 2") == "3-300,303-600");
}

TEST_CASE("log lines written to a pipe carry an ISO 8601 timestamp with its offset") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const auto r = run_cli(with_db(db, dir.write("jobs.yaml", items_jobs_yaml(50)), {"run"}));
  REQUIRE(r.exit_code == 0);
  const std::regex stamped(
      R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2} (debug|info|warning|error) .*)");
  std::istringstream lines(r.err);
  int checked = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("    ", 0) == 0) continue;  // the later lines of a message of several
    INFO(line);
    CHECK(std::regex_match(line, stamped));
    ++checked;
  }
  CHECK(checked >= 3);  // running ..., items: done ..., all 1 jobs done ...
}

TEST_CASE("a second run of a finished migration processes nothing again") {
  TestDatabase db;
  create_items(db, 300);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run(db, path).exit_code == 0);
  REQUIRE(run(db, path).exit_code == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == 3);
}

TEST_CASE("rows appended after a job finished are processed by the next run") {
  TestDatabase db;
  create_items(db, 250);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run(db, path).exit_code == 0);
  db.exec("INSERT INTO legacy.items SELECT g * 3, g FROM generate_series(251, 420) g");
  REQUIRE(run(db, path).exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.scalar("SELECT status || ' ' || last_key || ' ' || rows_done FROM pgxform.job_state") ==
        "done 1260 420");
}

TEST_CASE("text keys are paged in the column's collation order, exactly once") {
  TestDatabase db;
  create_typed(db, "text", "'key ' || md5(g::text)", 500);
  TempDir dir;
  REQUIRE(run(db, dir.write("jobs.yaml", typed_yaml())).exit_code == 0);
  check_typed_exactly_once(db, 500);
}

TEST_CASE("uuid keys work, exactly once") {
  TestDatabase db;
  create_typed(db, "uuid", "md5(g::text)::uuid", 500);
  TempDir dir;
  REQUIRE(run(db, dir.write("jobs.yaml", typed_yaml())).exit_code == 0);
  check_typed_exactly_once(db, 500);
}

TEST_CASE("date keys work, exactly once") {
  TestDatabase db;
  create_typed(db, "date", "date '2017-01-01' + g * 2", 500);
  TempDir dir;
  REQUIRE(run(db, dir.write("jobs.yaml", typed_yaml())).exit_code == 0);
  check_typed_exactly_once(db, 500);
}

TEST_CASE("timestamp keys with fractional seconds work, exactly once") {
  TestDatabase db;
  create_typed(db, "timestamp", "timestamp '2017-01-01' + g * interval '1.000123 second'", 500);
  TempDir dir;
  REQUIRE(run(db, dir.write("jobs.yaml", typed_yaml())).exit_code == 0);
  check_typed_exactly_once(db, 500);
}

TEST_CASE("a non-unique key never splits one key value across two batches") {
  TestDatabase db;
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.lines (order_id int NOT NULL, line int NOT NULL);"
      "CREATE INDEX ON legacy.lines (order_id);"
      // 7 lines per order: batches of 10 keys always end inside a run of equal keys.
      "INSERT INTO legacy.lines SELECT o, l FROM generate_series(1, 60) o,"
      " generate_series(1, 7) l;"
      "CREATE TABLE target.lines (order_id int, line int);"
      "CREATE FUNCTION xf.lines(a int, b int) RETURNS integer LANGUAGE sql AS"
      " 'WITH i AS (INSERT INTO target.lines SELECT * FROM legacy.lines"
      " WHERE order_id BETWEEN a AND b RETURNING 1) SELECT count(*)::int FROM i'");
  TempDir dir;
  REQUIRE(run(db, dir.write("jobs.yaml",
                            "version: 1\nlists:\n  - name: main\n    jobs:\n"
                            "      - {name: lines, table: legacy.lines, key: order_id,"
                            " function: xf.lines, batch_size: 10, target_batch_ms: 0}\n"))
              .exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM target.lines") == 420);
  CHECK(db.count("SELECT count(*) FROM (SELECT DISTINCT * FROM target.lines) x") == 420);
  // Every batch holds whole orders: rows is a multiple of 7 and matches the function's count.
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE rows % 7 <> 0"
                 " OR rows <> rows_written") == 0);
  CHECK(db.count("SELECT sum(rows) FROM pgxform.batch_log") == 420);
}

TEST_CASE("a one-shot step runs once and only once") {
  TestDatabase db;
  create_items(db, 10);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_and_counting_step_yaml(db));
  REQUIRE(run(db, path).exit_code == 0);
  REQUIRE(run(db, path).exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM target.step_runs") == 1);
  CHECK(db.scalar("SELECT status FROM pgxform.job_state WHERE job = 'count-step'") == "done");
}

TEST_CASE(
    "a failing batch records its error, SQLSTATE and key range, keeps earlier batches, "
    "and exits 1") {
  TestDatabase db;
  create_items(db, 1000);
  // Key 1500 divides by zero; it lies in the 5th batch of 100 keys (1203..1500).
  db.exec(
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS 'WITH i AS (INSERT INTO target.items SELECT id, (v * 10) /"
      " CASE WHEN id = 1500 THEN 0 ELSE 1 END FROM legacy.items"
      " WHERE id BETWEEN first_key AND last_key RETURNING 1) SELECT count(*) FROM i'");
  TempDir dir;
  db.exec("CREATE TABLE target.steps (name text)");
  const auto path = dir.write(
      "jobs.yaml", items_jobs_yaml(100) +
                       "      - {name: same-list, sql: INSERT INTO target.steps VALUES ('same')}\n"
                       "  - name: downstream\n    after: [main]\n"
                       "    jobs: [{name: later, sql: INSERT INTO target.steps VALUES ('later')}]\n"
                       "  - name: independent\n"
                       "    jobs: [{name: free, sql: INSERT INTO target.steps VALUES ('free')}]\n");
  auto r = run(db, path, {"--threads", "2"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("22012") && Catch::Contains("[1203, 1500]") &&
                        Catch::Contains("later"));
  CHECK(
      db.scalar("SELECT status || ' ' || sqlstate || ' ' || error_first_key || ' ' ||"
                " error_last_key || ' ' || last_key FROM pgxform.job_state WHERE job = 'items'") ==
      "failed 22012 1203 1500 1200");
  CHECK_THAT(db.scalar("SELECT error FROM pgxform.job_state WHERE job = 'items'"),
             Catch::Contains("division by zero"));
  CHECK(db.count("SELECT count(*) FROM target.items") == 400);
  // The rest of its list and the lists after it never start; independent lists finish.
  CHECK(db.scalar("SELECT string_agg(name, ',') FROM target.steps") == "free");
  CHECK(db.scalar("SELECT string_agg(job || '=' || status, ',' ORDER BY job) FROM"
                  " pgxform.job_state WHERE job IN ('same-list', 'later', 'free')") ==
        "free=done,later=pending,same-list=pending");
}

TEST_CASE("status reports each job's status, rows, batches, last key and percent") {
  TestDatabase db;
  create_items(db, 1000);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100) +
                                               "  - name: second\n    after: [main]\n"
                                               "    jobs: [{name: step, sql: SELECT 1}]\n");
  // Before any run: pending, and status creates nothing.
  auto before = run_cli({"status", "--json", "-f", path, "--dsn", db.dsn()});
  REQUIRE(before.exit_code == 0);
  const Json pending = job_in(parse_json(before.out), "items");
  CHECK(pending["list"] == "main");
  CHECK(pending["status"] == "pending");
  CHECK(pending["rows_done"] == 0);
  CHECK_FALSE(db.schema_exists("pgxform"));
  // Halfway: the cursor stands at key 1500 of 3..3000, about half done.
  REQUIRE(run(db, path, {"--only", "items"}).exit_code == 0);
  db.exec(
      "UPDATE pgxform.job_state SET status = 'running', last_key = '1500', rows_done = 500,"
      " batches_done = 5 WHERE job = 'items'");
  // Nobody holds it: its runner died.
  auto orphaned = run_cli({"status", "--json", "-f", path, "--dsn", db.dsn()});
  CHECK(job_in(parse_json(orphaned.out), "items")["status"] == "interrupted");
  // The claim a runner holds on the job while it works on it.
  pqxx::connection holder("dbname=" + db.name() + " application_name='pgxform other-host:42'");
  pqxx::nontransaction hold(holder);
  pgxform::session_lock(hold, pgxform::task_lock(pgxform::StateSchema("pgxform"), {"items", 0}));
  auto mid = run_cli({"status", "--json", "-f", path, "--dsn", db.dsn()});
  const Json running = job_in(parse_json(mid.out), "items");
  CHECK(running["status"] == "running");
  CHECK(running["runner"] == "other-host:42");
  CHECK(running["rows_done"] == 500);
  CHECK(running["batches_done"] == 5);
  CHECK(running["last_key"] == "1500");
  CHECK(running["percent"] == 49.9);
  auto table = run_cli({"status", "-f", path, "--dsn", db.dsn()});
  CHECK_THAT(table.out, Catch::Contains("items") && Catch::Contains("running") &&
                            Catch::Contains("1500") && Catch::Contains("49.9"));
}

TEST_CASE(
    "selecting with --only a list whose dependency is not done exits 2 naming it, and writes "
    "nothing") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10) +
                                               "  - name: second\n    after: [main]\n"
                                               "    jobs: [{name: step, sql: SELECT 1}]\n");
  auto r = run(db, path, {"--only", "second"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("'step'") && Catch::Contains("'items'") &&
                        Catch::Contains("not done and not selected"));
  CHECK_FALSE(db.schema_exists("pgxform"));
  // Once main is done, the same selection runs.
  REQUIRE(run(db, path, {"--only", "main"}).exit_code == 0);
  CHECK(db.scalar("SELECT status FROM pgxform.job_state WHERE job = 'step'") == "pending");
  REQUIRE(run(db, path, {"--only", "second"}).exit_code == 0);
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
  REQUIRE(run(db, path, {"--exclude", "main"}).exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM target.items") == 0);
  CHECK(db.count("SELECT count(*) FROM target.steps") == 1);
}

TEST_CASE("changing parallel after a job started exits 2 and writes nothing") {
  TestDatabase db;
  create_items(db, 300);
  TempDir dir;
  REQUIRE(run(db, dir.write("jobs.yaml", items_jobs_yaml(100, 3))).exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.job_slice WHERE job = 'items'") == 3);
  auto r = run(db, dir.write("jobs.yaml", items_jobs_yaml(100, 2)));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("parallel changed from 3 to 2"));
  CHECK(db.count("SELECT count(*) FROM pgxform.job_slice WHERE job = 'items'") == 3);
}

TEST_CASE("a sliced job covers the whole key range once, each slice within its bounds") {
  TestDatabase db;
  create_items(db, 2000);
  TempDir dir;
  REQUIRE(run(db, dir.write("jobs.yaml", items_jobs_yaml(70, 4)), {"--threads", "4"}).exit_code ==
          0);
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
  REQUIRE(run(db, dir.write("jobs.yaml", items_jobs_yaml(70, 4))).exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}

TEST_CASE("a sliced job over an empty table finishes, and the next run slices the rows that came") {
  TestDatabase db;
  create_items(db, 0);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50, 3));
  auto first = run(db, path);
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  CHECK(db.scalar("SELECT status FROM pgxform.job_state WHERE job = 'items'") == "done");
  db.exec(
      "INSERT INTO legacy.items SELECT g * 3, g FROM generate_series(1, 600) g;"
      "ANALYZE legacy.items");
  REQUIRE(run(db, path).exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.job_slice WHERE job = 'items'") == 3);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}

TEST_CASE(
    "a state schema of the previous version is upgraded in place by the next run, its batches "
    "kept") {
  TestDatabase db;
  create_items(db, 250);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run(db, path).exit_code == 0);
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
  REQUIRE(run(db, path).exit_code == 0);
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
