// slot_reader: the slot of changes: logical read into change_log, against a real PostgreSQL: a
// change read again after its read committed but before the slot moved is recorded once;
// catch-up killed at random moments beside a writer loses no change; a run reads the slot while
// its main pass goes on; the slot's retained WAL past max_slot_retained_mb is warned of.
//
// Through a real PostgreSQL restart (-m fast and -m immediate) in the middle of catch-up, and a
// slot the server invalidated (max_slot_wal_keep_size): catch-up reconnects, reads the slot
// again and finishes with the target equal to the source; a lost slot is capture missing until
// it is made again. Those restart or reconfigure the server every other test uses: tagged
// [restart], ctest runs them alone, on a throwaway server only.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <pqxx/pqxx>
#include <random>
#include <string>
#include <thread>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;
using Catch::Matchers::Contains;

namespace {

// One random change of legacy.people below its top key `top` (which stays, so that the main
// pass's cursor is past every key the writer touched): an update, a delete, a re-insert of a
// deleted key, a key's change.
void change_one(pqxx::connection& conn, std::mt19937& rng, int top) {
  const std::string k = std::to_string(std::uniform_int_distribution<int>(1, top - 1)(rng));
  const std::string other = std::to_string(std::uniform_int_distribution<int>(1, top - 1)(rng));
  pqxx::work tx(conn);
  switch (std::uniform_int_distribution<int>(0, 4)(rng)) {
    case 0:
      tx.exec("UPDATE legacy.people SET name = name || '+' WHERE id = " + k);
      break;
    case 1:
      tx.exec("DELETE FROM legacy.people WHERE id = " + k);
      break;
    case 2:
      tx.exec("INSERT INTO legacy.people VALUES (" + other + ", 'new', 3) ON CONFLICT DO NOTHING");
      break;
    case 3:
      tx.exec("UPDATE legacy.people SET id = " + other + " WHERE id = " + k +
              " AND NOT EXISTS (SELECT 1 FROM legacy.people WHERE id = " + other + ")");
      break;
    default:
      tx.exec("UPDATE legacy.people SET score = score + 1 WHERE id BETWEEN " + k + " AND " +
              std::to_string(std::min(top - 1, std::stoi(k) + 10)));
  }
  tx.commit();
}

}  // namespace

TEST_CASE("a change read again after its read committed but before the slot moved is recorded once",
          "[capture][logical][kill]") {
  // A read that committed and was killed before it moved the slot, done by hand: its rows in
  // change_log and consumed_lsn moved past them, the slot not. The next read gets the same
  // transactions from the slot and must skip them by their position.
  SlotPeople s(100, 50);
  REQUIRE(s.pgxform({"run"}).exit_code == 0);
  s.db.exec("UPDATE legacy.people SET score = -1 WHERE id <= 10");
  const std::string slot = s.db.scalar("SELECT slot FROM pgxform.capture_slot");
  const std::string confirmed = s.db.scalar(
      "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '" + slot + "'");
  s.db.exec(
      "BEGIN;"
      "INSERT INTO pgxform.change_log (job, key) SELECT 'people', g::text"
      " FROM generate_series(1, 10) g;"
      "UPDATE pgxform.capture_slot SET consumed_lsn = pg_current_wal_flush_lsn();"
      "COMMIT");
  // The slot still hands the update out.
  CHECK(s.db.count("SELECT count(*) FROM pg_logical_slot_peek_binary_changes('" + slot +
                   "', NULL, NULL, 'proto_version', '1', 'publication_names', '" + slot +
                   "') WHERE substr(data, 1, 1) = '\\x55'::bytea") == 10);
  REQUIRE(s.pgxform({"catch-up", "--until", "1000"}).exit_code == 0);
  CHECK(s.logged() == 10);
  CHECK(s.db.scalar("SELECT confirmed_flush_lsn > '" + confirmed +
                    "'::pg_lsn FROM pg_replication_slots WHERE slot_name = '" + slot + "'") == "t");
  REQUIRE(s.pgxform({"catch-up"}).exit_code == 0);
  CHECK(s.db.count("SELECT count(*) FROM target.refreshed") == 10);
  CHECK(s.differences() == 0);
}

