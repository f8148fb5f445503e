// Steering running jobs (control_command.h, job_control.h) against a real PostgreSQL and a real
// runner process: pause holds a job between batches until resume, set changes the size of its
// next batches, its pause between batches and the runner's threads, plain SQL on the control
// table does the same, and bad requests write nothing. (The throttles:
// tests/engine/health_throttle_db_test.cpp.)
#include <catch2/catch.hpp>
#include <chrono>
#include <pqxx/pqxx>
#include <thread>
#include <vector>

#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"
#include "support/test_text.h"

using namespace pgxform_test;

TEST_CASE("a paused job takes no batch until it is resumed, then the run finishes it",
          "[threads]") {
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

TEST_CASE("set changes the size of a running job's next batches, and plain SQL can pause it",
          "[threads]") {
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

TEST_CASE("a paused list waits while an independent list runs to its end", "[threads]") {
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

TEST_CASE("set --threads grows and shrinks the workers of a running runner", "[threads]") {
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

TEST_CASE("a job named k=v is refused at its line by validate, run and pause, nothing written") {
  TestDatabase db;
  create_items(db, 100, 0);
  TempDir dir;
  std::string yaml = items_jobs_yaml(50);
  yaml.replace(yaml.find("name: items"), 11, "name: k=v");
  const auto path = dir.write("jobs.yaml", yaml);
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"validate"}, {"run"}, {"pause", "k=v"}}) {
    const auto r = run_with_db(db, path, command);
    INFO(command[0] << ": " << r.out << r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("jobs.yaml:5: the name of job 'k=v' holds '='"));
  }
  CHECK_FALSE(db.schema_exists("pgxform"));
  CHECK(db.count("SELECT count(*) FROM target.items") == 0);
}

TEST_CASE(
    "control values out of their limits written by SQL are ignored with one warning each, the "
    "run goes on, and status shows them") {
  TestDatabase db;
  create_items(db, 600, 20);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run_with_db(db, path, {"pause", "items"}).exit_code == 0);
  // What no command would write, but any SQL session may.
  db.exec(
      "UPDATE pgxform.control SET batch_size = 9223372036854775807"
      " WHERE scope = 'job' AND name = 'items';"
      "INSERT INTO pgxform.control (scope, name, threads) VALUES ('all', '', 10000)");
  Child child({"run", "-f", path, "--dsn", db.dsn(), "--threads", "2"}, dir.path());
  const std::string batch_warning =
      "control: ignored batch_size 9223372036854775807 > 1000000000 (job items): out of its "
      "limit, as if not set";
  const std::string threads_warning =
      "control: ignored threads 10000 > 1024 (all): out of its limit, as if not set; the runners "
      "keep the threads they were started with";
  wait_until([&] {
    const std::string err = child.err();
    return err.find("items: paused (job items)") != std::string::npos &&
           err.find(batch_warning) != std::string::npos &&
           err.find(threads_warning) != std::string::npos;
  });
  // The runner reads the control table every second while paused: a few more reads.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  const auto status = run_with_db(db, path, {"status"});
  INFO(status.out << status.err);
  CHECK_THAT(status.out,
             Catch::Contains("    ignored: batch_size 9223372036854775807 > 1000000000 (job "
                             "items)") &&
                 Catch::Contains("\nignored: threads 10000 > 1024 (all)"));
  const Json json = parse_json(run_with_db(db, path, {"status", "--json"}).out);
  CHECK(job_in(json, "items")["ignored"][0] ==
        "batch_size 9223372036854775807 > 1000000000 (job items)");
  CHECK(json["ignored"][0] == "threads 10000 > 1024 (all)");

  REQUIRE(run_with_db(db, path, {"resume", "items"}).exit_code == 0);
  CHECK(child.wait() == 0);
  const std::string err = child.err();
  INFO(err);
  CHECK(occurrences(err, batch_warning) == 1);
  CHECK(occurrences(err, threads_warning) == 1);
  // The jobs file's size, as if the row did not set one; the workers as started.
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == 6);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE batch_size <> 100") == 0);
  CHECK(err.find("threads: 2 ->") == std::string::npos);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}

