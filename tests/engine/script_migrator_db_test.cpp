// Versioned SQL scripts against a real PostgreSQL: order, history, checksums, transactions,
// repair, and two runners at once.
#include <algorithm>
#include <catch2/catch.hpp>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <thread>

#include "database/database.h"
#include "engine/script_migrator.h"
#include "state/state_locks.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;
using pgxform::ScriptError;
using pgxform::ScriptFailed;
using pgxform::ScriptMigrator;
using pgxform::ScriptState;
using Files = std::vector<std::string>;

namespace {

// A scripts directory beside a connection to the test database, as the CLI would set them up.
struct Scripts {
  TestDatabase& db;
  TempDir dir;
  std::unique_ptr<pqxx::connection> conn = pgxform::connect(db.dsn());

  explicit Scripts(TestDatabase& database) : db(database) {}
  void write(const std::string& name, const std::string& text) const { dir.write(name, text); }
  ScriptMigrator migrator(std::chrono::milliseconds lock_timeout = std::chrono::seconds(60)) {
    return ScriptMigrator(*conn, "pgxform", dir.path(), lock_timeout);
  }
  Files migrate() { return migrator().migrate(); }
  std::string state(const std::string& file) {
    for (const auto& s : migrator().info())
      if (s.script.file == file) return pgxform::state_name(s.state);
    return "absent";
  }
};

bool table_exists(TestDatabase& db, const std::string& table) {
  return db.scalar("SELECT to_regclass('" + table + "') IS NOT NULL") == "t";
}

long long history_rows(TestDatabase& db) {
  return db.count("SELECT count(*) FROM pgxform.script_history");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("new V and R scripts are applied in version order, V scripts before R scripts") {
  TestDatabase db;
  Scripts s(db);
  s.write("V1__log.sql", "CREATE TABLE seen (n serial, script text);\n");
  s.write("V1.10__ten.sql", "INSERT INTO seen (script) VALUES ('V1.10');\n");
  s.write("V1.2__two.sql", "INSERT INTO seen (script) VALUES ('V1.2');\n");
  s.write("R__a.sql", "INSERT INTO seen (script) VALUES ('R__a');\n");
  s.write("R__b.sql", "INSERT INTO seen (script) VALUES ('R__b');\n");
  s.write("V2__after.sql", "INSERT INTO seen (script) VALUES ('V2');\n");
  s.write("check_counts.sql", "SELECT no such thing;\n");

  CHECK(s.migrate() == Files{"V1__log.sql", "V1.2__two.sql", "V1.10__ten.sql", "V2__after.sql",
                             "R__a.sql", "R__b.sql"});
  CHECK(db.scalar("SELECT string_agg(script, ' ' ORDER BY n) FROM seen") ==
        "V1.2 V1.10 V2 R__a R__b");
  CHECK(history_rows(db) == 6);
  CHECK(db.scalar("SELECT type || coalesce(version, '-') || ' ' || description || ' ' ||"
                  " (applied_by = current_user) || ' ' || (runner LIKE '%:%') || ' ' ||"
                  " (duration_ms >= 0) || ' ' || length(checksum)"
                  " FROM pgxform.script_history WHERE script = 'V1.10__ten.sql'") ==
        "V1.10 ten true true true 16");
  CHECK(db.scalar("SELECT type || coalesce(version, '-') FROM pgxform.script_history"
                  " WHERE script = 'R__a.sql'") == "R-");
  for (const auto& status : s.migrator().info())
    CHECK(std::string(pgxform::state_name(status.state)) == "applied");
}

TEST_CASE("migrating twice applies nothing the second time") {
  TestDatabase db;
  Scripts s(db);
  s.write("V1__log.sql", "CREATE TABLE seen (script text);\n");
  s.write("V2__two.sql", "INSERT INTO seen VALUES ('V2');\n");
  s.write("R__r.sql", "INSERT INTO seen VALUES ('R');\n");
  CHECK(s.migrate().size() == 3);
  CHECK(s.migrate().empty());
  CHECK(db.count("SELECT count(*) FROM seen") == 2);
  CHECK(history_rows(db) == 3);
}

TEST_CASE(
    "a changed V script stops migrate with an error naming the file, and nothing is "
    "written") {
  TestDatabase db;
  Scripts s(db);
  s.write("V1__one.sql", "CREATE TABLE one (a int);\n");
  s.migrate();
  const std::string checksum =
      db.scalar("SELECT checksum FROM pgxform.script_history WHERE script = 'V1__one.sql'");

  s.write("V1__one.sql", "CREATE TABLE one (a bigint);\n");
  s.write("V2__two.sql", "CREATE TABLE two (a int);\n");
  s.write("R__r.sql", "CREATE TABLE r (a int);\n");
  CHECK(s.state("V1__one.sql") == "changed");
  try {
    s.migrate();
    FAIL("migrate applied scripts over a changed one");
  } catch (const ScriptError& e) {
    REQUIRE(e.problems().size() == 1);
    CHECK(e.problems()[0].find(s.dir.path() + "/V1__one.sql: changed since it was applied") == 0);
    CHECK(e.problems()[0].find("pgxform repair") != std::string::npos);
  }
  CHECK_FALSE(table_exists(db, "two"));
  CHECK_FALSE(table_exists(db, "r"));
  CHECK(history_rows(db) == 1);
  CHECK(db.scalar("SELECT checksum FROM pgxform.script_history") == checksum);
}

TEST_CASE("a V script changed only in whitespace or line endings is not changed") {
  TestDatabase db;
  Scripts s(db);
  s.write("V1__one.sql", "CREATE TABLE one (a int);\nINSERT INTO one VALUES (1);\n");
  s.migrate();
  s.write("V1__one.sql", "CREATE TABLE one (a int);   \r\nINSERT INTO one VALUES (1);\t\r\n\r\n\n");
  CHECK(s.state("V1__one.sql") == "applied");
  CHECK(s.migrate().empty());
  CHECK(db.count("SELECT count(*) FROM one") == 1);
}

TEST_CASE("a changed R script is applied again") {
  TestDatabase db;
  Scripts s(db);
  s.write("R__f.sql", "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';\n");
  CHECK(s.migrate() == Files{"R__f.sql"});
  CHECK(db.scalar("SELECT f()") == "1");

  s.write("R__f.sql", "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 2';\n");
  CHECK(s.state("R__f.sql") == "outdated");
  CHECK(s.migrate() == Files{"R__f.sql"});
  CHECK(db.scalar("SELECT f()") == "2");
  CHECK(history_rows(db) == 1);
  CHECK(db.scalar("SELECT checksum FROM pgxform.script_history") ==
        pgxform::script_checksum(
            "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 2';\n"));
  CHECK(s.state("R__f.sql") == "applied");
  CHECK(s.migrate().empty());
}

TEST_CASE("a V script missing from disk is reported by info as missing") {
  TestDatabase db;
  Scripts s(db);
  s.write("V1__one.sql", "CREATE TABLE one (a int);\n");
  s.write("V2__two.sql", "CREATE TABLE two (a int);\n");
  s.migrate();
  std::filesystem::remove(s.dir.path() + "/V2__two.sql");

  const auto info = s.migrator().info();
  REQUIRE(info.size() == 2);
  CHECK(info[1].script.file == "V2__two.sql");
  CHECK(info[1].state == ScriptState::missing);
  CHECK(info[1].script.version == "2");
  CHECK(info[1].applied_at);
  // Missing scripts are reported, not fatal.
  CHECK(s.migrate().empty());
}

TEST_CASE(
    "a script failing mid-way is rolled back and not recorded, and earlier scripts stay "
    "applied") {
  TestDatabase db;
  Scripts s(db);
  s.write("V1__one.sql", "CREATE TABLE one (a int);\n");
  s.write("V2__two.sql", "CREATE TABLE two (a int);\nSELECT 1 / 0;\n");
  s.write("V3__three.sql", "CREATE TABLE three (a int);\n");
  s.write("R__r.sql", "CREATE TABLE r (a int);\n");
  try {
    s.migrate();
    FAIL("the failing script went through");
  } catch (const ScriptFailed& e) {
    CHECK(e.script() == "V2__two.sql");
    CHECK(e.sqlstate() == "22012");
    CHECK(std::string(e.what()).find("V2__two.sql failed (SQLSTATE 22012)") != std::string::npos);
    CHECK(std::string(e.what()).find("rolled back") != std::string::npos);
  }
  CHECK(table_exists(db, "one"));
  CHECK_FALSE(table_exists(db, "two"));
  CHECK_FALSE(table_exists(db, "three"));
  CHECK_FALSE(table_exists(db, "r"));
  CHECK(db.scalar("SELECT string_agg(script, ' ') FROM pgxform.script_history") == "V1__one.sql");
  CHECK(s.state("V2__two.sql") == "pending");

  s.write("V2__two.sql", "CREATE TABLE two (a int);\n");
  CHECK(s.migrate() == Files{"V2__two.sql", "V3__three.sql", "R__r.sql"});
}

TEST_CASE("a no-transaction script with CREATE INDEX CONCURRENTLY is applied") {
  TestDatabase db;
  Scripts s(db);
  s.write("V1__table.sql",
          "CREATE TABLE t (a int);\nINSERT INTO t SELECT generate_series(1, 100);\n");
  s.write("V2__index.sql", "-- pgxform: no-transaction\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n");
  CHECK(s.migrate() == Files{"V1__table.sql", "V2__index.sql"});
  CHECK(db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_a'::regclass") == "t");
  CHECK(s.state("V2__index.sql") == "applied");
}

TEST_CASE(
    "CREATE INDEX CONCURRENTLY in an ordinary script fails with a hint about "
    "no-transaction") {
  TestDatabase db;
  Scripts s(db);
  s.write("V1__table.sql", "CREATE TABLE t (a int);\n");
  s.write("V2__index.sql", "CREATE INDEX CONCURRENTLY t_a ON t (a);\n");
  try {
    s.migrate();
    FAIL("CREATE INDEX CONCURRENTLY ran in a transaction");
  } catch (const ScriptFailed& e) {
    CHECK(e.sqlstate() == "25001");
    CHECK(std::string(e.what()).find("-- pgxform: no-transaction") != std::string::npos);
  }
  CHECK(s.state("V1__table.sql") == "applied");
  CHECK(s.state("V2__index.sql") == "pending");
}

TEST_CASE("repair records the new checksum of a changed V script, so that migrate goes on") {
  TestDatabase db;
  Scripts s(db);
  s.write("V1__one.sql", "CREATE TABLE one (a int);\n");
  s.write("V2__gone.sql", "CREATE TABLE gone (a int);\n");
  s.write("R__r.sql", "CREATE OR REPLACE VIEW r AS SELECT 1 AS a;\n");
  s.migrate();
  std::filesystem::remove(s.dir.path() + "/V2__gone.sql");
  s.write("V1__one.sql", "-- a comment added after the fact\nCREATE TABLE one (a int);\n");
  s.write("R__r.sql", "CREATE OR REPLACE VIEW r AS SELECT 1 AS a, 2 AS b;\n");
  s.write("V3__three.sql", "CREATE TABLE three (a int);\n");
  CHECK_THROWS_AS(s.migrate(), ScriptError);

  const auto result = s.migrator().repair();
  CHECK(result.updated == Files{"V1__one.sql"});
  CHECK(result.missing == Files{"V2__gone.sql"});
  CHECK(db.scalar("SELECT checksum FROM pgxform.script_history WHERE script = 'V1__one.sql'") ==
        pgxform::script_checksum("-- a comment added after the fact\nCREATE TABLE one (a int);\n"));
  // Repair changes checksums only: the R script is still to be applied, the missing row stays.
  CHECK(s.state("R__r.sql") == "outdated");
  CHECK(s.state("V2__gone.sql") == "missing");
  CHECK(s.migrator().repair().updated.empty());

  CHECK(s.migrate() == Files{"V3__three.sql", "R__r.sql"});
  CHECK(table_exists(db, "three"));
  CHECK(db.count("SELECT b FROM r") == 2);
}

TEST_CASE("two migrators at the same time apply each script exactly once") {
  TestDatabase db;
  db.exec("CREATE TABLE hits (script text)");  // no unique constraint: a second apply shows
  TempDir dir;
  dir.write("V1__one.sql", "INSERT INTO hits VALUES ('V1'); SELECT pg_sleep(0.3);\n");
  dir.write("V2__two.sql", "INSERT INTO hits VALUES ('V2'); SELECT pg_sleep(0.3);\n");
  dir.write("R__r.sql", "INSERT INTO hits VALUES ('R'); SELECT pg_sleep(0.3);\n");

  struct Outcome {
    Files applied;
    std::exception_ptr error;
  };
  Outcome outcomes[2];
  std::vector<std::thread> threads;
  for (auto& outcome : outcomes)
    threads.emplace_back([&db, &dir, &outcome] {
      try {
        auto conn = pgxform::connect(db.dsn());
        outcome.applied = ScriptMigrator(*conn, "pgxform", dir.path()).migrate();
      } catch (...) {
        outcome.error = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();

  for (auto& outcome : outcomes)
    if (outcome.error) CHECK_NOTHROW(std::rethrow_exception(outcome.error));
  Files all = outcomes[0].applied;
  all.insert(all.end(), outcomes[1].applied.begin(), outcomes[1].applied.end());
  std::sort(all.begin(), all.end());
  CHECK(all == Files{"R__r.sql", "V1__one.sql", "V2__two.sql"});
  CHECK(db.scalar("SELECT string_agg(script || ':' || n, ' ' ORDER BY script) FROM"
                  " (SELECT script, count(*) AS n FROM hits GROUP BY script) x") ==
        "R:1 V1:1 V2:1");
  CHECK(history_rows(db) == 3);
}

TEST_CASE(
    "a migrator waiting behind another session's lock gives up after lock_timeout with a "
    "clear message") {
  TestDatabase db;
  Scripts s(db);
  s.write("V1__one.sql", "CREATE TABLE one (a int);\n");
  pqxx::connection holder(db.dsn());
  pqxx::nontransaction hold(holder);
  const pgxform::LockKey scripts = pgxform::scripts_lock(pgxform::StateSchema("pgxform"));
  pgxform::session_lock(hold, scripts);

  // On its own thread, so that a migrator that would wait forever is let through after a
  // while (and then fails the checks) instead of hanging the test.
  auto waiting = std::async(std::launch::async, [&] {
    return message_of([&] { s.migrator(std::chrono::milliseconds(300)).migrate(); });
  });
  if (waiting.wait_for(std::chrono::seconds(20)) != std::future_status::ready)
    hold.exec("SELECT pg_advisory_unlock_all()");
  const std::string message = waiting.get();
  CHECK(message.find("another session is applying scripts") == 0);
  CHECK(message.find("held by backend " + std::to_string(holder.backendpid())) !=
        std::string::npos);
  CHECK(message.find("300 ms") != std::string::npos);
  CHECK_FALSE(table_exists(db, "one"));
  CHECK(history_rows(db) == 0);

  pgxform::session_unlock(hold, scripts);
  CHECK(s.migrate() == Files{"V1__one.sql"});
}

TEST_CASE("info writes nothing: without a state schema every script is pending") {
  TestDatabase db;
  Scripts s(db);
  s.write("V1__one.sql", "CREATE TABLE one (a int);\n");
  s.write("R__r.sql", "CREATE TABLE r (a int);\n");
  REQUIRE_FALSE(db.schema_exists("pgxform"));
  const auto info = s.migrator().info();
  REQUIRE(info.size() == 2);
  CHECK(info[0].state == ScriptState::pending);
  CHECK(info[1].state == ScriptState::pending);
  CHECK_FALSE(db.schema_exists("pgxform"));
  CHECK_FALSE(table_exists(db, "one"));
}

TEST_CASE("the sample's scripts directory applies its V and R scripts and ignores the rest") {
  TestDatabase db;
  std::ifstream in(source_dir() + "/sql/legacy_schema.sql");
  std::stringstream legacy;
  legacy << in.rdbuf();
  db.exec(legacy.str());
  auto conn = pgxform::connect(db.dsn());
  ScriptMigrator migrator(*conn, "pgxform", source_dir() + "/sql");
  CHECK(migrator.migrate() == Files{"V1__target_schemas.sql", "R__transforms.sql"});
  CHECK(db.schema_exists("orders"));
  CHECK(db.scalar("SELECT to_regprocedure('xf.customers(bigint, bigint)') IS NOT NULL") == "t");
  CHECK(migrator.migrate().empty());
}

TEST_CASE(
    "another migration's V1 in a shared state schema is a different script: migrate and "
    "repair refuse it without advising repair, and its own state schema lets it through") {
  TestDatabase db;
  db.exec(
      "CREATE SCHEMA wide; CREATE TABLE wide.t (id bigint PRIMARY KEY);"
      "INSERT INTO wide.t SELECT generate_series(1, 10);"
      "CREATE SCHEMA many; CREATE TABLE many.u (id bigint PRIMARY KEY);"
      "INSERT INTO many.u SELECT generate_series(1, 10);");
  TempDir tmp;
  const auto init = [&](const std::string& schema) {
    const std::string dir = tmp.path() + "/" + schema;
    const auto r = run_cli({"init", "--schema", schema, "--dir", dir, "--dsn", db.dsn()});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return dir + "/jobs.yaml";
  };
  const std::string wide = init("wide"), many = init("many");
  REQUIRE(run_cli({"migrate", "-f", wide, "--dsn", db.dsn()}).exit_code == 0);

  const auto migrate = run_cli({"migrate", "-f", many, "--dsn", db.dsn()});
  INFO(migrate.err);
  CHECK(migrate.exit_code == 2);
  CHECK_THAT(migrate.err,
             Catch::Contains("V1__many_new_schema.sql: version 1 is applied already as another "
                             "script, V1__wide_new_schema.sql") &&
                 Catch::Contains("this is a different script, which was never applied") &&
                 Catch::Contains("give this one a state schema of its own"));
  CHECK_THAT(migrate.err, !Catch::Contains("run pgxform repair"));
  const auto info = run_cli({"info", "-f", many, "--dsn", db.dsn()});
  CHECK_THAT(info.out, Catch::Contains("conflict") &&
                           Catch::Contains("version 1 was applied as V1__wide_new_schema.sql"));

  const auto repair = run_cli({"repair", "-f", many, "--dsn", db.dsn()});
  CHECK(repair.exit_code == 2);
  CHECK_THAT(repair.err, Catch::Contains("this is a different script"));
  CHECK(db.scalar("SELECT script FROM pgxform.script_history WHERE version = '1'") ==
        "V1__wide_new_schema.sql");
  CHECK_FALSE(db.schema_exists("many_new"));

  // The way out: a state schema of its own.
  std::string yaml = read_file(many);
  yaml.replace(yaml.find("state_schema: pgxform"), 21, "state_schema: pgxform_many");
  std::ofstream(many) << yaml;
  const auto own = run_cli({"run", "-f", many, "--dsn", db.dsn()});
  INFO(own.err);
  CHECK(own.exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM many_new.u") == 10);
}

TEST_CASE("scripts holding a NUL byte or a COMMIT are refused at their line, nothing applied") {
  TestDatabase db;
  TempDir dir;
  std::filesystem::create_directory(dir.path() + "/sql");
  const auto path = dir.write("jobs.yaml",
                              "version: 1\nlists:\n  - name: l\n    jobs:\n"
                              "      - {name: s, sql: SELECT 1}\n");
  for (const auto& [script, problem] :
       {std::pair<std::string, std::string>{
            "CREATE TABLE one (a int);\nSELECT 1;" + std::string(1, '\0') + "\nDROP TABLE one;",
            "V1__one.sql:2: holds a NUL byte"},
        {"CREATE TABLE one (a int);\nCOMMIT;\nSELECT 1/0;", "V1__one.sql:2: COMMIT"}}) {
    dir.write("sql/V1__one.sql", script);
    const auto r = run_cli(with_db(db, path, {"migrate"}));
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains(problem) && Catch::Contains("nothing was applied"));
    CHECK(db.count("SELECT count(*) FROM pg_class WHERE relname = 'one'") == 0);
    CHECK_FALSE(db.schema_exists("pgxform"));
  }
  // A no-transaction script may do what it likes: it runs outside pgxform's transaction.
  dir.write("sql/V1__one.sql", "-- pgxform: no-transaction\nVACUUM;");
  CHECK(run_cli(with_db(db, path, {"migrate"})).exit_code == 0);
}