TEST_CASE(
    "catch-up of changes: logical killed with SIGKILL at random moments beside a writer loses no "
    "change and applies none twice",
    "[capture][logical][kill]") {
  SlotPeople s(2000, 40);
  REQUIRE(s.pgxform({"run"}).exit_code == 0);
  s.count_changes();
  s.db.exec(
      "CREATE OR REPLACE FUNCTION xf.slow_refresh(keys bigint[]) RETURNS bigint"
      " LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.01);"
      " RETURN xf.people_refresh(keys); END $$");
  const auto slow =
      s.dir.write("slow.yaml",
                  "version: 1\nlists:\n  - name: main\n    jobs:\n"
                  "      - {name: people, table: legacy.people, key: id, function: xf.people,"
                  " batch_size: 40, target_batch_ms: 0, changes: logical,"
                  " refresh_function: xf.slow_refresh}\n");
  std::atomic<bool> writing{true};
  std::atomic<long long> statements{0};
  std::thread writer([&] {
    pqxx::connection conn(s.db.dsn());
    std::mt19937 rng(Catch::rngSeed());
    while (writing) {
      change_one(conn, rng, 2000);
      ++statements;
    }
  });
  std::mt19937 rng(Catch::rngSeed() + 1);
  std::uniform_int_distribution<int> moment(20, 400);
  int kills = 0;
  for (int round = 0; round < 40; ++round) {
    Child child(with_db(s.db, slow, {"catch-up"}), s.dir.path());
    int code = -1;
    if (child.wait_for(moment(rng), code)) {
      INFO(child.err());
      REQUIRE(code == 0);
      continue;
    }
    child.kill(SIGKILL);
    code = child.wait();
    if (code == 0) continue;
    INFO(child.err());
    REQUIRE(code == 128 + SIGKILL);
    ++kills;
  }
  writing = false;
  writer.join();
  CHECK(kills > 0);
  INFO("after " << kills << " kills and " << statements << " writes");
  const auto last = run_with_db(s.db, slow, {"catch-up"});
  INFO(last.err);
  REQUIRE(last.exit_code == 0);
  CHECK(s.logged() == 0);
  CHECK(s.differences() == 0);
  CHECK(s.refreshed_too_often() == 0);
}

TEST_CASE("run reads the slot while its main pass goes on, so that the WAL does not pile up",
          "[capture][logical]") {
  // 60 batches of at least 200 ms: the run lasts over 12 s, and reads the slot every 10 s.
  SlotPeople s(3000, 50, 200);
  Child run(s.command({"run"}), s.dir.path());
  wait_until([&] { return s.db.count("SELECT count(*) FROM pgxform.capture_slot") == 1; });
  s.db.exec("UPDATE legacy.people SET score = 0 WHERE id % 100 = 0");
  for (int i = 0; i < 300 && s.logged() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int code = -1;
  CHECK_FALSE(run.wait_for(0, code));  // still at work
  CHECK(s.logged() > 0);
  INFO(run.err());
  CHECK(run.wait() == 0);
  REQUIRE(s.pgxform({"catch-up"}).exit_code == 0);
  CHECK(s.differences() == 0);
}

TEST_CASE("run, catch-up and validate warn when the slot retains more than max_slot_retained_mb",
          "[capture][logical]") {
  SlotPeople s(100, 50, 0, "max_slot_retained_mb: 1\n");
  REQUIRE(s.pgxform({"run"}).exit_code == 0);
  // A transaction left open keeps the slot's restart position before it: the WAL written after
  // it stays.
  pqxx::connection open(s.db.dsn());
  pqxx::work held(open);
  held.exec("CREATE TABLE public.held (x int); INSERT INTO public.held VALUES (1)");
  s.db.exec(
      "CREATE TABLE public.filler (t text);"
      "INSERT INTO public.filler SELECT repeat('x', 1000) FROM generate_series(1, 4000)");
  const auto caught_up = s.pgxform({"catch-up"});
  INFO(caught_up.err);
  CHECK(caught_up.exit_code == 0);
  CHECK_THAT(caught_up.err, Contains("slot pgxform_") &&
                                Contains("more than max_slot_retained_mb (1)") &&
                                Contains("max_slot_wal_keep_size"));
  CHECK_THAT(s.pgxform({"validate"}).out, Contains("more than max_slot_retained_mb (1)"));
  CHECK_THAT(s.pgxform({"run"}).err, Contains("more than max_slot_retained_mb (1)"));
  held.abort();
}

namespace {

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
    "[capture][logical][restart]") {
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
  TestServer(db).restart(mode);
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
    "[capture][logical][restart]") {
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
