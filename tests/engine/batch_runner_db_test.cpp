// One job's keyset loop against a real PostgreSQL: every row exactly once in batches of the
// key's order (keys of every orderable type, a key value never split), resumed after the last
// committed batch whenever the run was killed, a failing batch recorded, set aside or bisected
// by on_error, a timeout a permanent error.
#include <signal.h>

#include <catch2/catch.hpp>
#include <random>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

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

// Kills runs with SIGKILL until one finishes by itself; returns the number of kills. Every
// third kill comes at a random moment from the start (often before any batch, while the run
// is still starting); the others a random moment after the run committed its first batch, so
// that every round makes progress however slow the machine (sanitizers) is.
int kill_until_done(TestDatabase& db, const TempDir& dir, const std::string& path,
                    int max_extra_ms) {
  std::mt19937 rng(Catch::rngSeed());
  std::uniform_int_distribution<int> extra(0, max_extra_ms);
  int kills = 0;
  for (int round = 0; round < 400; ++round) {
    const long long before = batches_committed(db);
    Child child(two_lists_run_args(db, path), dir.path());
    int code = -1;
    bool exited = false;
    if (round % 3 != 2) {
      while (!(exited = child.wait_for(5, code)) && batches_committed(db) == before) {
      }
    }
    if (!exited) exited = child.wait_for(extra(rng), code);
    if (exited) {
      INFO(child.err());
      REQUIRE(code == 0);
      return kills;
    }
    child.kill(SIGKILL);
    code = child.wait();
    if (code == 0) return kills;  // it finished just before the kill
    REQUIRE(code == 128 + SIGKILL);
    ++kills;
  }
  FAIL("the run never finished");
  return kills;
}

}  // namespace

TEST_CASE("every row of the leading table is processed exactly once, in batches of batch_size") {
  TestDatabase db;
  create_items(db, 1000);
  TempDir dir;
  auto r = run_with_db(db, dir.write("jobs.yaml", items_jobs_yaml(100)), {"run"});
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

TEST_CASE("a second run of a finished migration processes nothing again") {
  TestDatabase db;
  create_items(db, 300);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == 3);
}

TEST_CASE("rows appended after a job finished are processed by the next run") {
  TestDatabase db;
  create_items(db, 250);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  db.exec("INSERT INTO legacy.items SELECT g * 3, g FROM generate_series(251, 420) g");
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.scalar("SELECT status || ' ' || last_key || ' ' || rows_done FROM pgxform.job_state") ==
        "done 1260 420");
}

TEST_CASE("text keys are paged in the column's collation order, exactly once") {
  TestDatabase db;
  create_typed(db, "text", "'key ' || md5(g::text)", 500);
  TempDir dir;
  REQUIRE(run_with_db(db, dir.write("jobs.yaml", typed_yaml()), {"run"}).exit_code == 0);
  check_typed_exactly_once(db, 500);
}

TEST_CASE("uuid keys work, exactly once") {
  TestDatabase db;
  create_typed(db, "uuid", "md5(g::text)::uuid", 500);
  TempDir dir;
  REQUIRE(run_with_db(db, dir.write("jobs.yaml", typed_yaml()), {"run"}).exit_code == 0);
  check_typed_exactly_once(db, 500);
}

TEST_CASE("date keys work, exactly once") {
  TestDatabase db;
  create_typed(db, "date", "date '2017-01-01' + g * 2", 500);
  TempDir dir;
  REQUIRE(run_with_db(db, dir.write("jobs.yaml", typed_yaml()), {"run"}).exit_code == 0);
  check_typed_exactly_once(db, 500);
}

TEST_CASE("timestamp keys with fractional seconds work, exactly once") {
  TestDatabase db;
  create_typed(db, "timestamp", "timestamp '2017-01-01' + g * interval '1.000123 second'", 500);
  TempDir dir;
  REQUIRE(run_with_db(db, dir.write("jobs.yaml", typed_yaml()), {"run"}).exit_code == 0);
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
  REQUIRE(run_with_db(db,
                      dir.write("jobs.yaml",
                                "version: 1\nlists:\n  - name: main\n    jobs:\n"
                                "      - {name: lines, table: legacy.lines, key: order_id,"
                                " function: xf.lines, batch_size: 10, target_batch_ms: 0}\n"),
                      {"run"})
              .exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM target.lines") == 420);
  CHECK(db.count("SELECT count(*) FROM (SELECT DISTINCT * FROM target.lines) x") == 420);
  // Every batch holds whole orders: rows is a multiple of 7 and matches the function's count.
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE rows % 7 <> 0"
                 " OR rows <> rows_written") == 0);
  CHECK(db.count("SELECT sum(rows) FROM pgxform.batch_log") == 420);
}

