// Steering running jobs (job_control.h, control_command.h, health_throttle.h) against a real
// PostgreSQL and a real runner process: pause holds a job between batches until resume, set
// changes the size of its next batches, plain SQL on the control table does the same, bad
// requests write nothing, and throttle limits make the run wait for the database's health.
#include <catch2/catch.hpp>
#include <chrono>
#include <pqxx/pqxx>
#include <thread>
#include <vector>

#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

TEST_CASE("a paused job takes no batch until it is resumed, then the run finishes it") {
  TestDatabase db;
  create_items(db, 500, 20);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  // Paused before the run starts: the command creates the state schema.
  const auto paused = run_with_db(db, path, {"pause", "items"});
  INFO(paused.out << paused.err);
  REQUIRE(paused.exit_code == 0);
  CHECK_THAT(paused.out, Catch::Contains("paused job items"));

  Child child({"run", "-f", path, "--dsn", db.dsn()}, dir.path());
  wait_until([&] { return child.err().find("items: paused (job items)") != std::string::npos; });
  // The runner keeps waiting: it reads the control table again every second and takes no
  // batch. Two more reads, and still no batch and no exit.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  int code = 0;
  CHECK_FALSE(child.wait_for(1, code));
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == 0);
  CHECK(db.count("SELECT count(*) FROM target.items") == 0);
  const auto status = parse_json(run_with_db(db, path, {"status", "--json"}).out);
  CHECK(job_in(status, "items")["waiting"] == "paused");
  CHECK_THAT(run_with_db(db, path, {"status"}).out,
             Catch::Contains("paused (job items): no new batch until pgxform resume items"));

  REQUIRE(run_with_db(db, path, {"resume", "items"}).exit_code == 0);
  CHECK(child.wait() == 0);
  INFO(child.err());
  CHECK_THAT(child.err(), Catch::Contains("items: resumed"));
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(job_in(parse_json(run_with_db(db, path, {"status", "--json"}).out), "items")["waiting"]
            .is_null());
}

TEST_CASE("set changes the size of a running job's next batches, and plain SQL can pause it") {
  TestDatabase db;
  create_items(db, 500, 0);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  // The schema, then a pause of the job's list written as plain SQL, as docs/cli.md shows.
  REQUIRE(run_with_db(db, path, {"set", "--all", "pause_ms=0"}).exit_code == 0);
  db.exec("INSERT INTO pgxform.control (scope, name, paused) VALUES ('list', 'main', true)");

  Child child({"run", "-f", path, "--dsn", db.dsn()}, dir.path());
  wait_until([&] { return child.err().find("items: paused (list main)") != std::string::npos; });
  const auto set = run_with_db(db, path, {"set", "items", "batch_size=7", "target_batch_ms=0"});
  INFO(set.out << set.err);
  REQUIRE(set.exit_code == 0);
  CHECK_THAT(set.out, Catch::Contains("set batch_size=7 target_batch_ms=0 for job items"));
  db.exec("UPDATE pgxform.control SET paused = false WHERE scope = 'list'");
  CHECK(child.wait() == 0);
  CHECK(missing_items(db) == 0);
  // Every batch after the change took 7 keys (the last one what was left).
  CHECK(db.scalar("SELECT string_agg(DISTINCT batch_size::text, ',') FROM pgxform.batch_log") ==
        "7");
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == (500 + 6) / 7);
}

TEST_CASE("pause, resume and set refuse an unknown name, setting or value and write nothing") {
  TestDatabase db;
  create_items(db, 10, 0);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_and_counting_step_yaml(db));
  const std::vector<std::vector<std::string>> bad = {
      {"pause", "itemz"},
      {"pause"},
      {"resume", "items", "--all"},
      {"pause", "count-step"},
      {"set", "items"},
      {"set", "items", "batch_sise=5"},
      {"set", "items", "batch_size=0"},
      {"set", "items", "pause_ms=-1"},
      {"set", "items", "target_batch_ms=fast"},
      {"pause", "items", "batch_size=5"},
  };
  for (const auto& args : bad) {
    const auto r = run_with_db(db, path, args);
    INFO(args.front() << " " << (args.size() > 1 ? args[1] : "") << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK_FALSE(db.schema_exists("pgxform"));
  }
  CHECK_THAT(run_with_db(db, path, {"pause", "itemz"}).err,
             Catch::Contains("no list or job 'itemz'") && Catch::Contains("did you mean 'items'?"));
  CHECK_THAT(run_with_db(db, path, {"set", "items", "batch_sise=5"}).err,
             Catch::Contains("unknown setting 'batch_sise'"));
}

