// Catch-up against a real PostgreSQL (change_capture.h, change_drain.h, catch_up_command.h):
// the changes made to a leading table after (and while) the main pass read it are all in the
// target after catch-up, compared row by row with a from-scratch transform of the current
// source; keys above the cursor wait for the main pass; --until, a failing refresh function,
// pgxform's own writes, a kill at random moments, a concurrent writer beside run and catch-up.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <pqxx/pqxx>
#include <random>
#include <thread>

#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

namespace {

// legacy.people(id bigint PRIMARY KEY, name text, score int) with ids 1..rows; its transform
// into target.people(id, display, doubled): the batch function xf.people(lo, hi) and the
// refresh function xf.people_refresh(keys bigint[]) (an upsert and a delete), which also
// appends each key it refreshed to target.refreshed, so that a test can count them.
// `sleep_ms`: per batch of the main pass.
void create_people(TestDatabase& db, int rows, int sleep_ms = 0) {
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.people (id bigint PRIMARY KEY, name text NOT NULL, score int);"
      "INSERT INTO legacy.people SELECT g, 'person ' || g, g % 100"
      " FROM generate_series(1, " +
      std::to_string(rows) +
      ") g;"
      "CREATE TABLE target.people (id bigint PRIMARY KEY, display text, doubled int);"
      "CREATE TABLE target.refreshed (id bigint);"
      "CREATE VIEW target.expected AS SELECT id, upper(name) AS display, score * 2 AS doubled"
      " FROM legacy.people;"
      "CREATE FUNCTION xf.people(lo bigint, hi bigint) RETURNS bigint LANGUAGE plpgsql AS $$"
      " DECLARE n bigint; BEGIN PERFORM pg_sleep(" +
      std::to_string(sleep_ms / 1000.0) +
      "); INSERT INTO target.people SELECT * FROM target.expected"
      " WHERE id BETWEEN lo AND hi ON CONFLICT (id) DO UPDATE SET display ="
      " EXCLUDED.display, doubled = EXCLUDED.doubled; GET DIAGNOSTICS n = ROW_COUNT;"
      " RETURN n; END $$;"
      "CREATE FUNCTION xf.people_refresh(keys bigint[]) RETURNS bigint LANGUAGE sql AS $$"
      " INSERT INTO target.refreshed SELECT unnest(keys);"
      " DELETE FROM target.people t WHERE t.id = ANY (keys)"
      " AND NOT EXISTS (SELECT 1 FROM legacy.people s WHERE s.id = t.id);"
      " INSERT INTO target.people SELECT * FROM target.expected WHERE id = ANY (keys)"
      " ON CONFLICT (id) DO UPDATE SET display = EXCLUDED.display,"
      " doubled = EXCLUDED.doubled;"
      " SELECT pg_catalog.cardinality(keys)::bigint $$;");
}

std::string people_yaml(int batch_size, const std::string& more = "") {
  return "version: 1\n"
         "lists:\n"
         "  - name: main\n"
         "    jobs:\n"
         "      - name: people\n"
         "        table: legacy.people\n"
         "        key: id\n"
         "        function: xf.people\n"
         "        batch_size: " +
         std::to_string(batch_size) +
         "\n"
         "        target_batch_ms: 0\n"
         "        changes: trigger\n"
         "        refresh_function: xf.people_refresh\n" +
         more;
}

// Rows that differ between the target and a from-scratch transform of the current source, both
// ways, duplicates counted (EXCEPT ALL).
long long people_differences(TestDatabase& db) {
  return db.count(
      "SELECT (SELECT count(*) FROM (SELECT * FROM target.expected EXCEPT ALL"
      " SELECT * FROM target.people) a) + (SELECT count(*) FROM (SELECT * FROM target.people"
      " EXCEPT ALL SELECT * FROM target.expected) b)");
}

long long pending(TestDatabase& db) {
  return db.count("SELECT count(*) FROM pgxform.change_log");
}

// Updates, deletes, inserts and a key's change, all on keys up to `top`.
void change_people(TestDatabase& db, int top) {
  db.exec("UPDATE legacy.people SET name = name || ' (renamed)' WHERE id % 7 = 0 AND id <= " +
          std::to_string(top) +
          ";"
          "UPDATE legacy.people SET score = score + 1 WHERE id % 11 = 0 AND id <= " +
          std::to_string(top) +
          ";"
          "DELETE FROM legacy.people WHERE id % 13 = 0 AND id <= " +
          std::to_string(top) +
          ";"
          "INSERT INTO legacy.people VALUES (-5, 'below the first key', 1);"
          "UPDATE legacy.people SET id = -id WHERE id = 1;");
}

}  // namespace