TEST_CASE(
    "a failing batch records its error, SQLSTATE and key range, keeps earlier batches, "
    "and exits 1",
    "[threads]") {
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
  auto r = run_with_db(db, path, {"run", "--threads", "2"});
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

TEST_CASE(
    "a run killed with SIGKILL at random moments and restarted until done applies every "
    "row exactly once",
    "[kill]") {
  TestDatabase db;
  create_two_lists(db, 8000, 10);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", two_lists_yaml(1));
  const int kills = kill_until_done(db, dir, path, 40);
  CHECK(kills >= 20);
  check_two_lists_done_once(db, 8000);
}

TEST_CASE(
    "a run of time-sized batches killed with SIGKILL at random moments and restarted until done "
    "applies every row exactly once",
    "[kill]") {
  TestDatabase db;
  create_two_lists(db, 8000, 10);
  // 0.1 ms per row: batches of about 150 rows make the 20 ms target; every run starts again
  // at 50 and grows, and is killed up to 150 ms after its first batch, so that the sizes
  // change all along.
  per_row_items_function(db, 0.1);
  TempDir dir;
  const auto path =
      dir.write("jobs.yaml", two_lists_yaml(1, "batch_size: 50, target_batch_ms: 20"));
  const int kills = kill_until_done(db, dir, path, 150);
  CHECK(kills >= 5);
  check_two_lists_done_once(db, 8000);
  CHECK(db.count("SELECT count(DISTINCT batch_size) FROM pgxform.batch_log WHERE job = 'items'") >=
        3);
  // Ranges follow each other without a gap or an overlap, whatever their sizes.
  CHECK(db.count("SELECT count(*) FROM (SELECT first_key::bigint AS lo, lag(last_key::bigint)"
                 " OVER (ORDER BY first_key::bigint) AS prev FROM pgxform.batch_log"
                 " WHERE job = 'items') b WHERE prev IS NOT NULL AND lo <> prev + 3") == 0);
}

TEST_CASE("a sliced job killed with SIGKILL and resumed applies every row exactly once", "[kill]") {
  TestDatabase db;
  create_two_lists(db, 4000, 10);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", two_lists_yaml(3));
  const int kills = kill_until_done(db, dir, path, 60);
  CHECK(kills >= 10);
  check_two_lists_done_once(db, 4000);
  CHECK(db.count(
            "SELECT count(*) FROM pgxform.job_slice WHERE job = 'items' AND status = 'done'") == 3);
}

TEST_CASE(
    "with on_error: skip and bisect, exactly the poisoned key is set aside and the rest of "
    "its batch is processed") {
  TestDatabase db;
  create_items(db, 1000);
  poisoned_items_function(db, 1500);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_skip_yaml(Bisect::on));
  auto r = run_cli(with_db(db, path, {"run"}));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(db.scalar("SELECT first_key || '-' || last_key || ' ' || sqlstate FROM"
                  " pgxform.failed_batches") == "1500-1500 22012");
  CHECK(db.count("SELECT count(*) FROM target.items") == 999);
  CHECK(db.count("SELECT count(*) FROM target.items WHERE id = 1500") == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.scalar("SELECT status FROM pgxform.job_state") == "done");
  CHECK_THAT(r.err, Catch::Contains("1 key range(s) of 1 job(s) are set aside"));
  CHECK(job_in(parse_json(run_cli(with_db(db, path, {"status", "--json"})).out),
               "items")["set_aside"] == 1);

  // retry-failed while still broken: the range stays, with one more attempt.
  auto again = run_cli(with_db(db, path, {"retry-failed"}));
  CHECK(again.exit_code == 1);
  CHECK(db.scalar("SELECT attempts || ' ' || (resolved_at IS NULL) FROM pgxform.failed_batches") ==
        "2 true");
  // After the fix, retry-failed completes and every row is there exactly once.
  plain_items_function(db);
  auto fixed = run_cli(with_db(db, path, {"retry-failed", "items"}));
  CHECK(fixed.exit_code == 0);
  CHECK_THAT(fixed.out, Catch::Contains("[1500, 1500] resolved"));
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.failed_batches WHERE resolved_at IS NULL") == 0);
  CHECK(db.count("SELECT rows_done FROM pgxform.job_state") == 1000);
  // Every batch names the function's version and carries its counters: the bisected ranges,
  // and the range retry-failed redid, which it processed as a run processes a range.
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE fn_version IS NULL") == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE shared_blks_hit IS NULL") == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE first_key = '1500'"
                 " AND last_key = '1500' AND rows = 1") == 1);
  CHECK(run_cli(with_db(db, path, {"retry-failed"})).exit_code == 0);
  CHECK(duplicate_items(db) == 0);
}

