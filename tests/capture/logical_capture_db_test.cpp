// changes: logical (logical_capture.h, slot_reader.h) against a real PostgreSQL with
// wal_level = logical: the publication and slot made before the first batch, every change after
// them caught up, the slot shown by status, pgxform's own writes not captured, a table changed
// through another table (changes.also) kept exact; the bad setups refused before anything is
// written, each with its fix; a slot dropped by hand or a TRUNCATE said, never passed over.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <pqxx/pqxx>
#include <random>
#include <string>
#include <thread>

#include "capture/slot_reader.h"
#include "output/run_metrics.h"
#include "state/state_locks.h"
#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;
using Catch::Matchers::Contains;

namespace {

// Updates, deletes, inserts and a key's change.
void change_slot_people(TestDatabase& db) {
  db.exec(
      "UPDATE legacy.people SET name = name || ' (renamed)' WHERE id % 7 = 0;"
      "UPDATE legacy.people SET score = score + 1 WHERE id % 11 = 0;"
      "DELETE FROM legacy.people WHERE id % 13 = 0;"
      "INSERT INTO legacy.people VALUES (-5, 'below the first key', 1);"
      "UPDATE legacy.people SET id = -id WHERE id = 1");
}

}  // namespace

TEST_CASE(
    "changes: logical makes its publication and slot before the first batch, and catch-up applies "
    "every change after it",
    "[capture][logical]") {
  SlotPeople p(1000);
  const auto run = p.pgxform({"run"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK_THAT(run.err, Contains("capturing the changes of \"legacy\".\"people\" for catch-up"
                               " (logical)"));
  CHECK(p.slots() == 1);
  CHECK(p.db.scalar("SELECT string_agg(tablename, ',') FROM pg_publication_tables") == "people");
  CHECK(p.db.count("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgxform%'") == 0);
  REQUIRE(p.differences() == 0);
  change_slot_people(p.db);
  // The changes are in the slot, not in the log, until someone reads it.
  CHECK(p.db.count("SELECT count(*) FROM pgxform.change_log") == 0);
  const auto caught_up = p.pgxform({"catch-up"});
  INFO(caught_up.err);
  REQUIRE(caught_up.exit_code == 0);
  CHECK(p.differences() == 0);
  CHECK(p.db.count("SELECT count(*) FROM pgxform.change_log") == 0);
  // Each changed key once: the read of the slot records a key once per read.
  CHECK(p.db.count("SELECT count(*) FROM (SELECT id FROM target.refreshed GROUP BY id"
                   " HAVING count(*) > 1) d") == 0);
  // A second catch-up finds nothing: the slot moved past what the first read.
  REQUIRE(p.pgxform({"catch-up"}).exit_code == 0);
  const long long refreshed = p.db.count("SELECT count(*) FROM target.refreshed");
  REQUIRE(p.pgxform({"catch-up"}).exit_code == 0);
  CHECK(p.db.count("SELECT count(*) FROM target.refreshed") == refreshed);
}

TEST_CASE("status shows the slot's retained WAL and the age of its last read",
          "[capture][logical]") {
  SlotPeople p(300);
  REQUIRE(p.pgxform({"run"}).exit_code == 0);
  p.db.exec("UPDATE legacy.people SET score = 1 WHERE id <= 5");
  REQUIRE(p.pgxform({"catch-up"}).exit_code == 0);
  const auto status = p.pgxform({"status"});
  CHECK_THAT(status.out,
             Contains("    slot pgxform_") && Contains(" MB of WAL, read ") && Contains(" s ago"));
  const auto json = parse_json(p.pgxform({"status", "--json"}).out);
  const auto& job = job_in(json, "people");
  CHECK(job["capture"] == "logical");
  CHECK(job["capture_missing"].is_null());
  REQUIRE(job["slot"].is_object());
  CHECK_THAT(job["slot"]["name"].get<std::string>(), Catch::StartsWith("pgxform_"));
  CHECK(job["slot"]["retained_wal_mb"].is_number());
  CHECK(job["slot"]["read_age_s"].is_number());
  CHECK(job["slot"]["age_s"].is_number());
  CHECK(job["slot"]["wal_status"] == "reserved");
}

TEST_CASE("what pgxform writes to a table captured through the slot is not captured",
          "[capture][logical]") {
  SlotPeople p(300);
  // A transform that also marks the rows it read, in the leading table, and a refresh that
  // does too.
  p.db.exec(
      "ALTER TABLE legacy.people ADD COLUMN migrated boolean;"
      "CREATE OR REPLACE VIEW target.expected AS SELECT id, upper(name) AS display,"
      " score * 2 AS doubled FROM legacy.people;"
      "CREATE OR REPLACE FUNCTION xf.people(lo bigint, hi bigint) RETURNS bigint"
      " LANGUAGE sql AS $$ UPDATE legacy.people SET migrated = true WHERE id BETWEEN lo AND hi;"
      " INSERT INTO target.people SELECT * FROM target.expected WHERE id BETWEEN lo AND hi;"
      " SELECT 0::bigint $$");
  REQUIRE(p.pgxform({"run"}).exit_code == 0);
  CHECK(p.db.count("SELECT count(*) FROM legacy.people WHERE migrated") == 300);
  REQUIRE(p.pgxform({"catch-up"}).exit_code == 0);
  CHECK(p.db.count("SELECT count(*) FROM target.refreshed") == 0);
  // Another session's change is.
  p.db.exec("UPDATE legacy.people SET migrated = false WHERE id = 7");
  REQUIRE(p.pgxform({"catch-up"}).exit_code == 0);
  CHECK(p.db.scalar("SELECT string_agg(id::text, ',') FROM target.refreshed") == "7");
}

TEST_CASE(
    "a table whose replica identity does not carry the key is refused with the ALTER TABLE that "
    "fixes it, before anything is written",
    "[capture][logical][bad-input]") {
  struct Case {
    std::string setup, fix;
  };
  const std::vector<Case> cases = {
      {"ALTER TABLE legacy.people REPLICA IDENTITY NOTHING",
       "ALTER TABLE \"legacy\".\"people\" REPLICA IDENTITY USING INDEX people_pkey"},
      {"ALTER TABLE legacy.people DROP CONSTRAINT people_pkey;"
       " CREATE UNIQUE INDEX people_id ON legacy.people (id); ALTER TABLE legacy.people"
       " ALTER COLUMN id SET NOT NULL",
       "ALTER TABLE \"legacy\".\"people\" REPLICA IDENTITY USING INDEX people_id"},
      {"ALTER TABLE legacy.people DROP CONSTRAINT people_pkey;"
       " CREATE INDEX people_id ON legacy.people (id)",
       "ALTER TABLE \"legacy\".\"people\" REPLICA IDENTITY FULL"}};
  for (const Case& c : cases) {
    INFO(c.setup);
    SlotPeople p(100);
    p.db.exec(c.setup);
    for (const std::string command : {"run", "capture", "catch-up", "validate"}) {
      INFO(command);
      const auto r = p.pgxform({command});
      CHECK(r.exit_code == 2);
      CHECK_THAT(r.err + r.out, Contains("job 'people': changes: logical reads the key of a"
                                         " deleted or changed row") &&
                                    Contains(c.fix));
    }
    CHECK_FALSE(p.db.schema_exists("pgxform"));
    CHECK(p.slots() == 0);
    CHECK(p.publications() == 0);
    // The fix the message names makes it go.
    p.db.exec(c.fix.substr(0, c.fix.find(" (")));
    const auto run = p.pgxform({"run"});
    INFO(run.err);
    CHECK(run.exit_code == 0);
  }
}

TEST_CASE(
    "a role without REPLICATION, or not owning the table, is refused for changes: logical with "
    "the fix, before anything is written",
    "[capture][logical][bad-input][security]") {
  SlotPeople p(100);
  TestRole migrator(p.db, "migrator");
  p.db.exec("GRANT USAGE ON SCHEMA legacy, target, xf TO " + migrator.name() +
            "; GRANT SELECT ON legacy.people TO " + migrator.name() +
            "; GRANT ALL ON ALL TABLES IN SCHEMA target TO " + migrator.name() +
            "; GRANT CREATE ON DATABASE " + p.db.name() + " TO " + migrator.name());
  const auto refused = run_cli({"run", "-f", p.path, "--dsn", migrator.dsn()});
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.err,
             Contains("ALTER ROLE " + migrator.name() + " REPLICATION") &&
                 Contains("ALTER TABLE \"legacy\".\"people\" OWNER TO " + migrator.name()));
  CHECK_FALSE(p.db.schema_exists("pgxform"));
  CHECK(p.slots() == 0);
  p.db.exec("ALTER ROLE " + migrator.name() + " REPLICATION; ALTER TABLE legacy.people OWNER TO " +
            migrator.name());
  const auto run = run_cli({"run", "-f", p.path, "--dsn", migrator.dsn()});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  p.db.exec("UPDATE legacy.people SET score = -1 WHERE id <= 10");
  const auto caught_up = run_cli({"catch-up", "-f", p.path, "--dsn", migrator.dsn()});
  INFO(caught_up.err);
  CHECK(caught_up.exit_code == 0);
  CHECK(p.differences() == 0);
  REQUIRE(run_cli({"capture", "--drop", "-f", p.path, "--dsn", migrator.dsn()}).exit_code == 0);
  CHECK(p.slots() == 0);
}

TEST_CASE(
    "a slot dropped by hand is capture missing in status and catch-up, and a TRUNCATE the slot saw "
    "is said until the job is reset",
    "[capture][logical][regression]") {
  SlotPeople p(300);
  REQUIRE(p.pgxform({"run"}).exit_code == 0);
  p.db.exec(
      "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
      " WHERE database = current_database()");
  p.db.exec("UPDATE legacy.people SET score = 0 WHERE id <= 3");
  CHECK_THAT(
      p.pgxform({"status"}).out,
      Contains("capture missing: the replication slot pgxform_") && Contains("does not exist"));
  const auto missing = p.pgxform({"catch-up"});
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.err, Contains("people: capture missing: the replication slot"));
  // Installed again, with a new slot; what changed meanwhile is said lost.
  REQUIRE(p.pgxform({"capture"}).exit_code == 0);
  CHECK(p.slots() == 1);
  CHECK(p.pgxform({"catch-up"}).exit_code == 1);
  REQUIRE(p.pgxform({"reset", "people"}).exit_code == 0);
  p.db.exec("TRUNCATE target.people");
  REQUIRE(p.pgxform({"run"}).exit_code == 0);
  REQUIRE(p.pgxform({"catch-up"}).exit_code == 0);
  CHECK(p.differences() == 0);
  // A TRUNCATE removes rows without their keys: the slot sees it and says so.
  p.db.exec("TRUNCATE legacy.people");
  const auto truncated = p.pgxform({"catch-up"});
  CHECK(truncated.exit_code == 1);
  CHECK_THAT(truncated.err, Contains("TRUNCATE of \"legacy\".\"people\""));
  CHECK_THAT(p.pgxform({"status"}).out, Contains("its change log lacks changes: TRUNCATE of"));
  CHECK_THAT(job_in(parse_json(p.pgxform({"status", "--json"}).out), "people")["capture_lost"]
                 .get<std::string>(),
             Contains("TRUNCATE"));
}