TEST_CASE(
    "catch-up applies the updates and deletes and inserts made below the cursor after the run",
    "[catch-up]") {
  TestDatabase db;
  create_people(db, 1000);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", people_yaml(100));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  REQUIRE(people_differences(db) == 0);
  REQUIRE(pending(db) == 0);
  change_people(db, 1000);
  CHECK(pending(db) > 0);
  CHECK(people_differences(db) > 0);
  const auto result = run_with_db(db, path, {"catch-up"});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(people_differences(db) == 0);
  CHECK(pending(db) == 0);
  // Logged as catch-up, apart from the main pass's ten batches.
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE catch_up") > 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE NOT catch_up") == 10);
  CHECK(db.scalar("SELECT batches_done FROM pgxform.job_state") == "10");
  // A second catch-up finds nothing.
  REQUIRE(run_with_db(db, path, {"catch-up"}).exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE catch_up AND batch_no > 1") ==
        db.count("SELECT count(*) FROM pgxform.batch_log WHERE catch_up") - 1);
}

TEST_CASE("catch-up refreshes the keys at or below the cursor and leaves the others to the run",
          "[catch-up]") {
  TestDatabase db;
  create_people(db, 1000);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", people_yaml(100));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  REQUIRE(run_with_db(db, path, {"reset", "people", "--to", "500"}).exit_code == 0);
  db.exec("UPDATE legacy.people SET name = 'changed' WHERE id IN (100, 800)");
  REQUIRE(pending(db) == 2);
  REQUIRE(run_with_db(db, path, {"catch-up"}).exit_code == 0);
  CHECK(db.scalar("SELECT string_agg(key, ',') FROM pgxform.change_log") == "800");
  CHECK(db.scalar("SELECT string_agg(id::text, ',') FROM target.refreshed") == "100");
  CHECK(db.scalar("SELECT display FROM target.people WHERE id = 100") == "CHANGED");
  // The run reads key 800's row as it is now; the next catch-up refreshes it once more.
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  CHECK(people_differences(db) == 0);
  REQUIRE(run_with_db(db, path, {"catch-up"}).exit_code == 0);
  CHECK(pending(db) == 0);
  CHECK(people_differences(db) == 0);
}

TEST_CASE("catch-up --until N stops once at most N changes are left", "[catch-up]") {
  TestDatabase db;
  create_people(db, 1000);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", people_yaml(10));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  db.exec("UPDATE legacy.people SET score = 0 WHERE id <= 100");
  REQUIRE(pending(db) == 100);
  REQUIRE(run_with_db(db, path, {"catch-up", "--until", "25"}).exit_code == 0);
  // Batches of 10 keys: it stops at the first count at or below 25.
  CHECK(pending(db) <= 25);
  CHECK(pending(db) > 10);
  REQUIRE(run_with_db(db, path, {"catch-up", "--until", "0"}).exit_code == 0);
  CHECK(pending(db) == 0);
  CHECK(people_differences(db) == 0);
}

TEST_CASE("a failing refresh function fails catch-up with its error and keys and loses nothing",
          "[catch-up]") {
  TestDatabase db;
  create_people(db, 100);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", people_yaml(10));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  db.exec(
      "UPDATE legacy.people SET score = score + 1 WHERE id <= 30;"
      "ALTER TABLE target.people ADD CONSTRAINT small CHECK (doubled < 50) NOT VALID");
  const auto failed = run_with_db(db, path, {"catch-up"});
  CHECK(failed.exit_code == 1);
  CHECK_THAT(failed.err, Catch::Matchers::Contains("SQLSTATE 23514"));
  CHECK(db.scalar("SELECT sqlstate FROM pgxform.job_state") == "23514");
  CHECK_THAT(db.scalar("SELECT error FROM pgxform.job_state"),
             Catch::Matchers::StartsWith("catch-up: "));
  CHECK(db.scalar("SELECT status FROM pgxform.job_state") == "done");
  CHECK(pending(db) > 0);
  db.exec("ALTER TABLE target.people DROP CONSTRAINT small");
  REQUIRE(run_with_db(db, path, {"catch-up"}).exit_code == 0);
  CHECK(pending(db) == 0);
  CHECK(people_differences(db) == 0);
}

TEST_CASE("what pgxform writes to a leading table itself is not captured", "[catch-up]") {
  TestDatabase db;
  create_people(db, 300);
  // A transform that also marks the rows it read, in the leading table.
  db.exec(
      "ALTER TABLE legacy.people ADD COLUMN migrated boolean;"
      "CREATE OR REPLACE FUNCTION xf.people(lo bigint, hi bigint) RETURNS bigint"
      " LANGUAGE sql AS $$ UPDATE legacy.people SET migrated = true WHERE id BETWEEN lo AND hi;"
      " INSERT INTO target.people SELECT * FROM target.expected WHERE id BETWEEN lo AND hi;"
      " SELECT 0::bigint $$");
  TempDir dir;
  const auto path = dir.write("jobs.yaml", people_yaml(100));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM legacy.people WHERE migrated") == 300);
  CHECK(pending(db) == 0);
  // Another session's change is.
  db.exec("UPDATE legacy.people SET migrated = false WHERE id = 7");
  CHECK(pending(db) == 1);
}

