// Fleet runs (fleet_run.h) against real PostgreSQL: several databases of the test's server,
// and one on a second server when PGXFORM_TEST_SERVER2 names one ("port=5449"). Every target
// is checked against the from-scratch result: each source row in its target exactly once.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "commands/fleet_run.h"
#include "support/fixtures.h"
#include "support/prerequisite.h"
#include "support/test_db.h"
#include "support/test_json.h"

using Catch::Matchers::Contains;
using namespace pgxform_test;

namespace {

// `count` databases with create_items(rows, sleep_ms), the last on the second server when
// there is one; the targets file names them t1, t2, ...
struct Fleet {
  std::vector<std::unique_ptr<TestDatabase>> dbs;
  TempDir dir;
  std::string jobs;
  std::string targets;

  Fleet(int count, int rows, int sleep_ms, int batch_size = 100) {
    for (int i = 0; i < count; ++i) {
      const bool second = i == count - 1 && !second_server().empty();
      dbs.push_back(second ? std::make_unique<TestDatabase>(second_server())
                           : std::make_unique<TestDatabase>());
      create_items(*dbs.back(), rows, sleep_ms);
    }
    jobs = dir.write("jobs.yaml", items_jobs_yaml(batch_size));
    std::string yaml = "targets:\n";
    for (std::size_t i = 0; i < dbs.size(); ++i)
      yaml += "  - name: t" + std::to_string(i + 1) + "\n    dsn: \"" + dbs[i]->dsn() + "\"\n";
    targets = dir.write("targets.yaml", yaml);
  }
  std::vector<std::string> command(std::vector<std::string> more) const {
    std::vector<std::string> args = {"run", "-q", "-f", jobs, "--targets", targets};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  void check_done_once(int rows) {
    for (auto& db : dbs) {
      INFO(db->dsn());
      CHECK(missing_items(*db) == 0);
      CHECK(duplicate_items(*db) == 0);
      CHECK(db->count("SELECT count(*) FROM target.items") == rows);
    }
  }
};

}  // namespace

TEST_CASE("a fleet run writes every target's rows exactly once, on both servers", "[fleet_run]") {
  Fleet fleet(4, 1000, 0);
  const CliResult r = run_cli(fleet.command({"--threads", "2"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  fleet.check_done_once(1000);
  // Each target keeps its own state, as a run of its own would: a plain run finds it done.
  const CliResult again = run_cli({"run", "-f", fleet.jobs, "--dsn", fleet.dbs[0]->dsn()});
  CHECK(again.exit_code == 0);
  CHECK(fleet.dbs[0]->count("SELECT count(*) FROM target.items") == 1000);
}

// CI starts a second cluster for these tests (scripts/lib.sh: with_second_postgres): without
// it they run on one server and would say nothing of a fleet over two; this one fails then.
TEST_CASE("the fleet tests' second server is another cluster than the first", "[fleet_run]") {
  if (!prerequisite(!second_server().empty(),
                    "no second server (PGXFORM_TEST_SERVER2): the fleet tests run on one"))
    return;
  Fleet fleet(2, 10, 0);
  const auto cluster = [](TestDatabase& db) {
    return db.scalar(
        "SELECT system_identifier || ' ' || current_setting('data_directory')"
        " FROM pg_catalog.pg_control_system()");
  };
  INFO(fleet.dbs[0]->dsn() << " and " << fleet.dbs[1]->dsn());
  CHECK(cluster(*fleet.dbs[0]) != cluster(*fleet.dbs[1]));
}

TEST_CASE("a fleet run never has more workers than its budget", "[fleet_run][threads]") {
  Fleet fleet(3, 600, 30, 20);
  // Sample the batches in flight over all targets while the fleet runs.
  std::atomic<bool> running{true};
  std::atomic<long long> most{0};
  std::thread sampler([&] {
    while (running) {
      long long now = 0;
      for (auto& db : fleet.dbs)
        now += db->count(std::string("SELECT count(*) FROM ") + k_batches_in_flight);
      most = std::max(most.load(), now);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  const CliResult r = run_cli(fleet.command({"--threads", "2"}));
  running = false;
  sampler.join();
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(most.load() >= 1);
  CHECK(most.load() <= 2);
  fleet.check_done_once(600);
}

TEST_CASE("a fleet run killed at random moments resumes every target exactly once",
          "[fleet_run][kill]") {
  Fleet fleet(3, 3000, 20, 50);
  std::mt19937 rng(std::random_device{}());
  int code = -1;
  int kills = 0;
  for (int round = 0; round < 40 && code != 0; ++round) {
    Child child(fleet.command({"--threads", "3"}), fleet.dir.path());
    const int ms = std::uniform_int_distribution<int>(200, 1200)(rng);
    if (child.wait_for(ms, code)) break;
    child.kill(SIGKILL);
    code = child.wait();
    ++kills;
  }
  if (code != 0) code = run_cli(fleet.command({"--threads", "3"})).exit_code;
  REQUIRE(code == 0);
  CHECK(kills >= 1);
  fleet.check_done_once(3000);
}

TEST_CASE(
    "a target down at the start is reported, the others finish, and a later run "
    "finishes it",
    "[fleet_run]") {
  Fleet fleet(3, 500, 0);
  TestDatabase admin_side;
  admin_side.exec("ALTER DATABASE " + fleet.dbs[1]->name() + " ALLOW_CONNECTIONS false");
  const CliResult r = run_cli(fleet.command({"--threads", "2"}));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("fleet: t2: did not finish"));
  CHECK_THAT(r.err, Contains("fleet: 2 of 3 targets done"));
  CHECK(missing_items(*fleet.dbs[0]) == 0);
  CHECK(missing_items(*fleet.dbs[2]) == 0);
  admin_side.exec("ALTER DATABASE " + fleet.dbs[1]->name() + " ALLOW_CONNECTIONS true");
  const CliResult again = run_cli(fleet.command({"--threads", "2"}));
  INFO(again.err);
  CHECK(again.exit_code == 0);
  fleet.check_done_once(500);
}

TEST_CASE("a target failing its preflight is reported and the others go on", "[fleet_run]") {
  Fleet fleet(2, 300, 0);
  fleet.dbs[0]->exec("DROP FUNCTION xf.items(bigint, bigint)");
  const CliResult r = run_cli(fleet.command({}));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("fleet: t1: did not finish"));
  CHECK_THAT(r.err, Contains("xf.items"));
  CHECK(missing_items(*fleet.dbs[1]) == 0);
  CHECK_FALSE(fleet.dbs[0]->schema_exists("pgxform"));
}

TEST_CASE("bad targets input exits 2 and writes nothing anywhere", "[fleet_run]") {
  Fleet fleet(2, 100, 0);
  const auto refused = [&](const std::string& yaml, const std::string& says,
                           std::vector<std::string> more = {}) {
    const std::string path = fleet.dir.write("bad.yaml", yaml);
    std::vector<std::string> args = {"run", "-f", fleet.jobs, "--targets", path};
    args.insert(args.end(), more.begin(), more.end());
    const CliResult r = run_cli(args);
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains(says));
    for (auto& db : fleet.dbs) CHECK_FALSE(db->schema_exists("pgxform"));
  };
  const std::string t1 = "  - {name: t1, dsn: \"" + fleet.dbs[0]->dsn() + "\"}\n";
  refused("targets:\n" + t1 + t1, "bad.yaml:3: target 2: the name 't1' appears twice");
  refused("targets:\n" + t1 + "  - {name: t2, dsn: \"" + fleet.dbs[1]->dsn() +
              " password=Sekr3tPw\"}\n",
          "passfile");
  refused("targets:\n" + t1, "no target named 't9'", {"--target", "t9"});
  refused("targets:\n" + t1 + "targets_query:\n  dsn: \"" + fleet.dbs[1]->dsn() +
              "\"\n  sql: SELECT name, dsn FROM no_such_table\n",
          "bad.yaml:3: targets_query failed");
  const CliResult with_dsn =
      run_cli({"run", "-f", fleet.jobs, "--targets", fleet.targets, "--dsn", "dbname=x"});
  CHECK(with_dsn.exit_code == 2);
}

TEST_CASE("a targets_query's rows are the fleet's targets", "[fleet_run]") {
  Fleet fleet(2, 200, 0);
  TestDatabase coordinator;
  coordinator.exec("CREATE TABLE shards (name text, dsn text)");
  for (std::size_t i = 0; i < fleet.dbs.size(); ++i)
    coordinator.exec("INSERT INTO shards VALUES ('q" + std::to_string(i + 1) + "', '" +
                     fleet.dbs[i]->dsn() + "')");
  const std::string path =
      fleet.dir.write("query.yaml", "targets_query:\n  dsn: \"" + coordinator.dsn() +
                                        "\"\n  sql: SELECT name, dsn FROM shards ORDER BY name\n");
  const CliResult r = run_cli({"run", "-f", fleet.jobs, "--targets", path});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Contains("fleet: 2 of 2 targets done"));
  fleet.check_done_once(200);
}

TEST_CASE(
    "status over a fleet prints a line per target and the totals, its JSON a target "
    "on every job",
    "[fleet_run]") {
  Fleet fleet(2, 300, 0);
  REQUIRE(run_cli(fleet.command({"--target", "t1"})).exit_code == 0);
  CHECK(fleet.dbs[1]->count("SELECT count(*) FROM target.items") == 0);
  const CliResult table = run_cli({"status", "-f", fleet.jobs, "--targets", fleet.targets});
  INFO(table.err);
  CHECK(table.exit_code == 0);
  CHECK_THAT(table.out, Contains("TARGET"));
  CHECK_THAT(table.out, Contains("fleet"));
  CHECK_THAT(table.out, Contains("2 targets"));
  const CliResult json =
      run_cli({"status", "-f", fleet.jobs, "--targets", fleet.targets, "--json"});
  CHECK(json.exit_code == 0);
  const Json j = Json::parse(json.out);
  REQUIRE(j["targets"].size() == 2);
  CHECK(j["targets"][0]["target"] == "t1");
  CHECK(j["targets"][0]["done"] == 1);
  CHECK(j["targets"][0]["rows_done"] == 300);
  CHECK(j["fleet"]["done"] == 1);
  REQUIRE(j["jobs"].size() == 2);
  CHECK(j["jobs"][0]["target"] == "t1");
  CHECK(j["jobs"][0]["job"] == "items");
  CHECK(j["jobs"][0]["status"] == "done");
  CHECK(j["jobs"][1]["target"] == "t2");
  CHECK(j["jobs"][1]["status"] != "done");
}

TEST_CASE("pause, resume and set over a fleet or one target, each under its heading",
          "[fleet_run]") {
  Fleet fleet(2, 100, 0);
  REQUIRE(run_cli(fleet.command({})).exit_code == 0);
  const CliResult all = run_cli({"pause", "-f", fleet.jobs, "--targets", fleet.targets, "--all"});
  INFO(all.err);
  CHECK(all.exit_code == 0);
  CHECK_THAT(all.out, Contains("== target t1"));
  CHECK_THAT(all.out, Contains("== target t2"));
  const CliResult one =
      run_cli({"resume", "-f", fleet.jobs, "--targets", fleet.targets, "--target", "t2", "--all"});
  CHECK(one.exit_code == 0);
  CHECK_THAT(one.out, !Contains("== target t1"));
  CHECK_THAT(one.out, Contains("== target t2"));
  const CliResult set =
      run_cli({"set", "-f", fleet.jobs, "--targets", fleet.targets, "items", "batch_size=500"});
  CHECK(set.exit_code == 0);
  for (auto& db : fleet.dbs) CHECK(db->count("SELECT count(*) FROM pgxform.control") >= 1);
  const CliResult explain =
      run_cli({"explain", "-f", fleet.jobs, "--targets", fleet.targets, "items"});
  CHECK(explain.exit_code == 2);
  CHECK_THAT(explain.err, Contains("does not run over a fleet"));
}

TEST_CASE("catch-up, validate and plan run once per target over a fleet", "[fleet_run]") {
  Fleet fleet(2, 100, 0);
  for (const std::string command : {"validate", "plan"}) {
    const CliResult r = run_cli({command, "-f", fleet.jobs, "--targets", fleet.targets});
    INFO(command << ": " << r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Contains("== target t1"));
    CHECK_THAT(r.out, Contains("== target t2"));
  }
  const CliResult follow =
      run_cli({"catch-up", "-f", fleet.jobs, "--targets", fleet.targets, "--follow"});
  CHECK(follow.exit_code == 2);
}

TEST_CASE("a fleet run says its progress: targets ended, running, waiting and the busiest",
          "[fleet_run]") {
  Fleet fleet(3, 400, 30, 20);
  setenv("PGXFORM_PROGRESS_INTERVAL_MS", "150", 1);
  const CliResult r =
      run_cli({"run", "-f", fleet.jobs, "--targets", fleet.targets, "--threads", "2"});
  unsetenv("PGXFORM_PROGRESS_INTERVAL_MS");
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Contains("targets ended, 2 running, 1 waiting; busiest: t"));
  fleet.check_done_once(400);
}

TEST_CASE(
    "a server of the fleet restarted mid-run: its target resumes and every target "
    "finishes exactly once",
    "[fleet_run][restart]") {
  // The last target is on the second server when there is one: the others go on meanwhile.
  Fleet fleet(3, 3000, 20, 50);
  TestDatabase& restarted = *fleet.dbs.back();
  Child child(fleet.command({"--threads", "3"}), fleet.dir.path());
  wait_until([&] { return restarted.count("SELECT count(*) FROM target.items") > 0; });
  TestServer(restarted).restart("fast");
  int code = -1;
  if (!child.wait_for(180000, code)) {
    child.kill(SIGKILL);
    code = child.wait();
  }
  INFO(child.err());
  CHECK(code == 0);
  fleet.check_done_once(3000);
}

TEST_CASE(
    "status --targets --watch draws the fleet block until SIGINT, an unreachable target in it",
    "[fleet_run]") {
  Fleet fleet(2, 300, 0);
  REQUIRE(run_cli(fleet.command({"--threads", "2"})).exit_code == 0);
  std::string yaml = "targets:\n";
  for (std::size_t i = 0; i < fleet.dbs.size(); ++i)
    yaml += "  - name: t" + std::to_string(i + 1) + "\n    dsn: \"" + fleet.dbs[i]->dsn() + "\"\n";
  yaml += "  - name: t3\n    dsn: \"dbname=pgxform_test_no_such_database\"\n";
  const std::string targets = fleet.dir.write("targets3.yaml", yaml);
  Child child({"status", "-f", fleet.jobs, "--targets", targets, "--watch", "0.2"},
              fleet.dir.path());
  wait_until([&] {
    const std::string out = child.out();
    return out.find("fleet: 3 targets") != out.rfind("fleet: 3 targets");
  });
  child.kill(SIGINT);
  INFO(child.out() << child.err());
  CHECK(child.wait() == 0);
  const std::string out = child.out();
  // Off a terminal each refresh is appended: plain lines, no escapes.
  CHECK(out.find('\x1b') == std::string::npos);
  CHECK_THAT(out, Contains("fleet: 3 targets: 2 done, 0 running, 1 failed, 0 waiting; 600 rows"));
  CHECK_THAT(out, Contains("failed targets:"));
  CHECK_THAT(out, Contains("t3 "));
  CHECK_THAT(out, Contains("pgxform_test_no_such_database"));
}
