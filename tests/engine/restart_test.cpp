// PostgreSQL restarted for real in the middle of a run, with -m fast and -m immediate: the run
// pauses, reconnects, finishes, exits 0, and every row lands exactly once. These tests restart
// the server that every other test uses, so ctest runs them alone (RUN_SERIAL).
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

// Restarts the server holding `db` with pg_ctl, as the owner of its data directory.
void restart_server(TestDatabase& db, const std::string& mode) {
  const std::string data = db.scalar("SHOW data_directory");
  const std::string major = std::to_string(std::stoi(db.scalar("SHOW server_version_num")) / 10000);
  struct stat info {};
  REQUIRE(stat(data.c_str(), &info) == 0);
  const passwd* owner = getpwuid(info.st_uid);
  REQUIRE(owner != nullptr);
  std::string command = "/usr/lib/postgresql/" + major + "/bin/pg_ctl restart -s -w -t 120 -D '" +
                        data + "' -m " + mode;
  if (geteuid() != info.st_uid)
    command = "runuser -u " + std::string(owner->pw_name) + " -- " + command;
  INFO(command);
  REQUIRE(std::system((command + " >/dev/null").c_str()) == 0);
}

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
  restart_server(db, mode);
  const int code = child.wait();
  INFO(child.err());
  CHECK(code == 0);
  CHECK_THAT(child.err(), Catch::Contains("retrying") || Catch::Contains("trying again"));
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.scalar("SELECT status || ' ' || rows_done FROM pgxform.job_state") == "done 3000");
}

}  // namespace

TEST_CASE("a PostgreSQL restart with -m fast mid-run costs a pause, not the run") {
  run_through_restart("fast");
}

TEST_CASE(
    "a PostgreSQL restart with -m immediate (crash recovery) mid-run costs a pause, not the "
    "run") {
  run_through_restart("immediate");
}

TEST_CASE(
    "with synchronous_commit: off, a PostgreSQL restart with -m immediate mid-run loses no row "
    "and applies none twice") {
  // A crash may lose the last batches' COMMITs that were not flushed yet: their writes and
  // their cursor's move together, so the run does them again, once.
  run_through_restart("immediate", "        synchronous_commit: off\n");
}

TEST_CASE("a PostgreSQL restart mid catch-up costs a pause: every change refreshed once") {
  // Catch-up's tasks reconnect and claim again as a run's do (task_runner.h): the log, read
  // again, says what committed.
  TestDatabase db;
  create_items(db, 3000, 0);
  db.exec(
      "CREATE TABLE target.refreshed (id bigint);"
      "CREATE FUNCTION xf.items_refresh(keys bigint[]) RETURNS void LANGUAGE plpgsql AS $$"
      " BEGIN PERFORM pg_sleep(0.04); INSERT INTO target.refreshed SELECT unnest(keys);"
      " DELETE FROM target.items t WHERE t.id = ANY (keys);"
      " INSERT INTO target.items SELECT id, v * 10 FROM legacy.items WHERE id = ANY (keys);"
      " END $$");
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50, 1,
                                                           "        changes: trigger\n"
                                                           "        refresh_function: "
                                                           "xf.items_refresh\n"));
  REQUIRE(run_cli({"run", "-f", path, "--dsn", db.dsn()}).exit_code == 0);
  db.exec("UPDATE legacy.items SET v = v + 1");
  Child child({"catch-up", "-f", path, "--dsn", db.dsn()}, dir.path());
  for (int i = 0; i < 3000; ++i) {
    if (db.count("SELECT count(*) FROM pgxform.batch_log WHERE catch_up") >= 5) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  restart_server(db, "immediate");
  const int code = child.wait();
  INFO(child.err());
  CHECK(code == 0);
  CHECK_THAT(child.err(), Catch::Contains("reconnecting"));
  CHECK(db.count("SELECT count(*) FROM pgxform.change_log") == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.count("SELECT count(*) FROM target.refreshed") == 3000);
}