TEST_CASE(
    "a catch-up applies the changes that another session's read of the slot put in the log while "
    "it waited for its own last read",
    "[capture][logical][regression]") {
  // One slot serves every job of the schema: the read that brings a job's changes may be another
  // task's. Here the test's session plays that task: it holds the slot while catch-up drains an
  // empty log, reads the slot while catch-up waits for its last read, and lets it go.
  SlotPeople p(300);
  REQUIRE(p.pgxform({"run"}).exit_code == 0);
  const pgxform::StateSchema schema("pgxform");
  pqxx::connection reader(p.db.dsn());
  {
    pqxx::nontransaction tx(reader);
    pgxform::session_lock(tx, pgxform::slot_lock(schema));
  }
  p.db.exec("UPDATE legacy.people SET score = -5 WHERE id <= 20");
  Child catch_up(with_db(p.db, p.path, {"catch-up"}), p.dir.path());
  wait_until([&] {
    return p.db.count(
               "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
               " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())") >
           0;
  });
  pgxform::RunMetrics metrics;
  const auto read =
      pgxform::SlotReader(schema, 4096, metrics).read(reader, pgxform::SlotReader::Wait::yes);
  CHECK(read.keys.count("people") == 1);
  {
    pqxx::nontransaction tx(reader);
    pgxform::session_unlock(tx, pgxform::slot_lock(schema));
  }
  INFO(catch_up.err());
  CHECK(catch_up.wait() == 0);
  CHECK(p.db.count("SELECT count(*) FROM pgxform.change_log") == 0);
  CHECK(p.differences() == 0);
}

