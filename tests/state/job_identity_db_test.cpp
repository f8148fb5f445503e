// Jobs pinned to what they transform (job_identity.h), against a real PostgreSQL: a job whose
// name is known but whose table, key or function is not the one recorded is refused by every
// command that writes for it, before it writes; reset lets the next run record it anew; a row
// of an older state version is recorded, not refused.
#include <catch2/catch.hpp>

#include "state/job_identity.h"
#include "state/state_schema.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

// legacy.other(id bigint PRIMARY KEY, v int) with `rows` rows, keys 1..rows, beside
// create_items' legacy.items; target.other; xf.other(bigint, bigint) copies a range, and
// xf.other_refresh(bigint[]) refreshes keys.
void create_other(TestDatabase& db, int rows) {
  db.exec(
      "CREATE TABLE legacy.other (id bigint PRIMARY KEY, v int NOT NULL);"
      "INSERT INTO legacy.other SELECT g, g FROM generate_series(1, " +
      std::to_string(rows) +
      ") g;"
      "CREATE TABLE target.other (id bigint NOT NULL, v int NOT NULL);"
      "CREATE FUNCTION xf.other(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS 'WITH i AS (INSERT INTO target.other SELECT id, v FROM legacy.other"
      " WHERE id BETWEEN first_key AND last_key RETURNING 1) SELECT count(*) FROM i';"
      "CREATE FUNCTION xf.other_refresh(keys bigint[]) RETURNS void LANGUAGE sql AS"
      " 'DELETE FROM target.other WHERE id = ANY (keys)';"
      "CREATE FUNCTION xf.items_copy(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS 'SELECT 0::bigint'");
}

// A jobs file whose job `load` (on line 5) reads `table` by `key` through `function`.
std::string load_yaml(const std::string& table, const std::string& function,
                      const std::string& key = "id", const std::string& more = "") {
  return "version: 1\n"
         "lists:\n"
         "  - name: main\n"
         "    jobs:\n"
         "      - name: load\n"
         "        table: " +
         table + "\n        key: " + key + "\n        function: " + function +
         "\n        batch_size: 100\n        target_batch_ms: 0\n" + more;
}

// Team B's job `load`: on legacy.other, with what catch-up, capture and verify --repair need.
std::string team_b_yaml() {
  return load_yaml("legacy.other", "xf.other", "id",
                   "        changes: trigger\n"
                   "        refresh_function: xf.other_refresh\n"
                   "        idempotent: true\n"
                   "        verify: SELECT s.id FROM legacy.other s WHERE s.id BETWEEN $1 AND $2"
                   " AND NOT EXISTS (SELECT 1 FROM target.other t WHERE t.id = s.id)\n");
}

std::string recorded_table(TestDatabase& db) {
  return db.scalar(
      "SELECT coalesce(table_schema || '.' || table_name, 'none') FROM pgxform.job_state"
      " WHERE job = 'load'");
}

}  // namespace

TEST_CASE(
    "a job named like another jobs file's job on another table is refused by every command that "
    "writes, not told it is done") {
  TestDatabase db;
  create_items(db, 300);
  create_other(db, 200);
  TempDir dir;
  const auto team_a = dir.write("team_a.yaml", load_yaml("legacy.items", "xf.items"));
  const auto team_b = dir.write("team_b.yaml", team_b_yaml());
  REQUIRE(run_with_db(db, team_a, {"run"}).exit_code == 0);
  CHECK(recorded_table(db) == "legacy.items");
  const long long batches = db.count("SELECT count(*) FROM pgxform.batch_log");

  const auto refused = run_with_db(db, team_b, {"run"});
  INFO(refused.err);
  CHECK(refused.exit_code == 2);
  CHECK_THAT(
      refused.err,
      Catch::Contains(team_b + ":5: job 'load' was recorded on legacy.items by id (bigint) through "
                               "xf.items and now names legacy.other by id (bigint) through "
                               "xf.other: its recorded state (done) is another job's") &&
          Catch::Contains("`pgxform reset load`"));
  CHECK(db.count("SELECT count(*) FROM target.other") == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == batches);
  CHECK(recorded_table(db) == "legacy.items");

  for (const std::vector<std::string>& command : {std::vector<std::string>{"catch-up"},
                                                  {"capture"},
                                                  {"retry-failed"},
                                                  {"verify", "--repair"},
                                                  {"reset", "load", "--to", "10"}}) {
    const auto r = run_with_db(db, team_b, command);
    INFO(command.front() << ": " << r.out << r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("job 'load' was recorded on legacy.items"));
  }
  // Read-only commands say it too.
  const auto profile = run_with_db(db, team_b, {"profile"});
  CHECK(profile.exit_code == 0);
  CHECK_THAT(profile.err, Catch::Contains("job 'load' was recorded on legacy.items"));
  // Nothing of team B's was written: no capture triggers on its table, no log, no cursor moved.
  CHECK(db.count("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'legacy.other'::regclass") == 0);
  CHECK(db.count("SELECT count(*) FROM target.other") == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == batches);
  CHECK(db.scalar("SELECT status FROM pgxform.job_state WHERE job = 'load'") == "done");
}

