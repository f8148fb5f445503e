// capture_state: what the state schema records of the capture (state/012_logical.sql), against a
// real PostgreSQL: a schema of version 11 is upgraded in place, its change log kept and drained;
// a lost capture stays on the job's row until reset clears it.
#include <catch2/catch.hpp>
#include <string>

#include "state/state_schema.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

const char* const k_yaml = R"(version: 1
lists:
  - name: main
    jobs:
      - {name: items, table: legacy.items, key: id, function: xf.items, batch_size: 50,
         target_batch_ms: 0, changes: trigger, refresh_function: xf.items_refresh}
)";

void create_refresh(TestDatabase& db) {
  db.exec(
      "CREATE FUNCTION xf.items_refresh(keys bigint[]) RETURNS void LANGUAGE sql AS $$"
      " DELETE FROM target.items WHERE id = ANY (keys);"
      " INSERT INTO target.items SELECT id, v * 10 FROM legacy.items WHERE id = ANY (keys) $$");
}

}  // namespace

TEST_CASE(
    "a state schema of version 11 is upgraded in place to 12, its pending changes kept and "
    "caught up",
    "[capture]") {
  TestDatabase db;
  create_items(db, 300);
  create_refresh(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", k_yaml);
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  // Back to version 11, as issue 22's pgxform left it, with changes pending.
  db.exec(
      "DROP TABLE pgxform.capture_slot, pgxform.capture_table;"
      "ALTER TABLE pgxform.job_state DROP COLUMN capture_lost;"
      "DROP FUNCTION pgxform.key_reads_as(text, regtype);"
      "DELETE FROM pgxform.schema_version WHERE version >= 12;"
      "UPDATE legacy.items SET v = -v WHERE id <= 60");
  REQUIRE(db.count("SELECT count(*) FROM pgxform.change_log") == 20);
  // status reads version 11 without a word about what it lacks.
  const auto status = run_with_db(db, path, {"status", "--json"});
  CHECK(status.exit_code == 0);
  const auto caught_up = run_with_db(db, path, {"catch-up"});
  INFO(caught_up.err);
  REQUIRE(caught_up.exit_code == 0);
  CHECK(db.scalar("SELECT max(version) FROM pgxform.schema_version") ==
        std::to_string(pgxform::newest_state_version()));
  CHECK(db.count("SELECT count(*) FROM pgxform.change_log") == 0);
  CHECK(missing_items(db) == 0);
  CHECK(db.count("SELECT count(*) FROM target.items t JOIN legacy.items s USING (id)"
                 " WHERE t.v <> s.v * 10") == 0);
}

TEST_CASE("a lost capture stays on the job's row until reset clears it", "[capture]") {
  TestDatabase db;
  create_items(db, 100);
  create_refresh(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", k_yaml);
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  db.exec("UPDATE pgxform.job_state SET capture_lost = 'TRUNCATE of legacy.items'");
  for (int i = 0; i < 2; ++i) {
    const auto r = run_with_db(db, path, {"catch-up"});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains("items: caught up, but its log lacks changes: TRUNCATE"));
  }
  REQUIRE(run_with_db(db, path, {"reset", "items"}).exit_code == 0);
  CHECK(db.scalar("SELECT coalesce(capture_lost, 'none') FROM pgxform.job_state") == "none");
}
