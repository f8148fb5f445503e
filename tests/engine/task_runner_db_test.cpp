// One task from its claim to its release, against a real PostgreSQL and real runner processes:
// a step runs once; two runners share the work through the tasks' claims, and a runner that
// waits for a task another holds says so once, naming the holder; the session's
// synchronous_commit; and the reconnect policy through PostgreSQL restarted for real in the
// middle of a run, with -m fast and -m immediate (tagged [restart]: these restart the server
// every other test uses, so ctest runs them alone, RUN_SERIAL, and only on a throwaway server).
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <thread>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

void run_through_restart(const std::string& mode, const std::string& settings = "") {
  TestDatabase db;
  create_items(db, 3000, 40);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50, 1, settings));
  Child child({"run", "-f", path, "--dsn", db.dsn(), "--threads", "2"}, dir.path());
  for (int i = 0; i < 3000; ++i) {
    try {
      if (db.count("SELECT batches_done FROM pgxform.job_state") >= 5) break;
    } catch (const std::exception&) {
      // The state schema does not exist yet.
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  TestServer(db).restart(mode);
  const int code = child.wait();
  INFO(child.err());
  CHECK(code == 0);
  CHECK_THAT(child.err(), Catch::Contains("retrying") || Catch::Contains("trying again"));
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.scalar("SELECT status || ' ' || rows_done FROM pgxform.job_state") == "done 3000");
}

}  // namespace

TEST_CASE("a PostgreSQL restart with -m fast mid-run costs a pause, not the run", "[restart]") {
  run_through_restart("fast");
}

TEST_CASE(
    "a PostgreSQL restart with -m immediate (crash recovery) mid-run costs a pause, not the "
    "run",
    "[restart]") {
  run_through_restart("immediate");
}

TEST_CASE(
    "with synchronous_commit: off, a PostgreSQL restart with -m immediate mid-run loses no row "
    "and applies none twice",
    "[restart]") {
  // A crash may lose the last batches' COMMITs that were not flushed yet: their writes and
  // their cursor's move together, so the run does them again, once.
  run_through_restart("immediate", "        synchronous_commit: off\n");
}

TEST_CASE("a one-shot step runs once and only once") {
  TestDatabase db;
  create_items(db, 10);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_and_counting_step_yaml(db));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM target.step_runs") == 1);
  CHECK(db.scalar("SELECT status FROM pgxform.job_state WHERE job = 'count-step'") == "done");
}

TEST_CASE(
    "two runners started at the same moment share the work and apply every row exactly "
    "once",
    "[threads]") {
  TestDatabase db;
  create_two_lists(db, 4000, 2);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", two_lists_yaml(3));
  Child first(two_lists_run_args(db, path), dir.path());
  Child second(two_lists_run_args(db, path), dir.path());
  const int a = first.wait();
  const int b = second.wait();
  INFO(first.err() << second.err());
  CHECK(a == 0);
  CHECK(b == 0);
  check_two_lists_done_once(db, 4000);
  const long long batches = db.count("SELECT count(*) FROM pgxform.batch_log");
  Child third(two_lists_run_args(db, path), dir.path());
  CHECK(third.wait() == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == batches);
  check_two_lists_done_once(db, 4000);
}

TEST_CASE("a second runner says once per task that another runner holds it, however long it waits",
          "[threads]") {
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
    "batches commit with synchronous_commit off unless the job says on, and the done mark waits "
    "for the flush") {
  TestDatabase db;
  create_items(db, 100);
  db.exec("ALTER DATABASE " + db.name() + " SET synchronous_commit = remote_write");
  db.exec(
      "CREATE TABLE target.seen (setting text);"
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS $$ INSERT INTO target.seen"
      "  SELECT pg_catalog.current_setting('synchronous_commit');"
      "  WITH i AS (INSERT INTO target.items SELECT id, v * 10 FROM legacy.items"
      "   WHERE id BETWEEN first_key AND last_key RETURNING 1) SELECT count(*) FROM i $$");
  TempDir dir;
  const auto unset = dir.write("unset.yaml", items_jobs_yaml(50));
  // The state schema first, then a trigger that notes the setting of the transaction that
  // marks the job done.
  REQUIRE(run_cli(with_db(db, unset, {"migrate"})).exit_code == 0);
  db.exec(
      "CREATE TABLE target.marked (setting text);"
      "CREATE FUNCTION target.note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
      " INSERT INTO target.marked SELECT pg_catalog.current_setting('synchronous_commit');"
      " RETURN NEW; END $$;"
      "CREATE TRIGGER note AFTER UPDATE ON pgxform.job_state FOR EACH ROW"
      " WHEN (NEW.status = 'done' AND OLD.status <> 'done') EXECUTE FUNCTION target.note()");
  REQUIRE(run_cli(with_db(db, unset, {"run"})).exit_code == 0);
  CHECK(db.scalar("SELECT string_agg(DISTINCT setting, ',') FROM target.seen") == "off");
  // The done mark waits for the flush, as the database's setting says.
  CHECK(db.scalar("SELECT string_agg(setting, ',') FROM target.marked") == "remote_write");

  db.exec(
      "TRUNCATE target.items, target.seen, target.marked;"
      "UPDATE pgxform.job_state SET status = 'pending', last_key = NULL");
  const auto on = dir.write("on.yaml", items_jobs_yaml(50, 1, "        synchronous_commit: on\n"));
  REQUIRE(run_cli(with_db(db, on, {"run"})).exit_code == 0);
  CHECK(db.scalar("SELECT string_agg(DISTINCT setting, ',') FROM target.seen") == "on");

  // A database that commits with off: the done mark still flushes, locally.
  db.exec("ALTER DATABASE " + db.name() +
          " SET synchronous_commit = off; TRUNCATE target.items, target.seen, target.marked");
  REQUIRE(run_cli(with_db(db, unset, {"reset", "items"})).exit_code == 0);
  REQUIRE(run_cli(with_db(db, unset, {"run"})).exit_code == 0);
  CHECK(db.scalar("SELECT string_agg(setting, ',') FROM target.marked") == "local");
  CHECK(missing_items(db) == 0);
}

TEST_CASE("a second run says which runner holds the job it waits for", "[live][threads]") {
  TestDatabase db;
  create_items(db, 500, 20);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run_with_db(db, path, {"pause", "items"}).exit_code == 0);
  Child first({"run", "-f", path, "--dsn", db.dsn()}, dir.path());
  wait_until([&] { return first.err().find("items: paused") != std::string::npos; });
  const std::string holder = job_status_json(db, path, "items")["runner"];
  CHECK_THAT(holder, Catch::EndsWith(":" + std::to_string(first.pid())));
  // The job is held and paused: status says paused, and who holds it.
  CHECK(job_status_json(db, path, "items")["waiting"] == "paused");

  Child second({"run", "-f", path, "--dsn", db.dsn()}, dir.path(), progress_every(200));
  wait_until(
      [&] { return lines_with(second.err(), {"items: 0 rows in 0 batches this run"}) >= 2; });
  second.kill(SIGINT);
  CHECK(second.wait() == 3);
  INFO(second.err());
  CHECK(lines_with(second.err(), {"; held by " + holder}) >= 2);

  REQUIRE(run_with_db(db, path, {"resume", "items"}).exit_code == 0);
  CHECK(first.wait() == 0);
  CHECK(missing_items(db) == 0);
}