TEST_CASE(
    "a transform that reads another table stays exact with changes: logical beside run and "
    "catch-up --follow",
    "[capture][logical]") {
  Shop shop(300, 4, 40, 30);
  std::string yaml = Shop::yaml(40);
  for (const std::string from : {"changes: trigger", "mode: trigger"})
    yaml.replace(yaml.find(from), from.size(), from.substr(0, from.find(':') + 2) + "logical");
  shop.path = shop.dir.write("jobs.yaml", yaml);
  shop.check_exact_beside_run_and_follow();
}

TEST_CASE(
    "a server whose replication slots are all in use is refused for changes: logical with the fix, "
    "before anything is written",
    "[capture][logical][bad-input][restart]") {
  // Tagged [restart] so that it runs alone: it takes every free slot of the server the other
  // tests share for a moment. (wal_level = logical on the command line wins over ALTER SYSTEM:
  // its refusal is tested pure, capture_check_test.)
  SlotPeople p(100);
  const long long free_slots = std::stoll(p.db.scalar("SHOW max_replication_slots")) -
                               p.db.count("SELECT count(*) FROM pg_replication_slots");
  REQUIRE(free_slots > 0);
  for (long long i = 0; i < free_slots; ++i)
    p.db.exec("SELECT pg_create_physical_replication_slot('pgxform_test_full_" + std::to_string(i) +
              "')");
  struct Drop {
    SlotPeople& p;
    ~Drop() {
      try {
        p.db.exec(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            " WHERE slot_name LIKE 'pgxform\\_test\\_full\\_%'");
      } catch (const std::exception&) {
      }
    }
  } drop{p};
  for (const std::string command : {"run", "capture", "catch-up", "validate"}) {
    INFO(command);
    const auto r = p.pgxform({command});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err + r.out, Contains("job 'people': changes: logical needs a replication slot") &&
                                  Contains("(max_replication_slots)") &&
                                  Contains("ALTER SYSTEM SET max_replication_slots = "));
  }
  CHECK_FALSE(p.db.schema_exists("pgxform"));
  CHECK(p.slots() == 0);
  CHECK(p.publications() == 0);
}
