// The main pass's part of a task (main_pass.h) against a real PostgreSQL: a batch of a job with
// changes: trigger takes the change-log rows of the keys it processed off the log, in its own
// statement, by index probes only, whatever else the log holds; rows of keys it did not process
// stay.
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <thread>

#include "catalog/catalog.h"
#include "database/database.h"
#include "plan/jobs_file.h"
#include "state/slice_split.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

// legacy.items (create_items) with capture, and a refresh function that copies the keys again.
std::string capturing_items(TestDatabase& db, const TempDir& dir, int batch_size) {
  db.exec(
      "CREATE FUNCTION xf.items_refresh(keys bigint[]) RETURNS void LANGUAGE sql AS $$"
      " DELETE FROM target.items t WHERE t.id = ANY (keys);"
      " INSERT INTO target.items SELECT id, v * 10 FROM legacy.items WHERE id = ANY (keys) $$");
  return dir.write("jobs.yaml", items_jobs_yaml(batch_size, 1,
                                                "        changes: trigger\n"
                                                "        refresh_function: xf.items_refresh\n"));
}

// xf.items over legacy.items (create_items) failing on key `bad` (division by zero, SQLSTATE
// 22012) for every range that holds it; the first such call waits for advisory lock 4242 first
// (shared, so that a test that holds it decides when that call goes on).
void poisoned_waiting_items_function(TestDatabase& db, long long bad) {
  const std::string key = std::to_string(bad);
  db.exec(
      "CREATE SEQUENCE xf.calls_with_bad;"
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE plpgsql AS $$ DECLARE n bigint; BEGIN"
      "  IF first_key <= " +
      key + " AND " + key +
      " <= last_key"
      "     AND nextval('xf.calls_with_bad') = 1 THEN"
      "    PERFORM pg_advisory_xact_lock_shared(4242);"
      "  END IF;"
      "  INSERT INTO target.items SELECT id, v * 10 / CASE WHEN id = " +
      key +
      " THEN 0 ELSE 1 END FROM legacy.items WHERE id BETWEEN first_key AND last_key;"
      "  GET DIAGNOSTICS n = ROW_COUNT; RETURN n; END $$");
}

// Every row of legacy.items but `bad` in target.items once, and nothing else.
void check_all_but_once(TestDatabase& db, long long bad) {
  const std::string source =
      "SELECT id, v * 10 FROM legacy.items WHERE id <> " + std::to_string(bad);
  CHECK(db.count("SELECT count(*) FROM (" + source +
                 " EXCEPT ALL SELECT id, v FROM target.items) m") == 0);
  CHECK(db.count("SELECT count(*) FROM (SELECT id, v FROM target.items EXCEPT ALL " + source +
                 ") d") == 0);
}

// The ranges set aside: "slice:first-last" each, and whether each lies inside its slice.
std::string set_aside_ranges(TestDatabase& db) {
  return db.scalar(
      "SELECT string_agg(f.slice || ':' || f.first_key || '-' || f.last_key ||"
      " CASE WHEN (s.lo_key IS NULL OR f.first_key::bigint > s.lo_key::bigint) AND"
      " (s.hi_key IS NULL OR f.last_key::bigint <= s.hi_key::bigint) THEN '' ELSE ' outside' END,"
      " ' ' ORDER BY f.slice, f.first_key::bigint)"
      " FROM pgxform.failed_batches f JOIN pgxform.job_slice s ON s.job = f.job AND"
      " s.slice = f.slice");
}

// A job's settings: split while workers are idle, failing batches narrowed down and set aside.
const char* const k_auto_skip_bisect =
    "        parallel: auto\n        on_error: skip\n        bisect: true\n";

}  // namespace