TEST_CASE("a transaction held open past max_xact_age_s makes the run wait until it ends") {
  TestDatabase db;
  create_items(db, 300, 0);
  TempDir dir;
  const auto path =
      dir.write("jobs.yaml", "version: 1\ndefaults: {throttle: {max_xact_age_s: 1}}\n" +
                                 items_jobs_yaml(100).substr(std::string("version: 1\n").size()));
  // An application's transaction, left open: it holds back vacuum on the migration's tables.
  pqxx::connection app(db.dsn());
  pqxx::work open(app);
  open.exec("SELECT txid_current()");
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));

  Child child({"run", "-f", path, "--dsn", db.dsn()}, dir.path());
  wait_until(
      [&] { return child.err().find("items: throttled: max_xact_age_s") != std::string::npos; });
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == 0);
  const auto waiting =
      job_in(parse_json(run_with_db(db, path, {"status", "--json"}).out), "items")["waiting"];
  CHECK_THAT(waiting.get<std::string>(), Catch::StartsWith("throttled: max_xact_age_s "));
  open.abort();
  CHECK(child.wait() == 0);
  INFO(child.err());
  CHECK_THAT(child.err(), Catch::Contains("items: no longer throttled"));
  CHECK(missing_items(db) == 0);
  CHECK(job_in(parse_json(run_with_db(db, path, {"status", "--json"}).out), "items")["waiting"]
            .is_null());
}

TEST_CASE("more active sessions than max_active_sessions make the run wait until they end") {
  TestDatabase db;
  create_items(db, 300, 0);
  TempDir dir;
  const auto path = dir.write(
      "jobs.yaml", items_jobs_yaml(100, 1, "        throttle: {max_active_sessions: 1}\n"));
  // Two application sessions busy with a statement, until they are cancelled.
  BusySessions busy(db, 2);
  Child child({"run", "-f", path, "--dsn", db.dsn()}, dir.path());
  wait_until([&] {
    return child.err().find("items: throttled: max_active_sessions") != std::string::npos;
  });
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == 0);
  busy.end();
  CHECK(child.wait() == 0);
  INFO(child.err());
  CHECK(missing_items(db) == 0);
}

TEST_CASE("a paused list waits while an independent list runs to its end") {
  TestDatabase db;
  create_items(db, 300, 0);
  db.exec(
      "CREATE TABLE legacy.others (id int PRIMARY KEY); CREATE TABLE target.others (id int);"
      "INSERT INTO legacy.others SELECT generate_series(1, 250);"
      "CREATE FUNCTION xf.others(a int, b int) RETURNS void LANGUAGE sql AS"
      " 'INSERT INTO target.others SELECT id FROM legacy.others WHERE id BETWEEN a AND b'");
  TempDir dir;
  const auto path = dir.write(
      "jobs.yaml", items_jobs_yaml(100) +
                       "  - name: other\n"
                       "    jobs:\n"
                       "      - {name: others, table: legacy.others, key: id, function: xf.others,"
                       " batch_size: 50, target_batch_ms: 0}\n");
  REQUIRE(run_with_db(db, path, {"pause", "main"}).exit_code == 0);
  Child child({"run", "-f", path, "--dsn", db.dsn(), "--threads", "2"}, dir.path());
  wait_until([&] {
    return db.scalar("SELECT status FROM pgxform.job_state WHERE job = 'others'") == "done";
  });
  CHECK(db.count("SELECT count(*) FROM target.others") == 250);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE job = 'items'") == 0);
  int code = 0;
  CHECK_FALSE(child.wait_for(1, code));
  REQUIRE(run_with_db(db, path, {"resume", "main"}).exit_code == 0);
  CHECK(child.wait() == 0);
  CHECK(missing_items(db) == 0);
}