TEST_CASE("with on_error: skip and no bisect, the whole failing batch is set aside") {
  TestDatabase db;
  create_items(db, 1000);
  poisoned_items_function(db, 1500);
  TempDir dir;
  auto r = run_cli(with_db(db, dir.write("jobs.yaml", items_skip_yaml(Bisect::off)), {"run"}));
  CHECK(r.exit_code == 0);
  CHECK(db.scalar("SELECT first_key || '-' || last_key FROM pgxform.failed_batches") ==
        "1203-1500");
  CHECK(db.count("SELECT count(*) FROM target.items") == 900);
}

TEST_CASE("with on_error: stop, a poisoned row fails the job with its key range and exits 1") {
  TestDatabase db;
  create_items(db, 1000);
  poisoned_items_function(db, 1500);
  TempDir dir;
  auto r = run_cli(with_db(db, dir.write("jobs.yaml", items_jobs_yaml(100)), {"run"}));
  CHECK(r.exit_code == 1);
  CHECK(db.scalar("SELECT status || ' ' || error_first_key || ' ' || error_last_key FROM"
                  " pgxform.job_state") == "failed 1203 1500");
  CHECK(db.count("SELECT count(*) FROM pgxform.failed_batches") == 0);
  // The next run, after the fix, finishes the job exactly once.
  plain_items_function(db);
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  // The fixed function is another version: the run refuses to split the job silently...
  auto refused = run_cli(with_db(db, path, {"run"}));
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.err, Catch::Contains("job 'items'") && Catch::Contains("changed"));
  // ...and goes on when told to, recording the version of every batch.
  CHECK(run_cli(with_db(db, path, {"run", "--accept-changed", "items"})).exit_code == 0);
  CHECK(db.count("SELECT count(DISTINCT fn_version) FROM pgxform.batch_log") == 2);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}

TEST_CASE("a statement timeout is a permanent error of the batch, not an endless retry") {
  TestDatabase db;
  create_items(db, 300, 2000);
  TempDir dir;
  auto r = run_cli(with_db(
      db,
      dir.write("jobs.yaml", "version: 1\ndefaults: {statement_timeout: 300ms}\n" +
                                 items_jobs_yaml(100).substr(std::string("version: 1\n").size())),
      {"run"}));
  CHECK(r.exit_code == 1);
  CHECK(db.scalar("SELECT status || ' ' || sqlstate FROM pgxform.job_state") == "failed 57014");
  CHECK(db.count("SELECT count(*) FROM target.items") == 0);
}

TEST_CASE("a batch waiting to be retried after a transient error is not a batch in flight") {
  TestDatabase db;
  create_items(db, 100);
  // The first three attempts of the first batch fail with a serialization failure (a sequence
  // counts them: rolled back, it keeps its value).
  db.exec(
      "CREATE SEQUENCE xf.attempts;"
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE plpgsql AS $$ DECLARE n bigint; BEGIN"
      "  IF pg_catalog.nextval('xf.attempts') <= 3 THEN"
      "    RAISE EXCEPTION 'try again' USING ERRCODE = '40001'; END IF;"
      "  INSERT INTO target.items SELECT id, v * 10 FROM legacy.items"
      "   WHERE id BETWEEN first_key AND last_key;"
      "  GET DIAGNOSTICS n = ROW_COUNT; RETURN n; END $$;");
  TempDir dir;
  // Batches of 20 ms (past 200 ms: in flight too long), retried after 400 ms, then 800 ms and
  // 1.6 s at most: the waits alone pass 200 ms several times over.
  const auto path = dir.write(
      "jobs.yaml",
      items_jobs_yaml(100, 1, "        target_batch_ms: 20\n        retry_backoff_ms: 400\n"));
  Child run(with_db(db, path, {"run"}), dir.path());
  INFO(run.err());
  CHECK(run.wait() == 0);
  CHECK(db.count("SELECT last_value FROM xf.attempts") >= 4);
  CHECK_THAT(run.err(), Catch::Contains("retrying"));
  CHECK_THAT(run.err(), !Catch::Contains("in flight for"));
  CHECK(db.count("SELECT count(*) FROM target.items") == 100);
}
