// The ranges on_error: skip set aside (failed_ranges.h), against a real PostgreSQL: recorded
// by the run that skipped them, one session at a time may take one, and a range resolved is
// no longer counted.
#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "state/failed_ranges.h"
#include "state/schema_name.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

TEST_CASE("a range set aside is taken by one session at a time, and once resolved is gone") {
  TestDatabase db;
  create_items(db, 1000);
  poisoned_items_function(db, 1500);  // in the batch [1203, 1500]
  TempDir dir;
  REQUIRE(
      run_with_db(db, dir.write("jobs.yaml", items_skip_yaml(Bisect::off)), {"run"}).exit_code ==
      0);
  const pgxform::StateSchema schema("pgxform");
  pqxx::connection first(db.dsn());
  pqxx::connection second(db.dsn());
  pqxx::work tx(first);
  const auto ranges = pgxform::unresolved_ranges(tx, schema, "items");
  REQUIRE(ranges.size() == 1);
  CHECK(ranges[0].first_key == "1203");
  CHECK(ranges[0].last_key == "1500");
  const pgxform::SetAside before = pgxform::count_unresolved(tx, schema);
  CHECK(before.ranges == 1);
  CHECK(before.jobs == 1);

  REQUIRE(pgxform::take_range(tx, schema, ranges[0].id));
  {
    pqxx::work other(second);
    CHECK_FALSE(pgxform::take_range(other, schema, ranges[0].id));  // taken by `tx`
  }
  pgxform::resolve_range(tx, schema, ranges[0].id);
  tx.commit();

  pqxx::work after(second);
  CHECK(pgxform::unresolved_ranges(after, schema, "items").empty());
  CHECK(pgxform::count_unresolved(after, schema).ranges == 0);
  CHECK_FALSE(pgxform::take_range(after, schema, ranges[0].id));  // resolved
}
