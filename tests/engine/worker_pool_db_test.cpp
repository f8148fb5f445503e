// pgxform as a real process: killed with SIGKILL at random moments, stopped with SIGINT once
// and twice, and two runners started at the same moment on the same database.
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <random>
#include <sstream>
#include <thread>

#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

namespace {

// Two independent lists over two tables, non-idempotent transforms; the second job of list
// `main` is sliced in `parallel` slices when parallel > 1. The batches are of fixed sizes
// unless `items_sizing` sizes those of items otherwise.
std::string two_lists_yaml(int parallel,
                           const std::string& items_sizing = "batch_size: 50, target_batch_ms: 0") {
  return "version: 1\n"
         "lists:\n"
         "  - name: main\n"
         "    jobs:\n"
         "      - {name: items, table: legacy.items, key: id, function: xf.items, " +
         items_sizing + ", parallel: " + std::to_string(parallel) +
         "}\n"
         "      - {name: after-items, sql: INSERT INTO target.steps VALUES ('after-items')}\n"
         "  - name: other\n"
         "    jobs:\n"
         "      - {name: others, table: legacy.others, key: id, function: xf.others,"
         " batch_size: 40, target_batch_ms: 0}\n";
}

void create_two_lists(TestDatabase& db, int rows, int sleep_ms) {
  create_items(db, rows, sleep_ms);
  db.exec(
      "CREATE TABLE target.steps (name text);"
      "CREATE TABLE legacy.others (id int PRIMARY KEY, v int NOT NULL);"
      "INSERT INTO legacy.others SELECT g * 7, g FROM generate_series(1, " +
      std::to_string(rows / 2) +
      ") g;"
      "CREATE TABLE target.others (id int, v int);"
      "CREATE FUNCTION xf.others(a int, b int) RETURNS void LANGUAGE sql AS"
      " 'INSERT INTO target.others SELECT * FROM legacy.others WHERE id BETWEEN a AND b;"
      "  SELECT pg_sleep(" +
      std::to_string(sleep_ms / 1000.0) +
      ")';"
      "ANALYZE legacy.others;");
}

void check_exactly_once(TestDatabase& db, int rows) {
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.count("SELECT count(*) FROM target.others") == rows / 2);
  CHECK(db.count("SELECT count(DISTINCT id) FROM target.others") == rows / 2);
  CHECK(db.count("SELECT count(*) FROM target.steps") == 1);
  // The state agrees with the target: every committed batch has its log row and counters.
  CHECK(db.count("SELECT sum(rows) FROM pgxform.batch_log WHERE job = 'items'") == rows);
  CHECK(db.count("SELECT rows_done FROM pgxform.job_state WHERE job = 'items'") == rows);
  CHECK(db.count("SELECT count(*) FROM pgxform.job_state WHERE status <> 'done'") == 0);
}

std::vector<std::string> run_args(TestDatabase& db, const std::string& path) {
  return {"run", "-q", "-f", path, "--dsn", db.dsn(), "--threads", "3"};
}

