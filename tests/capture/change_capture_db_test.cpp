// The capture triggers of `changes: trigger` (change_capture.h) against a real PostgreSQL:
// installed by capture and by run, idempotent, dropped by capture --drop, firing for a session
// in replica mode (as a logical replication apply worker is), recording both keys of a key's
// change; and the bad inputs that must stop capture, run and catch-up before they write.
#include <catch2/catch.hpp>
#include <string>

#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;
using Catch::Matchers::Contains;

namespace {

// legacy.accounts(id int PRIMARY KEY, balance int) with ids 1..100, target.accounts, and the
// transform xf.accounts / xf.accounts_refresh(int[]).
void create_accounts(TestDatabase& db) {
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.accounts (id int PRIMARY KEY, balance int);"
      "INSERT INTO legacy.accounts SELECT g, g FROM generate_series(1, 100) g;"
      "CREATE TABLE target.accounts (id int PRIMARY KEY, balance int);"
      "CREATE FUNCTION xf.accounts(lo int, hi int) RETURNS bigint LANGUAGE sql AS $$"
      " INSERT INTO target.accounts SELECT * FROM legacy.accounts WHERE id BETWEEN lo AND hi"
      " ON CONFLICT (id) DO UPDATE SET balance = EXCLUDED.balance; SELECT 0::bigint $$;"
      "CREATE FUNCTION xf.accounts_refresh(keys int[]) RETURNS void LANGUAGE sql AS $$"
      " DELETE FROM target.accounts t WHERE t.id = ANY (keys);"
      " INSERT INTO target.accounts SELECT * FROM legacy.accounts WHERE id = ANY (keys) $$;");
}

std::string accounts_yaml(const std::string& refresh = "xf.accounts_refresh",
                          const std::string& changes = "        changes: trigger\n") {
  return "version: 1\n"
         "lists:\n"
         "  - name: main\n"
         "    jobs:\n"
         "      - name: accounts\n"
         "        table: legacy.accounts\n"
         "        key: id\n"
         "        function: xf.accounts\n" +
         changes + (refresh.empty() ? "" : "        refresh_function: " + refresh + "\n");
}

long long capture_triggers_on_accounts(TestDatabase& db) {
  return db.count(
      "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'legacy.accounts'::regclass"
      " AND tgname LIKE 'pgxform\\_%'");
}

}  // namespace

