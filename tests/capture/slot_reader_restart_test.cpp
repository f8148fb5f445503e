// The slot of changes: logical through a real PostgreSQL restart (-m fast and -m immediate) in
// the middle of catch-up, and a slot the server invalidated (max_slot_wal_keep_size): catch-up
// reconnects, reads the slot again and finishes with the target equal to the source; a lost slot
// is capture missing until it is made again. These tests restart or reconfigure the server
// every other test uses: ctest runs them alone (label restart), on a throwaway server only.
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;
using Catch::Matchers::Contains;

namespace {

void restart_postgres(TestDatabase& db, const std::string& mode) {
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

// legacy.people, ids 1..rows, captured through the slot; its refresh sleeps 20 ms a batch.
void create_people(TestDatabase& db, int rows) {
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.people (id bigint PRIMARY KEY, name text NOT NULL, score int);"
      "INSERT INTO legacy.people SELECT g, 'person ' || g, g % 100 FROM generate_series(1, " +
      std::to_string(rows) +
      ") g;"
      "CREATE TABLE target.people (id bigint, display text, doubled int);"
      "CREATE VIEW target.expected AS SELECT id, upper(name) AS display, score * 2 AS doubled"
      " FROM legacy.people;"
      "CREATE FUNCTION xf.people(lo bigint, hi bigint) RETURNS void LANGUAGE sql AS $$"
      " INSERT INTO target.people SELECT * FROM target.expected WHERE id BETWEEN lo AND hi $$;"
      "CREATE FUNCTION xf.people_refresh(keys bigint[]) RETURNS void LANGUAGE sql AS $$"
      " SELECT pg_sleep(0.02); DELETE FROM target.people t WHERE t.id = ANY (keys);"
      " INSERT INTO target.people SELECT * FROM target.expected WHERE id = ANY (keys) $$");
}

const char* const k_yaml = R"(version: 1
lists:
  - name: main
    jobs:
      - {name: people, table: legacy.people, key: id, function: xf.people, batch_size: 100,
         target_batch_ms: 0, changes: logical, refresh_function: xf.people_refresh}
)";

long long differences(TestDatabase& db) {
  return db.count(
      "SELECT (SELECT count(*) FROM (SELECT * FROM target.expected EXCEPT ALL"
      " SELECT * FROM target.people) a) + (SELECT count(*) FROM (SELECT * FROM target.people"
      " EXCEPT ALL SELECT * FROM target.expected) b)");
}

}  // namespace

TEST_CASE(
    "a PostgreSQL restart during catch-up of changes: logical costs a pause: the target equals the "
    "source",
    "[capture][logical]") {
  const std::string mode = GENERATE(as<std::string>{}, "fast", "immediate");
  INFO("-m " << mode);
  TestDatabase db;
  create_people(db, 20000);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", k_yaml);
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  db.exec(
      "UPDATE legacy.people SET name = name || '!' WHERE id % 2 = 0;"
      "DELETE FROM legacy.people WHERE id % 9 = 0;"
      "UPDATE legacy.people SET id = id + 100000 WHERE id % 101 = 0");
  Child child(with_db(db, path, {"catch-up"}), dir.path());
  wait_until(
      [&] { return db.count("SELECT count(*) FROM pgxform.batch_log WHERE catch_up") >= 5; });
  restart_postgres(db, mode);
  // Changes made after the restart, while catch-up still works.
  wait_until([&] { return db.count("SELECT 1") == 1; });
  db.exec("UPDATE legacy.people SET score = -1 WHERE id % 7 = 0");
  const int code = child.wait();
  INFO(child.err());
  CHECK(code == 0);
  CHECK_THAT(child.err(), Contains("retrying") || Contains("trying again"));
  const auto last = run_with_db(db, path, {"catch-up"});
  INFO(last.err);
  REQUIRE(last.exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.change_log") == 0);
  CHECK(differences(db) == 0);
}

TEST_CASE(
    "a slot the server invalidated (max_slot_wal_keep_size) is capture missing, with the commands "
    "that re-cover it",
    "[capture][logical]") {
  TestDatabase db;
  create_people(db, 1000);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", k_yaml);
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  db.exec("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
  db.exec("SELECT pg_reload_conf()");
  struct Reset {
    TestDatabase& db;
    ~Reset() {
      try {
        db.exec("ALTER SYSTEM RESET max_slot_wal_keep_size");
        db.exec("SELECT pg_reload_conf()");
      } catch (const std::exception&) {
      }
    }
  } reset{db};
  db.exec("UPDATE legacy.people SET score = 0 WHERE id <= 10");
  // More WAL than the slot may keep, and checkpoints that remove it.
  db.exec("CREATE TABLE public.filler (t text)");
  for (int i = 0; i < 8; ++i) {
    db.exec(
        "INSERT INTO public.filler SELECT repeat('x', 1000) FROM generate_series(1, 10000);"
        "SELECT pg_switch_wal(); CHECKPOINT");
    if (db.scalar("SELECT wal_status FROM pg_replication_slots WHERE database ="
                  " current_database()") == "lost")
      break;
  }
  REQUIRE(db.scalar("SELECT wal_status FROM pg_replication_slots WHERE database ="
                    " current_database()") == "lost");
  CHECK_THAT(
      run_with_db(db, path, {"status"}).out,
      Contains("capture missing: the replication slot pgxform_") && Contains("wal_status lost"));
  const auto caught_up = run_with_db(db, path, {"catch-up"});
  CHECK(caught_up.exit_code == 1);
  CHECK_THAT(caught_up.err, Contains("capture missing") && Contains("pgxform reset people"));
  // Made again: a new slot, and the gap said until the job starts over.
  REQUIRE(run_with_db(db, path, {"capture", "--drop"}).exit_code == 0);
  REQUIRE(run_with_db(db, path, {"capture"}).exit_code == 0);
  CHECK(db.scalar("SELECT wal_status FROM pg_replication_slots WHERE database ="
                  " current_database()") != "lost");
  REQUIRE(run_with_db(db, path, {"reset", "people"}).exit_code == 0);
  db.exec("TRUNCATE target.people");
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  REQUIRE(run_with_db(db, path, {"catch-up"}).exit_code == 0);
  CHECK(differences(db) == 0);
}
