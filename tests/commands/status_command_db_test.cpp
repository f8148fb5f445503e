// status against a real PostgreSQL and real runner processes: each job's status, counters and
// percent; the runner (host:pid) that holds a running job, and none once it was killed; a job
// whose runner died shown as interrupted; a running job's rate, ETA, batch size and waiting
// reason; a failed job's percent.
#include <catch2/catch.hpp>
#include <cmath>
#include <csignal>

#include "state/state_locks.h"
#include "state/state_schema.h"
#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

namespace {

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

// items (list main), then a step in a list after main.
std::string main_and_after_lists_yaml(int batch_size) {
  return items_jobs_yaml(batch_size) +
         "  - name: later\n"
         "    after: [main]\n"
         "    jobs:\n"
         "      - name: tally\n"
         "        sql: SELECT 1\n";
}

}  // namespace

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
  // Halfway: the cursor stands at key 1500 of 3..3000, 500 rows done and about 500 above it.
  REQUIRE(run_with_db(db, path, {"run", "--only", "items"}).exit_code == 0);
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
  CHECK(running["percent"].get<double>() == Approx(50).margin(1));
  auto table = run_cli({"status", "-f", path, "--dsn", db.dsn()});
  CHECK_THAT(table.out, Catch::Contains("items") && Catch::Contains("running") &&
                            Catch::Contains("1500") && Catch::Contains(" 50.0 "));
}

TEST_CASE("status shows which runner, host and pid, holds a running job", "[threads]") {
  TestDatabase db;
  create_two_lists(db, 1000, 200);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", two_lists_yaml(1));
  Child child(two_lists_run_args(db, path), dir.path());
  wait_until([&] { return batch_in_flight(db); });
  CHECK(run_cli({"status", "--json", "-f", path, "--dsn", db.dsn()}).exit_code == 0);
  CHECK(held_by(db, path, child.pid()));
  child.kill(SIGKILL);
  child.wait();
  // A killed runner holds nothing: its locks died with its sessions.
  wait_until([&] { return !held_by(db, path, child.pid()); });
}

TEST_CASE("status shows a job whose runner was killed as interrupted, and done once run to the end",
          "[threads]") {
  TestDatabase db;
  create_items(db, 300, 100);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(20));
  Child child(two_lists_run_args(db, path), dir.path());
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

TEST_CASE("status --json tells a running job's rate, ETA, batch size and what it waits for",
          "[live][threads]") {
  TestDatabase db;
  create_items(db, 3000, 150);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", main_and_after_lists_yaml(100));
  Child child({"run", "-f", path, "--dsn", db.dsn()}, dir.path());
  wait_until(
      [&] { return job_status_json(db, path, "items")["rows_done"].get<long long>() >= 300; });

  Json items = job_status_json(db, path, "items");
  CHECK(items["status"] == "running");
  CHECK(items["rows_per_s"].get<double>() > 0);
  CHECK(items["eta_s"].is_number());
  CHECK(items["batch_size"] == 100);
  CHECK(items["waiting"].is_null());
  CHECK(job_status_json(db, path, "tally")["waiting"] == "waiting for list main");
  const std::string table = run_with_db(db, path, {"status"}).out;
  INFO(table);
  CHECK_THAT(table, Catch::Contains("RATE      ETA    BATCH  LAST KEY"));
  CHECK_THAT(table, Catch::Contains("    waiting for list main\n"));

  REQUIRE(run_with_db(db, path, {"pause", "items"}).exit_code == 0);
  wait_until([&] { return job_status_json(db, path, "items")["waiting"] == "paused"; });
  CHECK(job_status_json(db, path, "tally")["waiting"] == "waiting for list main");
  // The size set live is the size status shows, once a batch asked for it.
  REQUIRE(run_with_db(db, path, {"set", "items", "batch_size=40"}).exit_code == 0);
  REQUIRE(run_with_db(db, path, {"resume", "items"}).exit_code == 0);
  wait_until([&] { return job_status_json(db, path, "items")["batch_size"] == 40; });
  CHECK(child.wait() == 0);

  items = job_status_json(db, path, "items");
  CHECK(items["status"] == "done");
  CHECK(items["rows_per_s"].is_null());
  CHECK(items["eta_s"].is_null());
  CHECK(items["batch_size"] == 40);
  CHECK(job_status_json(db, path, "tally")["waiting"].is_null());
}