long long batches_committed(TestDatabase& db) {
  try {
    return db.count("SELECT coalesce(sum(batches_done), 0) FROM pgxform.job_state");
  } catch (const std::exception&) {
    return 0;  // the state schema does not exist yet
  }
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
    Child child(run_args(db, path), dir.path());
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

bool batch_in_flight(TestDatabase& db) {
  return db.count(std::string("SELECT count(*) FROM ") + k_batches_in_flight) > 0;
}

// After a stopped run whose functions were swapped for fast ones mid-job: the rerun accepts
// the change, completes, and every row is there exactly once.
void rerun_with_fast_functions(TestDatabase& db, const std::string& path, const TempDir& dir) {
  auto args = run_args(db, path);
  args.insert(args.end(), {"--accept-changed", "items", "--accept-changed", "others"});
  Child rerun(args, dir.path());
  CHECK(rerun.wait() == 0);
  check_exactly_once(db, 1000);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The lines of `text` that hold every one of `parts`.
long long lines_with(const std::string& text, const std::vector<std::string>& parts) {
  long long n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (std::all_of(parts.begin(), parts.end(), [&](const auto& p) { return contains(line, p); }))
      ++n;
  return n;
}

}  // namespace

TEST_CASE(
    "a run killed with SIGKILL at random moments and restarted until done applies every "
    "row exactly once") {
  TestDatabase db;
  create_two_lists(db, 8000, 10);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", two_lists_yaml(1));
  const int kills = kill_until_done(db, dir, path, 40);
  CHECK(kills >= 20);
  check_exactly_once(db, 8000);
}

TEST_CASE(
    "a run of time-sized batches killed with SIGKILL at random moments and restarted until done "
    "applies every row exactly once") {
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
  check_exactly_once(db, 8000);
  CHECK(db.count("SELECT count(DISTINCT batch_size) FROM pgxform.batch_log WHERE job = 'items'") >=
        3);
  // Ranges follow each other without a gap or an overlap, whatever their sizes.
  CHECK(db.count("SELECT count(*) FROM (SELECT first_key::bigint AS lo, lag(last_key::bigint)"
                 " OVER (ORDER BY first_key::bigint) AS prev FROM pgxform.batch_log"
                 " WHERE job = 'items') b WHERE prev IS NOT NULL AND lo <> prev + 3") == 0);
}

TEST_CASE("a sliced job killed with SIGKILL and resumed applies every row exactly once") {
  TestDatabase db;
  create_two_lists(db, 4000, 10);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", two_lists_yaml(3));
  const int kills = kill_until_done(db, dir, path, 60);
  CHECK(kills >= 10);
  check_exactly_once(db, 4000);
  CHECK(db.count(
            "SELECT count(*) FROM pgxform.job_slice WHERE job = 'items' AND status = 'done'") == 3);
}

TEST_CASE(
    "two runners started at the same moment share the work and apply every row exactly "
    "once") {
  TestDatabase db;
  create_two_lists(db, 4000, 2);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", two_lists_yaml(3));
  Child first(run_args(db, path), dir.path());
  Child second(run_args(db, path), dir.path());
  const int a = first.wait();
  const int b = second.wait();
  INFO(first.err() << second.err());
  CHECK(a == 0);
  CHECK(b == 0);
  check_exactly_once(db, 4000);
  const long long batches = db.count("SELECT count(*) FROM pgxform.batch_log");
  Child third(run_args(db, path), dir.path());
  CHECK(third.wait() == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == batches);
  check_exactly_once(db, 4000);
}

TEST_CASE(
    "SIGINT lets the batch in flight commit, exits 3, and the rerun completes exactly "
    "once") {
  TestDatabase db;
  create_two_lists(db, 1000, 150);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", two_lists_yaml(1));
  Child child(run_args(db, path), dir.path());
  wait_until([&] {
    return db.count("SELECT count(*) FROM pgxform.batch_log WHERE job = 'items'") >= 2 &&
           batch_in_flight(db);
  });
  const long long before = db.count("SELECT count(*) FROM pgxform.batch_log WHERE job = 'items'");
  child.kill(SIGINT);
  INFO(child.err());
  CHECK(child.wait() == 3);
  // The batch in flight committed: one more than before the signal, at least.
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE job = 'items'") > before);
  CHECK(db.count("SELECT count(*) FROM target.items") ==
        db.count("SELECT rows_done FROM pgxform.job_state WHERE job = 'items'"));
  CHECK(db.count("SELECT count(*) FROM pgxform.job_state WHERE status = 'running'") == 0);
  db.exec(
      "CREATE OR REPLACE FUNCTION xf.others(a int, b int) RETURNS void LANGUAGE sql AS"
      " 'INSERT INTO target.others SELECT * FROM legacy.others WHERE id BETWEEN a AND b'");
  plain_items_function(db);
  rerun_with_fast_functions(db, path, dir);
}

TEST_CASE(
    "a second SIGINT cancels the batch in flight, which rolls back, exits 3, and the "
    "rerun completes exactly once") {
  TestDatabase db;
  create_two_lists(db, 1000, 0);
  // A batch that would take an hour: only a cancel ends it.
  db.exec(
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE plpgsql AS $$ DECLARE n bigint; BEGIN"
      " INSERT INTO target.items SELECT id, v * 10 FROM legacy.items"
      " WHERE id BETWEEN first_key AND last_key; GET DIAGNOSTICS n = ROW_COUNT;"
      " IF first_key > 1500 THEN PERFORM pg_sleep(3600); END IF; RETURN n; END $$");
  TempDir dir;
  const auto path = dir.write("jobs.yaml", two_lists_yaml(1));
  Child child(run_args(db, path), dir.path());
  wait_until([&] {
    return db.count(
               "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
               " AND wait_event = 'PgSleep'") > 0;
  });
  child.kill(SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  child.kill(SIGINT);
  int code = -1;
  REQUIRE(child.wait_for(30000, code));
  INFO(child.err());
  CHECK(code == 3);
  // The cancelled batch left nothing: the target holds exactly the committed batches.
  CHECK(db.count("SELECT count(*) FROM target.items") ==
        db.count("SELECT rows_done FROM pgxform.job_state WHERE job = 'items'"));
  CHECK(db.count("SELECT count(*) FROM target.items WHERE id > 1500") == 0);
  plain_items_function(db);
  rerun_with_fast_functions(db, path, dir);
}

// Whether status --json names `pid` as the runner (host:pid) of one of the jobs.
bool held_by(TestDatabase& db, const std::string& path, int pid) {
  const Json status = parse_json(run_cli({"status", "--json", "-f", path, "--dsn", db.dsn()}).out);
  const std::string suffix = ":" + std::to_string(pid);
  for (const auto& job : status["jobs"]) {
    const std::string runner = job["runner"].is_string() ? job["runner"].get<std::string>() : "";
    if (runner.size() > suffix.size() &&
        runner.compare(runner.size() - suffix.size(), suffix.size(), suffix) == 0)
      return true;
  }
  return false;
}

TEST_CASE("status shows which runner, host and pid, holds a running job") {
  TestDatabase db;
  create_two_lists(db, 1000, 200);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", two_lists_yaml(1));
  Child child(run_args(db, path), dir.path());
  wait_until([&] { return batch_in_flight(db); });
  CHECK(run_cli({"status", "--json", "-f", path, "--dsn", db.dsn()}).exit_code == 0);
  CHECK(held_by(db, path, child.pid()));
  child.kill(SIGKILL);
  child.wait();
  // A killed runner holds nothing: its locks died with its sessions.
  wait_until([&] { return !held_by(db, path, child.pid()); });
}

TEST_CASE(
    "the first SIGINT says at once what will finish before the run stops, and a step logs its "
    "start and duration") {
  TestDatabase db;
  TempDir dir;
  const auto path = dir.write("jobs.yaml",
                              "version: 1\nlists:\n  - name: main\n    jobs:\n"
                              "      - {name: slow-step, sql: SELECT pg_sleep(4)}\n"
                              "      - {name: next-step, sql: SELECT 1}\n");
  Child child(with_db(db, path, {"run", "--threads", "1"}), dir.path());
  wait_until([&] {
    return db.count(
               "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
               " AND wait_event = 'PgSleep'") > 0;
  });
  CHECK(contains(child.err(), "slow-step: running step"));
  child.kill(SIGINT);
  wait_until([&] { return contains(child.err(), "stopping: "); });
  // Said while the step still runs, not when the run ends.
  int code = -1;
  CHECK_FALSE(child.wait_for(0, code));
  const std::string said = child.err();
  CHECK(contains(said, "stopping: 1 batch/step in flight will finish; Ctrl-C again to cancel it"));
  CHECK_FALSE(contains(said, "step done"));
  CHECK(child.wait() == 3);
  const std::string err = child.err();
  INFO(err);
  // The step finished, said how long it took, and the next one never started.
  CHECK(lines_with(err, {"slow-step: step done in ", " s"}) == 1);
  CHECK(err.find("stopping: ") < err.find("slow-step: step done in "));
  CHECK_FALSE(contains(err, "next-step: running step"));
  CHECK(db.scalar("SELECT string_agg(job || '=' || status, ',' ORDER BY job) FROM"
                  " pgxform.job_state") == "next-step=pending,slow-step=done");
}

TEST_CASE(
    "a second runner says once per task that another runner holds it, however long it waits") {
  TestDatabase db;
  create_items(db, 800, 250);  // two slices of eight batches of 50 keys, 250 ms each
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50, 2));
  Child first(with_db(db, path, {"run", "-q", "--threads", "2"}), dir.path());
  // Both slices claimed: each has committed a batch, and has seven more to go.
  wait_until([&] {
    return db.count(
               "SELECT count(*) FROM pgxform.job_slice WHERE status = 'running' AND "
               "batches_done > 0") == 2;
  });
  // Paused, the first runner keeps its claims for as long as the second needs to retry a few
  // times, however slowly it starts (under TSan, on a loaded machine).
  REQUIRE(run_cli(with_db(db, path, {"pause", "items"})).exit_code == 0);
  Child second(with_db(db, path, {"run", "-v", "--threads", "2"}), dir.path());
  wait_until([&] { return lines_with(second.err(), {"held by another runner"}) > 4; });
  REQUIRE(run_cli(with_db(db, path, {"resume", "items"})).exit_code == 0);
  CHECK(second.wait() == 0);
  CHECK(first.wait() == 0);
  const std::string err = second.err();
  INFO(err);
  // One info line per held slice, naming the runner that holds it; the retries at debug.
  const std::string holder = ":" + std::to_string(first.pid()) + "); trying again shortly";
  CHECK(lines_with(err, {" info ", "held by another runner"}) == 2);
  CHECK(lines_with(err, {" info ", "items is held by another runner (", holder}) == 1);
  CHECK(lines_with(err, {" info ", "items#1 is held by another runner (", holder}) == 1);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}