TEST_CASE("capture installs its four triggers once and capture --drop removes them", "[capture]") {
  TestDatabase db;
  create_accounts(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", accounts_yaml());
  const auto first = run_with_db(db, path, {"capture"});
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  CHECK_THAT(first.out, Contains("accounts: capture installed on \"legacy\".\"accounts\""));
  CHECK(capture_triggers_on_accounts(db) == 4);
  const auto again = run_with_db(db, path, {"capture"});
  REQUIRE(again.exit_code == 0);
  CHECK_THAT(again.out, Contains("accounts: capture already on"));
  CHECK(capture_triggers_on_accounts(db) == 4);
  // validate no longer warns once they are there.
  CHECK_THAT(run_with_db(db, path, {"validate"}).out, !Contains("no capture trigger"));
  db.exec("UPDATE legacy.accounts SET balance = 0 WHERE id <= 3");
  const auto dropped = run_with_db(db, path, {"capture", "--drop"});
  REQUIRE(dropped.exit_code == 0);
  CHECK_THAT(dropped.out, Contains("accounts: capture dropped; 3 changes still pending"));
  CHECK(capture_triggers_on_accounts(db) == 0);
  db.exec("UPDATE legacy.accounts SET balance = 1 WHERE id <= 3");
  CHECK(db.count("SELECT count(*) FROM pgxform.change_log") == 3);
}

TEST_CASE("run installs the capture triggers before its first batch and validate warns before",
          "[capture]") {
  TestDatabase db;
  create_accounts(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", accounts_yaml());
  const auto validate = run_with_db(db, path, {"validate"});
  CHECK(validate.exit_code == 0);
  CHECK_THAT(validate.out, Contains("changes: trigger, but no capture trigger on"));
  CHECK_THAT(run_with_db(db, path, {"plan"}).out,
             Contains("capturing changes for catch-up by xf.accounts_refresh"));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  CHECK(capture_triggers_on_accounts(db) == 4);
  CHECK(db.count("SELECT count(*) FROM pgxform.change_log") == 0);
}

TEST_CASE(
    "the triggers record each key once per statement and both keys of a key's change and "
    "fire in replica mode as an apply worker does",
    "[capture]") {
  TestDatabase db;
  create_accounts(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", accounts_yaml());
  REQUIRE(run_with_db(db, path, {"capture"}).exit_code == 0);
  db.exec("UPDATE legacy.accounts SET balance = balance + 1 WHERE id <= 10");
  CHECK(db.count("SELECT count(*) FROM pgxform.change_log") == 10);
  db.exec("UPDATE legacy.accounts SET id = 1000 WHERE id = 50");
  CHECK(db.scalar("SELECT string_agg(key, ',' ORDER BY key) FROM pgxform.change_log"
                  " WHERE id > (SELECT min(id) + 9 FROM pgxform.change_log)") == "1000,50");
  // A logical replication apply worker runs with session_replication_role = replica.
  db.exec(
      "SET session_replication_role = replica; DELETE FROM legacy.accounts WHERE id = 60;"
      "INSERT INTO legacy.accounts VALUES (2000, 1); RESET session_replication_role");
  CHECK(db.count("SELECT count(*) FROM pgxform.change_log WHERE key IN ('60', '2000')") == 2);
  CHECK(db.count("SELECT count(*) FROM pgxform.change_log") == 14);
}

TEST_CASE("changes: trigger without a refresh function stops every command before it writes",
          "[capture][bad-input]") {
  TestDatabase db;
  create_accounts(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", accounts_yaml(""));
  for (const auto& command : {"run", "capture", "catch-up"}) {
    const auto r = run_with_db(db, path, {command});
    INFO(command);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains("jobs.yaml:9: job 'accounts' has changes: trigger but no "
                               "refresh_function"));
  }
  CHECK_FALSE(db.schema_exists("pgxform"));
  CHECK(capture_triggers_on_accounts(db) == 0);
}

TEST_CASE("a refresh function of the wrong signature stops capture and run and catch-up",
          "[capture][bad-input]") {
  TestDatabase db;
  create_accounts(db);
  db.exec(
      "CREATE FUNCTION xf.wrong(lo int, hi int) RETURNS void LANGUAGE sql AS $$ SELECT $$;"
      "CREATE FUNCTION xf.returns_text(keys int[]) RETURNS text LANGUAGE sql AS"
      " $$ SELECT 'x' $$");
  TempDir dir;
  for (const auto& [refresh, message] :
       {std::pair<std::string, std::string>{"xf.wrong",
                                            "does not accept one argument of type "
                                            "integer[]"},
        {"xf.missing", "refresh_function xf.missing does not exist"},
        {"xf.returns_text", "returns text; it must return a row count"}}) {
    const auto path = dir.write("jobs.yaml", accounts_yaml(refresh));
    for (const auto& command : {"run", "capture", "catch-up", "validate"}) {
      const auto r = run_with_db(db, path, {command});
      INFO(command << " " << refresh);
      CHECK(r.exit_code == 2);
      CHECK_THAT(r.err + r.out, Contains(message) && Contains("job 'accounts'"));
    }
  }
  CHECK_FALSE(db.schema_exists("pgxform"));
  CHECK(capture_triggers_on_accounts(db) == 0);
}

TEST_CASE("capture on a table without a unique index on the key is refused before it writes",
          "[capture][bad-input]") {
  TestDatabase db;
  create_accounts(db);
  db.exec(
      "ALTER TABLE legacy.accounts DROP CONSTRAINT accounts_pkey;"
      "CREATE INDEX ON legacy.accounts (id)");
  TempDir dir;
  const auto path = dir.write("jobs.yaml", accounts_yaml());
  for (const auto& command : {"capture", "run", "catch-up"}) {
    const auto r = run_with_db(db, path, {command});
    INFO(command);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains("has no unique index or primary key on id"));
  }
  CHECK_FALSE(db.schema_exists("pgxform"));
  CHECK(capture_triggers_on_accounts(db) == 0);
}

TEST_CASE("catch-up and capture refuse a job without changes: trigger", "[capture][bad-input]") {
  TestDatabase db;
  create_accounts(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", accounts_yaml("", ""));
  const auto r = run_with_db(db, path, {"catch-up", "accounts"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains("job 'accounts' has no changes: trigger"));
  const auto none = run_with_db(db, path, {"capture"});
  CHECK(none.exit_code == 2);
  CHECK_THAT(none.err, Contains("no job has changes: trigger"));
  CHECK(run_with_db(db, path, {"catch-up", "--until", "-1"}).exit_code == 2);
  CHECK_FALSE(db.schema_exists("pgxform"));
}

TEST_CASE("capture puts the triggers on the also: tables too, records their column, and drops them",
          "[capture]") {
  Shop shop(20, 2);
  const auto captured = shop.pgxform({"capture"});
  INFO(captured.err);
  REQUIRE(captured.exit_code == 0);
  CHECK_THAT(
      captured.out,
      Contains("lines: capture installed on \"legacy\".\"order_lines\", \"legacy\".\"orders\""));
  const auto triggers_on = [&](const std::string& table) {
    return shop.db.count("SELECT count(*) FROM pg_trigger WHERE tgrelid = '" + table +
                         "'::regclass AND tgname LIKE 'pgxform\\_%'");
  };
  // The orders' own four, and the lines' four for their also: entry.
  CHECK(triggers_on("legacy.orders") == 8);
  CHECK(triggers_on("legacy.order_lines") == 4);
  shop.db.exec("UPDATE legacy.orders SET status = 'paid' WHERE id IN (3, 4)");
  CHECK(shop.db.scalar("SELECT string_agg(job || ':' || via || ':' || key, ',' ORDER BY job, key)"
                       " FROM pgxform.change_log") == "lines:1:3,lines:1:4,orders:0:3,orders:0:4");
  // In replica mode, as an apply worker.
  shop.db.exec(
      "SET session_replication_role = replica; DELETE FROM legacy.orders WHERE id = 5;"
      " RESET session_replication_role");
  CHECK(shop.db.count("SELECT count(*) FROM pgxform.change_log WHERE via = 1 AND key = '5'") == 1);
  // An also: entry removed from the file: its triggers go with the next capture.
  std::string yaml = Shop::yaml(50);
  yaml.replace(
      yaml.find("        changes:\n"),
      yaml.find("        refresh_function: xf.lines_refresh") - yaml.find("        changes:\n"),
      "        changes: trigger\n");
  const auto fewer = shop.dir.write("fewer.yaml", yaml);
  REQUIRE(run_with_db(shop.db, fewer, {"capture", "lines"}).exit_code == 0);
  CHECK(triggers_on("legacy.orders") == 4);
  const auto dropped = shop.pgxform({"capture", "--drop"});
  REQUIRE(dropped.exit_code == 0);
  CHECK(triggers_on("legacy.orders") == 0);
  CHECK(triggers_on("legacy.order_lines") == 0);
  CHECK(shop.db.count(
            "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid ="
            " p.pronamespace WHERE n.nspname = 'pgxform' AND p.proname LIKE 'capture%'") == 0);
}

TEST_CASE("an also: entry naming what does not exist stops capture, run and catch-up at its line",
          "[capture][bad-input]") {
  Shop shop(5, 1);
  shop.db.exec(
      "CREATE FUNCTION xf.wrong_keys(ids text) RETURNS SETOF bigint LANGUAGE sql AS"
      " $$ SELECT 1::bigint $$");
  const std::string good = "{table: legacy.orders, column: id, match: order_id}";
  for (const auto& [entry, message] :
       {std::pair<std::string, std::string>{"{table: legacy.ordrs, column: id, match: order_id}",
                                            "changes.also table legacy.ordrs does not exist"},
        {"{table: legacy.orders, column: order_no, match: order_id}",
         "changes.also table legacy.orders has no column 'order_no'"},
        {"{table: legacy.orders, column: id, match: orderid}",
         "match names no column of legacy.order_lines ('orderid')"},
        {"{table: legacy.orders, column: id, keys_function: xf.wrong_keys}",
         "keys_function xf.wrong_keys does not accept one argument of type bigint[]"},
        {"{table: legacy.order_lines, column: id, match: id}",
         "is the job's own table, whose changes are captured already"}}) {
    std::string yaml = Shop::yaml(50);
    yaml.replace(yaml.find(good), good.size(), entry);
    const auto path = shop.dir.write("bad.yaml", yaml);
    for (const auto& command : {"capture", "run", "catch-up", "validate"}) {
      const auto r = run_with_db(shop.db, path, {command});
      INFO(command << " " << entry << "\n" << r.err << r.out);
      CHECK(r.exit_code == 2);
      CHECK_THAT(r.err + r.out, Contains("bad.yaml:24: job 'lines': ") && Contains(message));
    }
  }
  CHECK_FALSE(shop.db.schema_exists("pgxform"));
}