TEST_CASE("a failed job a few keys short of the end of its range is not shown 100 percent done") {
  TestDatabase db;
  create_items(db, 0);
  // One key far below the rest: the cursor, after the first batch, sits 0.00002 % short of the
  // largest key, where the last key fails.
  db.exec(
      "INSERT INTO legacy.items VALUES (1, 1);"
      "INSERT INTO legacy.items SELECT g, 1 FROM generate_series(10000000, 10000100) g;"
      "ANALYZE legacy.items;");
  poisoned_items_function(db, 10000100);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  const auto run = run_cli(with_db(db, path, {"run"}));
  REQUIRE(run.exit_code == 1);
  REQUIRE(db.scalar("SELECT status || ' ' || last_key FROM pgxform.job_state") ==
          "failed 10000098");
  // The error names the DBA's function, not the wrapper each batch calls.
  CHECK_THAT(run.err,
             Catch::Contains("SQL function \"items\"") && !Catch::Contains("pgxform_batch_"));
  CHECK_THAT(db.scalar("SELECT error FROM pgxform.job_state"),
             Catch::Contains("division by zero") && !Catch::Contains("pgxform_batch_"));

  // 100 rows done, about 2 left: short of 100 however the planner rounds.
  const auto json = run_cli(with_db(db, path, {"status", "--json"}));
  const auto job = job_in(parse_json(json.out), "items");
  CHECK(job["percent"].get<double>() > 95);
  CHECK(job["percent"].get<double>() < 100);
  const auto table = run_cli(with_db(db, path, {"status"}));
  CHECK_THAT(table.out, !Catch::Contains("100.0"));
}

TEST_CASE("status counts percent done in rows where the key space has a sequence jump") {
  TestDatabase db;
  // 1000 rows at keys 3..3000, then a sequence that leapt to 4,000,000 and 1000 rows more.
  create_items(db, 1000);
  db.exec(
      "INSERT INTO legacy.items SELECT 4000000 + g, g FROM generate_series(1, 1000) g;"
      "ANALYZE legacy.items;");
  poisoned_items_function(db, 4000001);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 1);
  REQUIRE(db.scalar("SELECT rows_done || ' ' || last_key FROM pgxform.job_state") == "1000 3000");
  // Half the rows are done, though the cursor is at 0.07 % of the key range.
  const auto job =
      job_in(parse_json(run_cli(with_db(db, path, {"status", "--json"})).out), "items");
  CHECK(job["percent"].get<double>() == Approx(50).margin(2));
}

TEST_CASE(
    "a batch held on a lock is shown in flight with what it waits on, and warned of less and less "
    "often",
    "[threads]") {
  TestDatabase db;
  create_items(db, 1000);
  TempDir dir;
  const auto path =
      dir.write("jobs.yaml", items_jobs_yaml(100, 1, "        target_batch_ms: 100\n"));
  // Another session holds the target table: the run's first batch waits on its lock.
  pqxx::connection locker("dbname=" + db.name());
  pqxx::work lock(locker);
  lock.exec("LOCK TABLE target.items IN ACCESS EXCLUSIVE MODE");
  const std::string locker_pid = std::to_string(locker.backendpid());
  Child child(with_db(db, path, {"run"}), dir.path());
  const auto warnings = [&] {
    return lines_with(child.err(), {"items: a batch has been in flight"});
  };
  // Warned of at 10x its target (1 s), again at 2 s, 4 s: wait for the third warning.
  wait_until([&] { return warnings() >= 3; });
  const Json items = job_status_json(db, path, "items");
  const double age = items["in_flight_s"].get<double>();
  CHECK(age >= 3);
  CHECK_THAT(
      items["in_flight_wait"].get<std::string>(),
      Catch::Contains("Lock:relation") && Catch::Contains("blocked by backend " + locker_pid));
  CHECK(items["eta_s"].is_null());
  const auto table = run_with_db(db, path, {"status"});
  CHECK_THAT(table.out,
             Catch::Contains("a batch in flight for") &&
                 Catch::Contains("waiting on Lock:relation, blocked by backend " + locker_pid) &&
                 Catch::Contains("ETA unknown"));
  CHECK_THAT(child.err(), Catch::Contains("pgxform explain items"));
  // Twice a second the display looks: a warning each time its age doubled, not each look.
  const long long said = warnings();
  lock.commit();
  REQUIRE(child.wait() == 0);
  CHECK(said <= 1 + long(std::log2(age + 1)) + 1);
  CHECK(db.scalar("SELECT count(*) FROM target.items") == "1000");
  // Between batches a runner holds no transaction: nothing in flight once it is done.
  CHECK(job_status_json(db, path, "items")["in_flight_s"].is_null());
}
