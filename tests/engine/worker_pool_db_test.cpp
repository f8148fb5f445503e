// The worker pool in a real process: SIGINT lets the batches in flight commit and hands out no
// more work, a second SIGINT cancels them; a system that refuses the threads asked for stops
// the run before it writes. And the connections a runner's pool takes, counted on a real
// PostgreSQL with a real runner: no more workers than tasks can run, whatever `set --threads`
// asks, and no more connections than the server has free for the runner less the reserve, so
// that `pgxform status` still gets in. The server itself is shared: its limit here is a role's
// CONNECTION LIMIT (a superuser would be exempt from it), so that nothing this test does can
// starve another test.
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

// The sessions of the runner `pid` now (its application_name ends in ":pid").
long long runner_sessions(TestDatabase& db, int pid) {
  return db.count("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgxform %:" +
                  std::to_string(pid) + "'");
}

std::vector<std::string> role_args(const TestRole& role, const std::string& path,
                                   std::vector<std::string> args) {
  args.insert(args.end(), {"-f", path, "--dsn", role.dsn()});
  return args;
}

// After a stopped run whose functions were swapped for fast ones mid-job: the rerun accepts
// the change, completes, and every row is there exactly once.
void rerun_with_fast_functions(TestDatabase& db, const std::string& path, const TempDir& dir) {
  auto args = two_lists_run_args(db, path);
  args.insert(args.end(), {"--accept-changed", "items", "--accept-changed", "others"});
  Child rerun(args, dir.path());
  CHECK(rerun.wait() == 0);
  check_two_lists_done_once(db, 1000);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("set --threads 1024 starts no more workers than tasks can run, and status still connects",
          "[threads]") {
  TestDatabase db;
  const TestRole role(db, "pool", "CONNECTION LIMIT 20");
  create_items(db, 600);
  grant_items(db, role);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(20, 3));  // three slices: 3 tasks
  // Paused, each worker holds its slice and its connection: the pool's size is there to count.
  REQUIRE(run_cli(role_args(role, path, {"pause", "items"})).exit_code == 0);
  Child child(role_args(role, path, {"run", "--threads", "1"}), dir.path());
  wait_until([&] { return child.err().find("paused (job items)") != std::string::npos; });
  const auto set = run_cli(role_args(role, path, {"set", "--threads", "1024"}));
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
  const auto status = run_cli(role_args(role, path, {"status"}));
  INFO(status.out << status.err);
  CHECK(status.exit_code == 0);
  CHECK_THAT(status.out, Catch::Contains("(run): 3 workers: 3 tasks can run,") &&
                             Catch::Contains("(1024 threads asked, 5 kept in reserve)"));
  REQUIRE(run_cli(role_args(role, path, {"resume", "items"})).exit_code == 0);
  CHECK(child.wait() == 0);
  INFO(child.err());
  CHECK_THAT(child.err(), Catch::Contains("threads: 1 -> 1024 (set --threads)"));
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  // The runner's row goes with it.
  CHECK(db.count("SELECT count(*) FROM pgxform.runner_pool") == 0);
}

