// Tests of fleet_targets: the rows of a targets_query against a real PostgreSQL, a query that
// fails (exit 2 naming the file's line), and the host a target counts against.
#include <catch2/catch.hpp>

#include "commands/fleet_targets.h"
#include "support/test_db.h"

using Catch::Matchers::Contains;
using namespace pgxform_test;

TEST_CASE("a targets_query's rows follow the file's own targets", "[fleet_targets]") {
  TestDatabase coordinator;
  coordinator.exec(
      "CREATE TABLE shards (name text, dsn text, max_threads int, host text);"
      "INSERT INTO shards VALUES ('q1', 'dbname=a', 3, NULL), ('q2', 'dbname=b', NULL, 'db9')");
  TempDir dir;
  const std::string path = dir.write(
      "t.yaml", "targets:\n  - {name: s1, dsn: dbname=x}\ntargets_query:\n  dsn: \"" +
                    coordinator.dsn() + "\"\n  sql: SELECT * FROM shards ORDER BY name\n");
  const pgxform::TargetsFile file = pgxform::read_targets(path);
  REQUIRE(file.targets.size() == 3);
  CHECK(file.targets[1].name == "q1");
  CHECK(file.targets[1].max_threads == 3);
  CHECK(file.targets[2].host == "db9");
  CHECK(pgxform::target_host(file.targets[2]) == "db9");
}

TEST_CASE("a targets_query that fails or lacks a column is an input error at its line",
          "[fleet_targets]") {
  TestDatabase coordinator;
  TempDir dir;
  const auto error = [&](const std::string& sql) {
    const std::string path = dir.write(
        "t.yaml", "targets_query:\n  dsn: \"" + coordinator.dsn() + "\"\n  sql: " + sql + "\n");
    try {
      pgxform::read_targets(path);
    } catch (const pgxform::TargetsFileError& e) {
      return e.problems().front();
    }
    return std::string();
  };
  CHECK_THAT(error("SELECT * FROM no_such_table"), Contains("t.yaml:1: targets_query failed"));
  CHECK_THAT(error("SELECT 'a' AS name"), Contains("has no column 'dsn'"));
  CHECK_THAT(error("SELECT 'a b' AS name, 'dbname=x' AS dsn"), Contains("may hold only"));
}

TEST_CASE("a target counts against its connection string's host and port", "[fleet_targets]") {
  pgxform::FleetTarget t;
  t.dsn = "host=db1 port=6543 dbname=a";
  CHECK(pgxform::target_host(t) == "db1:6543");
  t.host = "rack7";
  CHECK(pgxform::target_host(t) == "rack7");
}
