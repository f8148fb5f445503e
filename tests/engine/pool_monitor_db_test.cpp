// pool_monitor: what a pool asks once a second and where it says what limits it, against a
// real PostgreSQL: set --threads read through its limit, the connections free, the runner's
// row written when the figures change and deleted at the end.
#include <catch2/catch.hpp>

#include "database/database.h"
#include "engine/pool_monitor.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

TEST_CASE("a pool monitor reads set --threads within its limit and writes the runner's row") {
  TestDatabase db;
  const TestRole role(db, "monitor", "CONNECTION LIMIT 9");
  db.exec("CREATE SCHEMA pgxform AUTHORIZATION " + role.name());
  const pgxform::StateSchema schema("pgxform");
  {
    auto conn = pgxform::connect(role.dsn());
    pgxform::ensure_state_schema(*conn, schema);
  }
  // The server forgets the closed session a moment later.
  wait_until([&] {
    return db.count("SELECT count(*) FROM pg_stat_activity WHERE usename = '" + role.name() +
                    "'") == 0;
  });
  {
    pgxform::PoolMonitor monitor(role.dsn(), schema, "run", pgxform::FollowThreads::yes);
    // Its own connection is the role's only session: 8 left, of which the pool may take 3.
    const pgxform::PoolFigures start = monitor.starting_figures(1024, 16, 0, 5);
    CHECK(start.connections_free == 8);
    CHECK(start.workers == 3);
    CHECK_FALSE(monitor.limits().threads);
    db.exec("INSERT INTO pgxform.control (scope, name, threads) VALUES ('all', '', 6)");
    CHECK(monitor.limits().threads == 6);
    db.exec("UPDATE pgxform.control SET threads = 10000");
    CHECK_FALSE(monitor.limits().threads);  // out of its limit: as if not set
    monitor.figures(start);
    CHECK(db.scalar("SELECT workers || ' ' || threads || ' ' || tasks || ' ' || reserve || ' ' ||"
                    " command FROM pgxform.runner_pool") == "3 1024 16 5 run");
    pgxform::PoolFigures fewer = start;
    fewer.workers = 2;
    monitor.figures(fewer);
    CHECK(db.count("SELECT workers FROM pgxform.runner_pool") == 2);
  }
  CHECK(db.count("SELECT count(*) FROM pgxform.runner_pool") == 0);
}

TEST_CASE(
    "a pool monitor counts the starting figures on the command's connection and connects only "
    "at its first look, one free connection kept for it") {
  TestDatabase db;
  const TestRole role(db, "monitor", "CONNECTION LIMIT 9");
  const auto sessions = [&] {
    return db.count("SELECT count(*) FROM pg_stat_activity WHERE usename = '" + role.name() + "'");
  };
  auto own = pgxform::connect(role.dsn());
  pgxform::PoolMonitor monitor(role.dsn(), pgxform::StateSchema("pgxform"), "run",
                               pgxform::FollowThreads::yes);
  // The command's connection is the role's only session: 8 left, one of them the monitor's.
  const pgxform::PoolFigures start = monitor.starting_figures(*own, 1024, 16, 1, 5);
  CHECK(start.connections_free == 7);
  CHECK(sessions() == 1);
  monitor.limits();
  CHECK(sessions() == 2);
}

TEST_CASE("a pool monitor writes no row where the state schema does not exist") {
  TestDatabase db;
  pgxform::PoolMonitor monitor(db.dsn(), pgxform::StateSchema("pgxform"), "verify",
                               pgxform::FollowThreads::no);
  const pgxform::PoolFigures start = monitor.starting_figures(4, 2, 0, 5);
  CHECK(start.workers == 2);
  CHECK_FALSE(monitor.limits().threads);
  monitor.figures(start);
  CHECK_FALSE(db.schema_exists("pgxform"));
}
