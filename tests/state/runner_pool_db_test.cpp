// runner_pool: the runners' rows for status (state version 10), against a real PostgreSQL:
// written and replaced, shown only while the runner's sessions are there, deleted at the end.
#include <catch2/catch.hpp>

#include "database/database.h"
#include "state/runner_pool.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

TEST_CASE("a runner's pool row is replaced as it changes and shown only while it is connected") {
  TestDatabase db;
  auto conn = pgxform::connect(db.dsn());  // this process's sessions are named after it
  const pgxform::StateSchema schema("pgxform");
  pgxform::ensure_state_schema(*conn, schema);
  pgxform::RunnerPool pool{pgxform::runner_identity(), "run", {3, 1024, 3, 42, 5}};
  pgxform::write_runner_pool(*conn, schema, pool);
  pool.figures.workers = 2;
  pool.figures.connections_free.reset();
  pgxform::write_runner_pool(*conn, schema, pool);
  // A runner that died left its row: not shown.
  db.exec(
      "INSERT INTO pgxform.runner_pool (runner, command, workers, threads, tasks, reserve)"
      " VALUES ('gone-host:1', 'run', 4, 4, 4, 5)");
  std::vector<pgxform::RunnerPool> shown;
  {
    pqxx::read_transaction tx(*conn);
    shown = pgxform::read_runner_pools(tx, schema);
  }
  REQUIRE(shown.size() == 1);
  CHECK(shown[0].runner == pgxform::runner_identity());
  CHECK(shown[0].figures == pool.figures);
  pgxform::drop_runner_pool(*conn, schema, pool.runner);
  CHECK(db.count("SELECT count(*) FROM pgxform.runner_pool") == 1);
}
