// The main pass's part of a task (main_pass.h) against a real PostgreSQL: a batch of a job with
// changes: trigger takes the change-log rows of the keys it processed off the log, in its own
// statement, by index probes only, whatever else the log holds; rows of keys it did not process
// stay.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

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

}  // namespace

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
