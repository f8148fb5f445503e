// The scripts of scripts_dir through the command line: run applies them before its preflight,
// migrate/info/repair, and a changed applied script stops everything with exit 2.
#include <catch2/catch.hpp>
#include <filesystem>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

CliResult scripts_command(TestDatabase& db, const std::string& path,
                          std::vector<std::string> args) {
  args.insert(args.end(), {"-f", path, "--dsn", db.dsn()});
  return run_cli(args);
}

// A migration whose target table and function come from the scripts, not from the test.
void write_scripts(const TempDir& dir) {
  std::filesystem::create_directories(dir.path() + "/sql");
  dir.write("sql/V1__target.sql",
            "CREATE SCHEMA target;\nCREATE TABLE target.items (id bigint, v int);\n");
  dir.write("sql/R__items.sql",
            "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint)\n"
            "RETURNS bigint LANGUAGE sql AS $$\n"
            "  WITH i AS (INSERT INTO target.items SELECT id, v * 10 FROM legacy.items\n"
            "             WHERE id BETWEEN first_key AND last_key RETURNING 1)\n"
            "  SELECT count(*) FROM i $$;\n");
}

void create_source(TestDatabase& db) {
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.items (id bigint PRIMARY KEY, v int NOT NULL);"
      "INSERT INTO legacy.items SELECT g * 3, g FROM generate_series(1, 500) g;");
}

}  // namespace

TEST_CASE("run applies the pending scripts of scripts_dir before its preflight") {
  TestDatabase db;
  create_source(db);
  TempDir dir;
  write_scripts(dir);
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  // Without the scripts, the function does not exist: exit 2, nothing written.
  auto refused = scripts_command(db, path, {"run", "--no-migrate"});
  CHECK(refused.exit_code == 2);
  CHECK_FALSE(db.schema_exists("pgxform"));
  CHECK_FALSE(db.schema_exists("target"));

  auto info = scripts_command(db, path, {"info"});
  CHECK(info.exit_code == 0);
  CHECK_THAT(info.out, Catch::Contains("V1__target.sql") && Catch::Contains("pending"));

  auto r = scripts_command(db, path, {"run"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.script_history") == 2);
  auto after = scripts_command(db, path, {"info"});
  CHECK_THAT(after.out, !Catch::Contains("pending"));
}

TEST_CASE("a changed applied script stops run and migrate with exit 2 naming it, until repair") {
  TestDatabase db;
  create_source(db);
  TempDir dir;
  write_scripts(dir);
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(scripts_command(db, path, {"migrate"}).exit_code == 0);
  dir.write("sql/V1__target.sql",
            "CREATE SCHEMA target;\nCREATE TABLE target.items (id bigint, v int, extra int);\n");
  for (const char* what : {"run", "migrate"}) {
    auto r = scripts_command(db, path, {what});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("V1__target.sql"));
  }
  CHECK(db.count("SELECT count(*) FROM target.items") == 0);
  CHECK_THAT(scripts_command(db, path, {"info"}).out, Catch::Contains("changed"));
  auto repaired = scripts_command(db, path, {"repair"});
  CHECK(repaired.exit_code == 0);
  CHECK_THAT(repaired.out, Catch::Contains("V1__target.sql"));
  CHECK(scripts_command(db, path, {"run"}).exit_code == 0);
  CHECK(missing_items(db) == 0);
}