TEST_CASE(
    "set KEY=default and set --threads default clear what set left, which run and status list") {
  TestDatabase db;
  create_items(db, 100, 0);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10));
  REQUIRE(run_with_db(db, path, {"set", "items", "batch_size=50", "pause_ms=0"}).exit_code == 0);
  REQUIRE(run_with_db(db, path, {"set", "--threads", "2"}).exit_code == 0);
  // Both stay for the next run: it says so at its start, and status lists them.
  const auto run = run_with_db(db, path, {"run"});
  REQUIRE(run.exit_code == 0);
  CHECK_THAT(run.err, Catch::Contains("in force from pgxform set: job items batch_size=50 "
                                      "pause_ms=0") &&
                          Catch::Contains("in force from pgxform set: all threads=2"));
  const auto status = parse_json(run_with_db(db, path, {"status", "--json"}).out);
  CHECK(status["overrides"] ==
        Json::array({"all threads=2", "job items batch_size=50 pause_ms=0"}));
  CHECK_THAT(run_with_db(db, path, {"status"}).out,
             Catch::Contains("set: job items batch_size=50 pause_ms=0 (pgxform set ... "
                             "KEY=default clears it)"));
  // Cleared: the jobs file's values (and each runner's own threads) apply again.
  const auto cleared = run_with_db(db, path, {"set", "items", "batch_size=default"});
  INFO(cleared.err);
  REQUIRE(cleared.exit_code == 0);
  CHECK_THAT(cleared.out, Catch::Contains("set batch_size=default for job items"));
  REQUIRE(run_with_db(db, path, {"set", "items", "pause_ms=default"}).exit_code == 0);
  REQUIRE(run_with_db(db, path, {"set", "--threads", "default"}).exit_code == 0);
  CHECK(db.scalar("SELECT count(*) FROM pgxform.control WHERE batch_size IS NOT NULL OR "
                  "pause_ms IS NOT NULL OR threads IS NOT NULL") == "0");
  CHECK(parse_json(run_with_db(db, path, {"status", "--json"}).out)["overrides"].empty());
  REQUIRE(run_with_db(db, path, {"reset", "items"}).exit_code == 0);
  const auto again = run_with_db(db, path, {"run"});
  CHECK_THAT(again.err, !Catch::Contains("in force from pgxform set"));
  // default is no number elsewhere: refused as before.
  CHECK(run_with_db(db, path, {"set", "items", "batch_size=defaults"}).exit_code == 2);
  CHECK(run_with_db(db, path, {"set", "--threads", "default", "items"}).exit_code == 2);
}

TEST_CASE("pause, resume and set refuse a name that is both a list and a job unless told which") {
  TestDatabase db;
  create_items(db, 10, 0);
  TempDir dir;
  // The list is named as its job, as init named lists before issue 26.
  const auto path =
      dir.write("jobs.yaml",
                "version: 1\nlists:\n  - name: items\n    jobs:\n      - name: items\n"
                "        table: legacy.items\n        key: id\n"
                "        function: xf.items\n");
  REQUIRE(parse_json(run_with_db(db, path, {"plan", "--json"}).out)["lists"][0]["name"] == "items");
  for (const std::string action : {"pause", "resume"}) {
    const auto r = run_with_db(db, path, {action, "items"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("'items' is both a list and a job") &&
                          Catch::Contains("--list items") && Catch::Contains("--job items"));
  }
  CHECK(run_with_db(db, path, {"set", "items", "batch_size=5"}).exit_code == 2);
  CHECK_FALSE(db.schema_exists("pgxform"));
  const auto job = run_with_db(db, path, {"pause", "--job", "items"});
  REQUIRE(job.exit_code == 0);
  CHECK_THAT(job.out, Catch::Contains("paused job items"));
  const auto list = run_with_db(db, path, {"set", "--list", "items", "batch_size=5"});
  REQUIRE(list.exit_code == 0);
  CHECK_THAT(list.out, Catch::Contains("for list items"));
  CHECK(run_with_db(db, path, {"resume", "--list", "items", "--job", "items"}).exit_code == 2);
}