TEST_CASE(
    "a job whose table, key or function changed in its jobs file is refused, naming both, its "
    "line and pgxform reset") {
  TestDatabase db;
  create_items(db, 250);
  create_other(db, 10);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", load_yaml("legacy.items", "xf.items"));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  struct Change {
    std::string yaml, now;
  };
  for (const Change& change :
       {Change{load_yaml("legacy.other", "xf.other"),
               "now names legacy.other by id (bigint) through xf.other"},
        Change{load_yaml("legacy.items", "xf.items", "v"),
               "now names legacy.items by v (integer) through xf.items"},
        Change{load_yaml("legacy.items", "xf.items_copy"),
               "now names legacy.items by id (bigint) through xf.items_copy"}}) {
    dir.write("jobs.yaml", change.yaml);
    db.exec("INSERT INTO legacy.items SELECT max(id) + 3, 1 FROM legacy.items");
    const auto r = run_with_db(db, path, {"run"});
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains(path + ":5: job 'load' was recorded on legacy.items by id "
                                             "(bigint) through xf.items and ") &&
                          Catch::Contains(change.now) &&
                          Catch::Contains("Start it over with `pgxform reset load`"));
    // The appended row was not processed under the other identity.
    CHECK(missing_items(db) > 0);
  }
}

TEST_CASE("reset clears what a job was recorded on, and the next run records the new table") {
  TestDatabase db;
  create_items(db, 300);
  create_other(db, 200);
  TempDir dir;
  const auto team_a = dir.write("team_a.yaml", load_yaml("legacy.items", "xf.items"));
  const auto team_b = dir.write("team_b.yaml", team_b_yaml());
  REQUIRE(run_with_db(db, team_a, {"run"}).exit_code == 0);
  REQUIRE(run_with_db(db, team_b, {"run"}).exit_code == 2);

  const auto reset = run_with_db(db, team_b, {"reset", "load"});
  INFO(reset.err);
  REQUIRE(reset.exit_code == 0);
  CHECK(recorded_table(db) == "none");
  const auto again = run_with_db(db, team_b, {"run"});
  INFO(again.err);
  REQUIRE(again.exit_code == 0);
  CHECK(recorded_table(db) == "legacy.other");
  CHECK(db.scalar("SELECT key_column || ' ' || key_type || ' ' || function_schema || '.' ||"
                  " function_name FROM pgxform.job_state WHERE job = 'load'") ==
        "id bigint xf.other");
  CHECK(db.count("SELECT count(*) FROM target.other") == 200);
  // Now team A's file is the other one.
  CHECK(run_with_db(db, team_a, {"run"}).exit_code == 2);
}

TEST_CASE("a job recorded by an older state version is recorded by its next run, not refused") {
  TestDatabase db;
  create_items(db, 300);
  create_other(db, 10);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", load_yaml("legacy.items", "xf.items"));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  // Back to the version before 10, as an older pgxform left it: no identity, no runner_pool
  // (and none of version 11's and 12's columns).
  state_back_to_version_9(db);
  db.exec("INSERT INTO legacy.items SELECT g * 3, g FROM generate_series(301, 350) g");
  const auto r = run_with_db(db, path, {"run"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(db.scalar("SELECT max(version) FROM pgxform.schema_version") ==
        std::to_string(pgxform::newest_state_version()));
  CHECK(recorded_table(db) == "legacy.items");
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  // Recorded now: another table under the same name is refused from here on.
  dir.write("jobs.yaml", load_yaml("legacy.other", "xf.other"));
  CHECK(run_with_db(db, path, {"run"}).exit_code == 2);
}

TEST_CASE("a key whose type changed is recorded anew with a warning, not refused") {
  TestDatabase db;
  create_items(db, 200);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", load_yaml("legacy.items", "xf.items"));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  db.exec(
      "ALTER TABLE legacy.items ALTER COLUMN id TYPE numeric;"
      "CREATE FUNCTION xf.items(first_key numeric, last_key numeric) RETURNS bigint"
      " LANGUAGE sql AS 'WITH i AS (INSERT INTO target.items SELECT id, v * 10 FROM legacy.items"
      " WHERE id BETWEEN first_key AND last_key RETURNING 1) SELECT count(*) FROM i';"
      "INSERT INTO legacy.items VALUES (1000, 1)");
  const auto r = run_with_db(db, path, {"run"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("job 'load': its key id is of type numeric now, recorded as "
                                    "bigint: its cursor goes on in the new type"));
  CHECK(db.scalar("SELECT key_type FROM pgxform.job_state WHERE job = 'load'") == "numeric");
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}