TEST_CASE("set pause_ms leaves at least that long between two batches of a running job") {
  TestDatabase db;
  create_items(db, 400, 0);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  // Set while the runner runs (held by a pause until then), then resumed.
  REQUIRE(run_with_db(db, path, {"pause", "items"}).exit_code == 0);
  Child child({"run", "-f", path, "--dsn", db.dsn()}, dir.path());
  wait_until([&] { return child.err().find("items: paused (job items)") != std::string::npos; });
  REQUIRE(run_with_db(db, path, {"set", "items", "pause_ms=150"}).exit_code == 0);
  REQUIRE(run_with_db(db, path, {"resume", "items"}).exit_code == 0);
  CHECK(child.wait() == 0);
  // A lower bound, so no clock can make it flaky: each batch starts at least 150 ms after the
  // one before it ended.
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == 4);
  CHECK(db.scalar("SELECT bool_and(gap >= 150) FROM (SELECT extract(epoch FROM started_at - lag("
                  "started_at) OVER (ORDER BY batch_no)) * 1000 - lag(duration_ms) OVER (ORDER BY"
                  " batch_no) AS gap FROM pgxform.batch_log) g WHERE gap IS NOT NULL") == "t");
}

TEST_CASE("set --threads grows and shrinks the workers of a running runner") {
  TestDatabase db;
  create_items(db, 2400, 150);  // 4 slices of 30 batches, 150 ms each
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(20, 4));
  // The tasks claimed right now: one advisory lock per task a worker runs.
  const auto claimed = [&] {
    return db.count(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
        " WHERE d.datname = current_database() AND l.locktype = 'advisory'"
        " AND l.granted AND l.objsubid = 2");
  };
  Child child({"run", "-f", path, "--dsn", db.dsn(), "--threads", "1"}, dir.path());
  wait_until([&] { return db.count("SELECT count(*) FROM pgxform.batch_log") > 0; });
  CHECK(claimed() == 1);

  const auto up = run_with_db(db, path, {"set", "--threads", "3"});
  INFO(up.out << up.err);
  REQUIRE(up.exit_code == 0);
  CHECK_THAT(up.out, Catch::Contains("set threads=3 for every runner of " + path));
  wait_until([&] { return claimed() == 3; });
  CHECK(db.scalar("SELECT threads FROM pgxform.control WHERE scope = 'all'") == "3");

  REQUIRE(run_with_db(db, path, {"set", "--threads", "1"}).exit_code == 0);
  // Two workers leave after their batch and hand their slices back: one slice runs again.
  wait_until([&] { return claimed() == 1; });
  CHECK(child.wait() == 0);
  INFO(child.err());
  CHECK_THAT(child.err(), Catch::Contains("threads: 1 -> 3 (set --threads)") &&
                              Catch::Contains("threads: 3 -> 1 (set --threads)") &&
                              Catch::Contains("handed back after its batch"));
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.job_slice WHERE status = 'done'") == 4);
}

TEST_CASE("set --threads refuses a bad count, names or pause with it, and writes nothing") {
  TestDatabase db;
  create_items(db, 10, 0);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(5));
  const std::vector<std::vector<std::string>> bad = {
      {"set", "--threads", "0"},          {"set", "--threads", "5000"},
      {"set", "--threads", "many"},       {"set", "items", "--threads", "2"},
      {"set", "--all", "--threads", "2"},
  };
  for (const auto& args : bad) {
    const auto r = run_with_db(db, path, args);
    INFO(args[1] << " " << args[2] << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK_FALSE(db.schema_exists("pgxform"));
  }
  CHECK_THAT(run_with_db(db, path, {"set", "--threads", "0"}).err,
             Catch::Contains("--threads must be a number of threads from 1 to 1024"));
}
