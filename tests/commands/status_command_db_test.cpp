// status against a real PostgreSQL and real runner processes: each job's status, counters and
// percent; the runner (host:pid) that holds a running job, and none once it was killed; a job
// whose runner died shown as interrupted; a running job's rate, ETA, batch size and waiting
// reason; a failed job's percent.
#include <catch2/catch.hpp>
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
  // Halfway: the cursor stands at key 1500 of 3..3000, about half done.
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
  CHECK(running["percent"] == 49.9);
  auto table = run_cli({"status", "-f", path, "--dsn", db.dsn()});
  CHECK_THAT(table.out, Catch::Contains("items") && Catch::Contains("running") &&
                            Catch::Contains("1500") && Catch::Contains("49.9"));
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

  const auto json = run_cli(with_db(db, path, {"status", "--json"}));
  const auto job = job_in(parse_json(json.out), "items");
  CHECK(job["percent"].get<double>() == Approx(99.9));
  const auto table = run_cli(with_db(db, path, {"status"}));
  CHECK_THAT(table.out, Catch::Contains(" 99.9 ") && !Catch::Contains("100.0"));
}