TEST_CASE(
    "a slice of parallel: auto split while its failing batch is narrowed down processes and "
    "sets aside only its own keys: every good row once, the bad one set aside once, in its slice",
    "[threads]") {
  TestDatabase db;
  create_items(db, 1000);  // keys 3, 6, ..., 3000; batches of 100 keys: the fifth is 1203..1500
  const long long bad = 1461;
  poisoned_waiting_items_function(db, bad);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100, 1, k_auto_skip_bisect));
  auto gate = pgxform::connect(db.dsn());
  pqxx::nontransaction(*gate).exec("SELECT pg_advisory_lock(4242)");
  // One worker: the run splits nothing itself; this test splits its slice.
  Child child(with_db(db, path, {"run", "-q", "--threads", "1"}), dir.path());
  // The failing batch waits, holding its slice's row.
  wait_until([&] {
    return db.count(
               "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
               " AND objid = 4242") == 1;
  });
  const pgxform::JobsFile file = pgxform::parse_jobs_file(path);
  auto conn = pgxform::connect(db.dsn());
  const pgxform::ResolvedJob job = pgxform::resolve_jobs(*conn, file, {}).front();
  // Split at key 1440, inside the failing batch and below the bad key: the split waits for the
  // batch, which fails, and lands while the batch is narrowed down (the bad key is slice 1's).
  auto split = std::async(std::launch::async, [&] {
    return pgxform::split_slice(*conn, pgxform::StateSchema("pgxform"), job, 0, "1440");
  });
  wait_until([&] {
    return db.count(
               "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
               " AND wait_event_type = 'Lock' AND query LIKE '%AS fits%'") == 1;
  });
  pqxx::nontransaction(*gate).exec("SELECT pg_advisory_unlock(4242)");
  REQUIRE(split.get() == 1);
  const int code = child.wait();
  INFO(child.err());
  CHECK(code == 0);
  check_all_but_once(db, bad);
  CHECK(set_aside_ranges(db) == "1:1461-1461");
  CHECK(db.scalar("SELECT string_agg(slice || ':' || coalesce(hi_key, '-') || ':' || last_key,"
                  " ' ' ORDER BY slice) FROM pgxform.job_slice") == "0:1440:1440 1:-:3000");
}

TEST_CASE(
    "a job with parallel: auto and one bad row on 2 threads sets the bad row aside once, inside "
    "one slice, and processes every good row once",
    "[threads]") {
  for (const long long bad : {1461LL, 4503LL, 8997LL}) {
    INFO("bad key " << bad);
    TestDatabase db;
    create_items(db, 3000, 10);
    poisoned_items_function(db, bad);
    TempDir dir;
    const auto path = dir.write("jobs.yaml", items_jobs_yaml(40, 1, k_auto_skip_bisect));
    const CliResult r = run_with_db(db, path, {"run", "-q", "--threads", "2"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    check_all_but_once(db, bad);
    const std::string ranges = set_aside_ranges(db);
    CHECK_THAT(ranges, Catch::EndsWith(":" + std::to_string(bad) + "-" + std::to_string(bad)));
    CHECK(db.count("SELECT count(*) FROM pgxform.failed_batches") == 1);
    CHECK_THAT(ranges, !Catch::Contains("outside"));
    CHECK(db.count("SELECT count(*) FROM pgxform.job_slice") >= 2);
  }
}

TEST_CASE("a main-pass batch takes the changes of the keys it processed off the log, and no other",
          "[capture]") {
  TestDatabase db;
  create_items(db, 900);
  TempDir dir;
  const auto path = capturing_items(db, dir, 100);
  REQUIRE(run_with_db(db, path, {"capture"}).exit_code == 0);
  // Changes before the main pass reached the keys: of keys 3..1500 (processed), of a key that
  // is gone (never processed), and many of another job's, which only an index keeps apart.
  db.exec(
      "UPDATE legacy.items SET v = v + 1 WHERE id <= 1500;"
      "DELETE FROM legacy.items WHERE id = 1503;"
      "INSERT INTO pgxform.change_log (job, key) SELECT 'other', g::text"
      " FROM generate_series(1, 50000) g;"
      "ANALYZE pgxform.change_log");
  REQUIRE(db.count("SELECT count(*) FROM pgxform.change_log WHERE job = 'items'") == 501);
  const auto scans_of = [&](const std::string& kind) {
    return db.count("SELECT " + kind +
                    " FROM pg_stat_all_tables WHERE relid = 'pgxform.change_log'::regclass");
  };
  // The test's own sessions report their scans as they end: read once those figures stand.
  long long scans = -1;
  for (long long now = scans_of("seq_scan"); now != scans; now = scans_of("seq_scan")) {
    scans = now;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  const long long probes = scans_of("idx_scan");
  const auto run = run_with_db(db, path, {"run"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  // Nine batches, and no scan of the log among them: the run's sessions flush their figures
  // when they end.
  wait_until([&] { return scans_of("idx_scan") >= probes + 9; });
  CHECK(scans_of("seq_scan") == scans);
  // Only the deleted key's change is left, for catch-up; the other job's rows are untouched.
  CHECK(db.scalar("SELECT string_agg(key, ',') FROM pgxform.change_log WHERE job = 'items'") ==
        "1503");
  CHECK(db.count("SELECT count(*) FROM pgxform.change_log WHERE job = 'other'") == 50000);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}