TEST_CASE("changes made while the run and catch-up --follow work are all in the target at the end",
          "[catch-up][threads]") {
  TestDatabase db;
  create_people(db, 3000, 20);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", people_yaml(100));
  // The triggers first, as a DBA would: the writer starts before the run.
  REQUIRE(run_with_db(db, path, {"capture"}).exit_code == 0);
  std::atomic<bool> writing{true};
  std::atomic<long long> statements{0};
  std::thread writer([&] {
    pqxx::connection conn("dbname=" + db.name());
    std::mt19937 rng(Catch::rngSeed());
    std::uniform_int_distribution<int> key(1, 3000), what(0, 3);
    while (writing) {
      const std::string k = std::to_string(key(rng));
      pqxx::work tx(conn);
      switch (what(rng)) {
        case 0:
          tx.exec("UPDATE legacy.people SET name = name || '+' WHERE id = " + k);
          break;
        case 1:
          tx.exec("DELETE FROM legacy.people WHERE id = " + k);
          break;
        case 2:
          tx.exec("INSERT INTO legacy.people VALUES (" + k + ", 'back', 3) ON CONFLICT DO NOTHING");
          break;
        default:
          tx.exec("UPDATE legacy.people SET score = score + 1 WHERE id BETWEEN " + k + " AND " + k +
                  " + 20");
      }
      tx.commit();
      ++statements;
    }
  });
  Child follow(with_db(db, path, {"catch-up", "--follow"}), dir.path());
  const auto run = run_with_db(db, path, {"run"});
  // Some more changes after the run, with catch-up following.
  const long long after_run = statements;
  wait_until([&] { return statements > after_run + 50; });
  writing = false;
  writer.join();
  follow.kill(SIGINT);
  INFO(follow.err());
  CHECK(follow.wait() == 0);
  REQUIRE(run.exit_code == 0);
  // The window: writes stopped, the final catch-up.
  REQUIRE(run_with_db(db, path, {"catch-up"}).exit_code == 0);
  CHECK(pending(db) == 0);
  CHECK(people_differences(db) == 0);
}

TEST_CASE("catch-up killed with SIGKILL at random moments loses no change and applies none twice",
          "[catch-up][kill]") {
  TestDatabase db;
  create_people(db, 4000);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", people_yaml(40));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  // One change per key: each key must be refreshed exactly once by the batches that commit.
  db.exec(
      "UPDATE legacy.people SET name = 'changed ' || id WHERE id % 2 = 0;"
      "CREATE OR REPLACE FUNCTION xf.slow_refresh(keys bigint[]) RETURNS bigint"
      " LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.01);"
      " RETURN xf.people_refresh(keys); END $$");
  // The same job with a refresh function slow enough to be killed in the middle of a batch.
  std::string yaml = people_yaml(40);
  yaml.replace(yaml.find("xf.people_refresh"), std::string("xf.people_refresh").size(),
               "xf.slow_refresh");
  const auto slow = dir.write("slow.yaml", yaml);
  // Every third kill at a random moment from the start (often before a batch, or while the
  // killed runner's session still holds the claim); the others a random moment after the
  // round's first batch committed, so that every round makes progress.
  std::mt19937 rng(Catch::rngSeed());
  std::uniform_int_distribution<int> moment(0, 150);
  int kills = 0;
  for (int round = 0; round < 300; ++round) {
    const long long before = pending(db);
    Child child(with_db(db, slow, {"catch-up"}), dir.path());
    int code = -1;
    bool exited = false;
    if (round % 3 != 2)
      while (!(exited = child.wait_for(5, code)) && pending(db) == before) {
      }
    if (!exited) exited = child.wait_for(moment(rng), code);
    if (exited) {
      INFO(child.err());
      REQUIRE(code == 0);
      break;
    }
    child.kill(SIGKILL);
    code = child.wait();
    INFO(child.err());
    if (code == 0) break;  // it finished just before the kill
    REQUIRE(code == 128 + SIGKILL);
    ++kills;
  }
  CHECK(kills > 0);
  INFO("after " << kills << " kills");
  CHECK(pending(db) == 0);
  CHECK(people_differences(db) == 0);
  CHECK(db.count("SELECT count(*) FROM target.refreshed") == 2000);
  CHECK(db.count("SELECT count(*) FROM (SELECT id FROM target.refreshed GROUP BY id"
                 " HAVING count(*) > 1) d") == 0);
}

TEST_CASE("status shows the changes pending and the age of the oldest of a capturing job",
          "[catch-up]") {
  TestDatabase db;
  create_people(db, 100);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", people_yaml(50));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  db.exec("UPDATE legacy.people SET score = 1 WHERE id <= 5");
  const auto status = run_with_db(db, path, {"status", "--json"});
  REQUIRE(status.exit_code == 0);
  const auto json = parse_json(status.out);
  const auto& job = json["jobs"][0];
  CHECK(job["changes_pending"] == 5);
  CHECK(job["oldest_change_s"].is_number());
  REQUIRE(run_with_db(db, path, {"catch-up"}).exit_code == 0);
  const auto after = parse_json(run_with_db(db, path, {"status", "--json"}).out);
  CHECK(after["jobs"][0]["changes_pending"] == 0);
  CHECK(after["jobs"][0]["oldest_change_s"].is_null());
}