TEST_CASE("a pool takes no more connections than the server has free less the reserve",
          "[threads]") {
  TestDatabase db;
  const TestRole role(db, "budget", "CONNECTION LIMIT 12");
  create_items(db, 1600);
  grant_items(db, role);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(20, 16));  // 16 tasks
  REQUIRE(run_cli(role_args(role, path, {"pause", "items"})).exit_code == 0);
  // The pause's session may outlive its process a moment (its backend exits after the client
  // did): the run must count the role's connections without it.
  wait_until([&] {
    return db.count("SELECT count(*) FROM pg_stat_activity WHERE usename = '" + role.name() +
                    "'") == 0;
  });
  Child child(role_args(role, path, {"run", "--threads", "1024"}), dir.path());
  wait_until([&] { return child.err().find("paused (job items") != std::string::npos; });
  // 12 for the role: the run's connection and the pool's own leave 10, less the reserve of 5:
  // 5 more workers, 6 in all, and 5 connections that nobody of this runner takes.
  // A flake seen under load (the pool stayed at 5) says what the runner counted, and the
  // sessions it counted them from.
  wait_until(
      [&] { return db.count("SELECT count(*) FROM pgxform.runner_pool WHERE workers = 6") == 1; },
      [&] {
        return "runner_pool: " +
               db.scalar(
                   "SELECT string_agg(format('%s workers, %s free', workers,"
                   " connections_free), '; ') FROM pgxform.runner_pool") +
               "\nthe role's sessions: " +
               db.scalar(
                   "SELECT string_agg(coalesce(application_name, '') || ' ' || state, '; ')"
                   " FROM pg_stat_activity WHERE usename = '" +
                   role.name() + "'") +
               "\nthe server's client sessions: " +
               db.scalar(
                   "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client "
                   "backend'") +
               "\n" + child.err();
      });
  for (int sample = 0; sample < 5; ++sample) {
    CHECK(runner_sessions(db, child.pid()) <= 7);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  const auto status = run_cli(role_args(role, path, {"status"}));
  INFO(status.out << status.err);
  CHECK(status.exit_code == 0);
  CHECK_THAT(status.out, Catch::Contains("(run): 6 workers: 16 tasks can run,") &&
                             Catch::Contains("(1024 threads asked, 5 kept in reserve)"));
  // The connections free it says are those it saw: a worker connecting that moment is counted
  // twice (as about to connect, and by the server), never less.
  CHECK_THAT(child.err(), Catch::Contains("6 workers: 16 tasks can run, ") &&
                              Catch::Contains(" connections free (1024 threads asked, 5 kept in "
                                              "reserve)"));
  REQUIRE(run_cli(role_args(role, path, {"resume", "items"})).exit_code == 0);
  CHECK(child.wait() == 0);
  INFO(child.err());
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}

TEST_CASE(
    "SIGINT lets the batch in flight commit, exits 3, and the rerun completes exactly "
    "once",
    "[threads]") {
  TestDatabase db;
  create_two_lists(db, 1000, 150);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", two_lists_yaml(1));
  Child child(two_lists_run_args(db, path), dir.path());
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
    "rerun completes exactly once",
    "[threads]") {
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
  Child child(two_lists_run_args(db, path), dir.path());
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

TEST_CASE(
    "the first SIGINT says at once what will finish before the run stops, and a step logs its "
    "start and duration",
    "[threads]") {
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

TEST_CASE("a system that refuses a worker thread stops the run with exit 2, nothing written") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  // 64 slices: 64 tasks can run, so the pool starts a worker for each the server has a
  // connection for, more than 12 on any server.
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10, 64));
  // As root, RLIMIT_NPROC is not enforced: the runner runs as nobody, limited to 12 threads.
  const passwd* nobody = getpwnam("nobody");
  REQUIRE(nobody);
  std::filesystem::permissions(dir.path(), std::filesystem::perms::all);
  std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                         std::filesystem::perms::group_read |
                                         std::filesystem::perms::others_read);
  const uid_t uid = nobody->pw_uid;
  const gid_t gid = nobody->pw_gid;
  Child child(with_db(db, path, {"run", "--threads", "64"}), dir.path(), [uid, gid] {
    const rlimit limit{12, 12};
    if (setrlimit(RLIMIT_NPROC, &limit) != 0 || setgid(gid) != 0 || setuid(uid) != 0) _exit(99);
  });
  const int code = child.wait();
  INFO(child.err());
  CHECK(code == 2);
  CHECK_THAT(child.err(), Catch::Contains("--threads: the system refused thread ") &&
                              Catch::Contains("nothing was written"));
  CHECK_FALSE(db.schema_exists("pgxform"));
}
