// The connections a runner's worker pool takes (worker_pool.h), counted on a real PostgreSQL
// with a real runner: no more workers than tasks can run, whatever `set --threads` asks, and no
// more connections than the server has free for the runner less the reserve, so that
// `pgxform status` still gets in. The server itself is shared: its limit here is a role's
// CONNECTION LIMIT (a superuser would be exempt from it), so that nothing this test does can
// starve another test.
#include <catch2/catch.hpp>

#include "engine/worker_pool.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

// The sessions of the runner `pid` now (its application_name ends in ":pid").
long long runner_sessions(TestDatabase& db, int pid) {
  return db.count("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgxform %:" +
                  std::to_string(pid) + "'");
}

std::vector<std::string> as_role(const TestRole& role, const std::string& path,
                                 std::vector<std::string> args) {
  args.insert(args.end(), {"-f", path, "--dsn", role.dsn()});
  return args;
}

}  // namespace

TEST_CASE(
    "set --threads 1024 starts no more workers than tasks can run, and status still connects") {
  TestDatabase db;
  const TestRole role(db, "pool", "CONNECTION LIMIT 20");
  create_items(db, 600);
  grant_items(db, role);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(20, 3));  // three slices: 3 tasks
  // Paused, each worker holds its slice and its connection: the pool's size is there to count.
  REQUIRE(run_cli(as_role(role, path, {"pause", "items"})).exit_code == 0);
  Child child(as_role(role, path, {"run", "--threads", "1"}), dir.path());
  wait_until([&] { return child.err().find("paused (job items)") != std::string::npos; });
  const auto set = run_cli(as_role(role, path, {"set", "--threads", "1024"}));
  INFO(set.err);
  REQUIRE(set.exit_code == 0);
  wait_until([&] {
    return child.err().find("3 workers: 3 tasks can run") != std::string::npos &&
           db.count("SELECT count(*) FROM pgxform.runner_pool WHERE workers = 3") == 1;
  });
  // The three workers, each on its slice, and the pool's own connection: never more.
  for (int sample = 0; sample < 5; ++sample) {
    CHECK(runner_sessions(db, child.pid()) <= 4);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  CHECK(db.count("SELECT count(*) FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted"
                 " AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database"
                 " WHERE datname = current_database())") == 3);
  const auto status = run_cli(as_role(role, path, {"status"}));
  INFO(status.out << status.err);
  CHECK(status.exit_code == 0);
  CHECK_THAT(status.out, Catch::Contains("(run): 3 workers: 3 tasks can run,") &&
                             Catch::Contains("(1024 threads asked, 5 kept in reserve)"));
  REQUIRE(run_cli(as_role(role, path, {"resume", "items"})).exit_code == 0);
  CHECK(child.wait() == 0);
  INFO(child.err());
  CHECK_THAT(child.err(), Catch::Contains("threads: 1 -> 1024 (set --threads)"));
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  // The runner's row goes with it.
  CHECK(db.count("SELECT count(*) FROM pgxform.runner_pool") == 0);
}

TEST_CASE("a pool takes no more connections than the server has free less the reserve") {
  TestDatabase db;
  const TestRole role(db, "budget", "CONNECTION LIMIT 12");
  create_items(db, 1600);
  grant_items(db, role);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(20, 16));  // 16 tasks
  REQUIRE(run_cli(as_role(role, path, {"pause", "items"})).exit_code == 0);
  Child child(as_role(role, path, {"run", "--threads", "1024"}), dir.path());
  wait_until([&] { return child.err().find("paused (job items") != std::string::npos; });
  // 12 for the role: the run's connection and the pool's own leave 10, less the reserve of 5:
  // 5 more workers, 6 in all, and 5 connections that nobody of this runner takes.
  wait_until(
      [&] { return db.count("SELECT count(*) FROM pgxform.runner_pool WHERE workers = 6") == 1; });
  for (int sample = 0; sample < 5; ++sample) {
    CHECK(runner_sessions(db, child.pid()) <= 7);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  const auto status = run_cli(as_role(role, path, {"status"}));
  INFO(status.out << status.err);
  CHECK(status.exit_code == 0);
  CHECK_THAT(status.out, Catch::Contains("(run): 6 workers: 16 tasks can run,") &&
                             Catch::Contains("(1024 threads asked, 5 kept in reserve)"));
  // The connections free it says are those it saw: a worker connecting that moment is counted
  // twice (as about to connect, and by the server), never less.
  CHECK_THAT(child.err(), Catch::Contains("6 workers: 16 tasks can run, ") &&
                              Catch::Contains(" connections free (1024 threads asked, 5 kept in "
                                              "reserve)"));
  REQUIRE(run_cli(as_role(role, path, {"resume", "items"})).exit_code == 0);
  CHECK(child.wait() == 0);
  INFO(child.err());
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}