TEST_CASE(
    "status shows a job whose runner was killed as interrupted, and done once run to the end") {
  TestDatabase db;
  create_items(db, 300, 100);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(20));
  Child child(run_args(db, path), dir.path());
  wait_until([&] { return db.count("SELECT count(*) FROM pgxform.batch_log") >= 3; });
  child.kill(SIGKILL);
  CHECK(child.wait() == 128 + SIGKILL);
  CHECK(db.scalar("SELECT status FROM pgxform.job_state") == "running");  // the stale row
  auto status_of = [&] {
    const Json status = parse_json(run_cli(with_db(db, path, {"status", "--json"})).out);
    return status.at("jobs").at(0).at("status").get<std::string>();
  };
  // Once the server noticed the killed session (it may finish its batch's sleep first).
  wait_until([&] { return status_of() == "interrupted"; });
  const Json status = parse_json(run_cli(with_db(db, path, {"status", "--json"})).out);
  CHECK(status.at("jobs").at(0).at("runner").is_null());
  const auto table = run_cli(with_db(db, path, {"status"}));
  INFO(table.out);
  CHECK(table.exit_code == 0);
  CHECK(lines_with(table.out, {"items", "interrupted"}) == 1);
  REQUIRE(run_cli(with_db(db, path, {"run", "-q"})).exit_code == 0);
  CHECK(status_of() == "done");
  CHECK(lines_with(run_cli(with_db(db, path, {"status"})).out, {"items", " done "}) == 1);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}
