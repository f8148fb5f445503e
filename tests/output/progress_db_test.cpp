// The early warning: a run logs a job whose batches get slower per row as it goes on (the
// O(N²) signature), and status shows it; a flat job is never warned about.
#include <catch2/catch.hpp>

#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

namespace {

// The planted mistake of seed 002: each batch's anti-join scans the whole, growing target,
// because the target's key has no index.
void plant_quadratic(TestDatabase& db) {
  // A range condition instead of an equality: no hash or merge anti-join can serve it, so
  // each row of a batch scans the whole target built so far.
  db.exec(
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS 'WITH i AS (INSERT INTO target.items SELECT l.id, l.v * 10 FROM"
      " legacy.items l WHERE l.id BETWEEN first_key AND last_key AND NOT EXISTS (SELECT 1"
      " FROM target.items t WHERE t.id >= l.id AND t.id <= l.id) RETURNING 1)"
      " SELECT count(*) FROM i'");
}

}  // namespace

TEST_CASE("a run warns about a job whose batches get slower per row, and status shows it",
          "[timing]") {
  TestDatabase db;
  create_items(db, 8000);
  plant_quadratic(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(200));
  auto r = run_cli({"run", "-f", path, "--dsn", db.dsn()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("items: each batch costs more per row") &&
                        Catch::Contains("O(N²)") && Catch::Contains("Projected total duration"));
  auto status = run_cli({"status", "--json", "-f", path, "--dsn", db.dsn()});
  CHECK(job_in(parse_json(status.out), "items")["trend"] == "growing");
}

TEST_CASE("a job whose batches cost the same per row is not warned about", "[timing]") {
  TestDatabase db;
  // 5 ms of work per batch: batches of 1 ms move between two speeds with the machine's state
  // (1.0 ms for twenty batches, 1.5 ms for the next), a step no trend test can tell from a rise.
  create_items(db, 24000, 5);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(600));
  auto r = run_cli({"run", "-f", path, "--dsn", db.dsn()});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.err, !Catch::Contains("costs more per row"));
  auto status = run_cli({"status", "--json", "-f", path, "--dsn", db.dsn()});
  CHECK(job_in(parse_json(status.out), "items")["trend"] == "flat");
}
