// What text may reach the database or a log line, and SQL text read for transaction control
// (pure): the classes of input the hardening review found breaking things.
#include "base/text_check.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "base/sql_text.h"
#include "output/logging.h"
#include "plan/scheduler.h"
#include "state/state_locks.h"

using namespace std::string_literals;
using pgxform::find_transaction_control;
using pgxform::name_flaw;
using pgxform::text_flaw;

TEST_CASE("text with a NUL byte or bytes that are not UTF-8 is refused, where it starts") {
  CHECK_FALSE(text_flaw("plain ascii, and UTF-8: \xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  const auto nul = text_flaw("items\0a"s);
  REQUIRE(nul);
  CHECK(nul->offset == 5);
  CHECK(nul->what == "a NUL byte");
  for (const std::string& bad :
       {"latin1 \xe9t\xe9"s,        // not UTF-8 at all
        "overlong \xc0\xaf"s,       // an overlong '/'
        "surrogate \xed\xa0\x80"s,  // U+D800
        "too high \xf4\x90\x80\x80"s, "cut short \xe2\x82"s, "stray continuation \x80"s}) {
    INFO(bad);
    const auto flaw = text_flaw(bad);
    REQUIRE(flaw);
    CHECK(flaw->what == "bytes that are not UTF-8");
    CHECK(flaw->offset == bad.find_first_of("\xe9\xc0\xed\xf4\xe2\x80"));
  }
  CHECK(pgxform::line_at("a\nb\nc", 4) == 3);
}

TEST_CASE("a name holds no control character, which could forge a log line") {
  CHECK_FALSE(name_flaw("orders-2024 \xc3\xa9t\xc3\xa9#1"));
  for (const std::string& bad :
       {"a\nb"s, "a\rb"s, "a\x1b[31mb"s, "a\tb"s, "a\x7f"s, "c1 \xc2\x85"s}) {
    INFO(bad);
    const auto flaw = name_flaw(bad);
    REQUIRE(flaw);
    CHECK(flaw->what == "a control character");
  }
  // As a value (SQL text), a tab or a newline is fine.
  CHECK_FALSE(text_flaw("SELECT 1\n\tFROM t"));
}

TEST_CASE("a name read from a catalog is made printable on one line, byte by offending byte") {
  CHECK(pgxform::printable("orders \xc3\xa9t\xc3\xa9") == "orders \xc3\xa9t\xc3\xa9");
  CHECK(pgxform::printable("a\nb\x1b[0m") == "a\\x0ab\\x1b[0m");
  CHECK(pgxform::printable("c1 \xc2\x85, latin1 \xe9") == "c1 \\xc2\\x85, latin1 \\xe9");
  CHECK(pgxform::printable("nul\0"s) == "nul\\x00");
}

TEST_CASE("a log line's control characters are escaped and its later lines indented") {
  CHECK(pgxform::contained("12:00:00 info a\x1b[31mred\rline\n") ==
        "12:00:00 info a\\x1b[31mred\\x0dline\n");
  CHECK(pgxform::contained("error: division by zero\nCONTEXT: SQL function\n") ==
        "error: division by zero\n    CONTEXT: SQL function\n");
  CHECK(pgxform::contained("keeps a\ttab") == "keeps a\ttab");
}

TEST_CASE("transaction control is found among top-level statements only") {
  const auto commit = find_transaction_control("CREATE TABLE t ();\ncommit;\nSELECT 1/0;");
  REQUIRE(commit);
  CHECK(commit->command == "COMMIT");
  CHECK(commit->offset == 19);
  for (const auto& [sql, command] :
       {std::pair<std::string, std::string>{"BEGIN; SELECT 1", "BEGIN"},
        {"start transaction isolation level serializable", "START TRANSACTION"},
        {"SELECT 1; END", "END"},
        {"INSERT INTO t VALUES (1); ROLLBACK", "ROLLBACK"},
        {"abort", "ABORT"},
        {"SAVEPOINT a; SELECT 1", "SAVEPOINT"},
        {"release savepoint a", "RELEASE"},
        {"PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"},
        {"COMMIT PREPARED 'x'", "COMMIT PREPARED"},
        {"/* a comment */ -- another\n  Commit", "COMMIT"}}) {
    INFO(sql);
    const auto found = find_transaction_control(sql);
    REQUIRE(found);
    CHECK(found->command == command);
  }
  // Inside quotes, comments, dollar-quoted bodies and BEGIN ATOMIC bodies: no statement.
  for (const std::string sql :
       {"SELECT 'x; COMMIT'; SELECT \"COMMIT; \"\"x\"", "SELECT E'it\\'s; COMMIT'",
        "-- COMMIT;\n/* nested /* COMMIT; */ still */ SELECT 1",
        "DO $$ BEGIN INSERT INTO t VALUES (1); COMMIT; END $$",
        "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $body$ BEGIN ROLLBACK; END "
        "$body$; SELECT 1",
        "CREATE FUNCTION g(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN a > "
        "0 THEN 1 ELSE 2 END; SELECT 3; END; SELECT g(1)",
        "SELECT $1, a$b FROM t; PREPARE q AS SELECT 1; SELECT 'begin'",
        "CREATE TABLE commit_log (id int); INSERT INTO commit_log VALUES (1)"}) {
    INFO(sql);
    CHECK_FALSE(find_transaction_control(sql));
  }
}

TEST_CASE("a SQL function's body is split into its top-level statements") {
  using pgxform::split_statements;
  CHECK(split_statements("\n  INSERT INTO t SELECT 1;\n  SELECT count(*) FROM t \n") ==
        std::vector<std::string>{"INSERT INTO t SELECT 1", "SELECT count(*) FROM t"});
  // Semicolons inside quotes, comments and dollar-quoted bodies end nothing; a statement of
  // only a comment is none, and a comment before a statement is left out of it.
  CHECK(split_statements("SELECT ';', \"a;b\", E'\\';'; -- x;\n/* y; */ SELECT $q$;$q$;") ==
        std::vector<std::string>{"SELECT ';', \"a;b\", E'\\';'", "SELECT $q$;$q$"});
  CHECK(split_statements("  -- only a comment\n").empty());
  CHECK(split_statements("SELECT 1;;SELECT 2") == std::vector<std::string>{"SELECT 1", "SELECT 2"});
}

TEST_CASE("a job named like another job's slice never shares its lock") {
  const pgxform::StateSchema schema("pgxform");
  const auto slice = pgxform::task_lock(schema, {"items", 1});
  const auto job = pgxform::task_lock(schema, {"items#1", 0});
  CHECK(slice.name != job.name);
  CHECK(pgxform::task_lock(schema, {"items", 0}).name == "items");
}
