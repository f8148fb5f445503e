// The worker pool in a real process: SIGINT lets the batches in flight commit and hands out no
// more work, a second SIGINT cancels them; a system that refuses the threads asked for stops
// the run before it writes.
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
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10));
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
  CHECK_THAT(child.err(), Catch::Contains("--threads 64: the system refused thread") &&
                              Catch::Contains("nothing was written"));
  CHECK_FALSE(db.schema_exists("pgxform"));
}
