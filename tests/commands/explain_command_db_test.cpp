// explain against a real PostgreSQL on real transforms: the planted O(N²) case
// (support/planted.h), whose sequential scan it names and whose index it proposes, writing
// nothing; a target whose foreign keys are checked once per row written (the checks, not the
// INSERT, make the batch); a done job whose plain INSERT into a table with a primary key meets
// the rows it wrote; a role that may not load auto_explain. The pure parts (the summary,
// the findings, the report's text) are in explain_command_test.cpp and query_plan_test.cpp.
#include <algorithm>
#include <catch2/catch.hpp>
#include <sstream>
#include <string>

#include "base/errors.h"
#include "commands/explain_command.h"
#include "support/fixtures.h"
#include "support/planted.h"
#include "support/prerequisite.h"
#include "support/test_db.h"
#include "support/test_text.h"

using namespace pgxform_test;

namespace {

constexpr int k_ledger_rows = 10000;
constexpr int k_ledger_batch = 5000;

// core.accounts (the parents, all there); legacy.ledger, each entry between two accounts;
// target.entries with a primary key and TWO foreign keys to core.accounts, filled by
// xf.entries with a plain INSERT ... SELECT. Every row written is checked twice, each check a
// look-up and a row lock in core.accounts: some 80% of the batch, where the threshold of the
// finding is 50%.
void create_ledger(TestDatabase& db) {
  const std::string rows = std::to_string(k_ledger_rows);
  db.exec(
      "CREATE SCHEMA core; CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE core.accounts (id bigint PRIMARY KEY, name text NOT NULL);"
      "INSERT INTO core.accounts SELECT g, 'account ' || g FROM generate_series(1, " +
      rows +
      ") g;"
      "CREATE TABLE legacy.ledger (id bigint PRIMARY KEY, account_id bigint NOT NULL,"
      " payee_id bigint NOT NULL, amount int NOT NULL);"
      "INSERT INTO legacy.ledger SELECT g, g, " +
      rows + " + 1 - g, g FROM generate_series(1, " + rows +
      ") g;"
      "CREATE TABLE target.entries (id bigint PRIMARY KEY,"
      " account_id bigint NOT NULL REFERENCES core.accounts (id),"
      " payee_id bigint NOT NULL REFERENCES core.accounts (id), amount int NOT NULL);"
      "CREATE FUNCTION xf.entries(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS $$"
      "  WITH ins AS (INSERT INTO target.entries SELECT id, account_id, payee_id, amount"
      "   FROM legacy.ledger WHERE id BETWEEN first_key AND last_key RETURNING 1)"
      "  SELECT count(*) FROM ins $$;"
      "ANALYZE core.accounts; ANALYZE legacy.ledger;");
}

std::string ledger_yaml() {
  return "version: 1\nlists:\n  - name: ledger\n    jobs:\n"
         "      - {name: entries, table: legacy.ledger, key: id, function: xf.entries,"
         " batch_size: " +
         std::to_string(k_ledger_batch) + ", target_batch_ms: 0}\n";
}

// legacy.items as in fixtures.h; two targets with a primary key, filled as the docs recommend:
// xf.plain with one INSERT ... SELECT (SQL), xf.counted with a count of the range first, then
// the same INSERT (PL/pgSQL).
void create_keyed_targets(TestDatabase& db) {
  create_items(db, 3000);
  db.exec(
      "CREATE TABLE target.plain (id bigint PRIMARY KEY, v int NOT NULL);"
      "CREATE TABLE target.counted (id bigint PRIMARY KEY, v int NOT NULL);"
      "CREATE FUNCTION xf.plain(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS $$"
      "  INSERT INTO target.plain SELECT id, v FROM legacy.items"
      "   WHERE id BETWEEN first_key AND last_key;"
      "  SELECT count(*) FROM legacy.items WHERE id BETWEEN first_key AND last_key $$;"
      "CREATE FUNCTION xf.counted(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE plpgsql AS $$ DECLARE n bigint; BEGIN"
      "  SELECT count(*) INTO n FROM legacy.items WHERE id BETWEEN first_key AND last_key;"
      "  INSERT INTO target.counted SELECT id, v FROM legacy.items"
      "   WHERE id BETWEEN first_key AND last_key;"
      "  RETURN n; END $$;");
}

std::string keyed_yaml() {
  return "version: 1\nlists:\n  - name: keyed\n    jobs:\n"
         "      - {name: plain, table: legacy.items, key: id, function: xf.plain,"
         " batch_size: 1000, target_batch_ms: 0}\n"
         "      - {name: counted, table: legacy.items, key: id, function: xf.counted,"
         " batch_size: 1000, target_batch_ms: 0}\n";
}

std::size_t lines_of(const std::string& text) {
  return std::size_t(std::count(text.begin(), text.end(), '\n'));
}

// Every run of blanks and line breaks as one space: explain wraps its findings.
std::string unwrapped(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool blank = c == ' ' || c == '\n';
    if (blank && !out.empty() && out.back() == ' ') continue;
    out += blank ? ' ' : c;
  }
  return out;
}

const char* const k_check =
    R"(SELECT 1 FROM ONLY "core"."accounts" x WHERE "id" OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF x)";

}  // namespace

TEST_CASE("explain sums up a transform whose foreign-key checks make most of the batch",
          "[timing]") {
  TestDatabase db;
  create_ledger(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", ledger_yaml());

  const auto r = run_cli(with_db(db, path, {"explain", "entries"}));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string& text = r.out;
  // Two checks per row: 10000 statements of one text, printed once with their count.
  CHECK(lines_of(text) < 80);
  CHECK(text.find("keys [1, 5000], 5000 rows of \"legacy\".\"ledger\"") != std::string::npos);
  CHECK(occurrences(text, k_check) == 1);
  CHECK(occurrences(text, "run 10000 times by a foreign key's trigger") == 1);
  // Timed again without explaining the checks, as each explained check slows the INSERT.
  CHECK(unwrapped(text).find("(explaining each of its 10001 statements made it take") !=
        std::string::npos);
  // Each foreign key on one line, with its share of the batch.
  for (const std::string fk : {"entries_account_id_fkey", "entries_payee_id_fkey"}) {
    INFO(fk);
    const auto line = text.find("\n  foreign key " + fk +
                                " of target.entries (references "
                                "core.accounts): 5000 checks, ");
    REQUIRE(line != std::string::npos);
    CHECK(
        text.substr(line, text.find('\n', line + 1) - line).find("% of the batch (statement 1)") !=
        std::string::npos);
    // A finding each, with its remedy.
    CHECK(unwrapped(text).find(". statement 1: the foreign key " + fk +
                               " of target.entries takes ") != std::string::npos);
    CHECK(unwrapped(text).find("VALIDATE CONSTRAINT " + fk) != std::string::npos);
  }
  CHECK(unwrapped(text).find("The foreign keys together take") != std::string::npos);
  CHECK(unwrapped(text).find("remedy: check the constraint once, after the job") !=
        std::string::npos);
  CHECK(db.count("SELECT count(*) FROM target.entries") == 0);

  // --full: every statement with its plan.
  const auto full = run_cli(with_db(db, path, {"explain", "entries", "--full"}));
  REQUIRE(full.exit_code == 0);
  CHECK(occurrences(full.out, k_check) == 10000);
  CHECK(occurrences(full.out, "\nstatement ") == 10001);
  CHECK(full.out.find("\nstatement 10001 of 10001, ") != std::string::npos);
  CHECK(unwrapped(full.out).find(". statement 10001: the foreign key entries_account_id_fkey") !=
        std::string::npos);
  CHECK(db.count("SELECT count(*) FROM target.entries") == 0);
}

TEST_CASE(
    "explain on a done job whose plain INSERT meets its own rows says why and shows what ran") {
  TestDatabase db;
  create_keyed_targets(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", keyed_yaml());
  const auto run = run_cli(with_db(db, path, {"run", "--threads", "1"}));
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  REQUIRE(db.count("SELECT count(*) FROM target.counted") == 3000);

  // PL/pgSQL: the count ran before the INSERT failed; CONTEXT quotes the INSERT.
  const auto counted = run_cli(with_db(db, path, {"explain", "counted"}));
  INFO(counted.out << counted.err);
  CHECK(counted.exit_code == 1);
  const std::string text = unwrapped(counted.out);
  CHECK(counted.out.find("no keys are left after the cursor, so its last batch again\n"
                         "  keys [6003, 9000], 1000 rows") != std::string::npos);
  CHECK(counted.out.find("the function failed (SQLSTATE 23505): ERROR:  duplicate key value "
                         "violates unique constraint \"counted_pkey\"") != std::string::npos);
  CHECK(counted.out.find("\nthe statements that ran before the error:\n\nstatement 1, ") !=
        std::string::npos);
  CHECK(counted.out.find("    Aggregate  (cost=") != std::string::npos);
  CHECK(counted.out.find("\nthe statement that failed, planned alone without running it (EXPLAIN, "
                         "estimates):\n    INSERT INTO target.counted SELECT id, v FROM "
                         "legacy.items") != std::string::npos);
  CHECK(counted.out.find("'6003'::bigint AND '9000'::bigint") != std::string::npos);
  CHECK(counted.out.find("  plan:\n    Insert on counted  (cost=") != std::string::npos);
  CHECK(text.find("why: keys [6003, 9000] were processed already, by batch 3 of the job") !=
        std::string::npos);
  CHECK(text.find("to explain anyway: explain a range that is not processed yet: every key of "
                  "this job is processed, so explain it where it has not run yet: before the "
                  "run, or on a copy of the database from before it.") != std::string::npos);
  CHECK(counted.out.find("\nnothing was written: the transaction was rolled back.\n") !=
        std::string::npos);

  // SQL: the INSERT is the first statement, nothing ran before it; its plan is there all the
  // same, from the function's body ("SQL function "plain" statement 1").
  const auto plain = run_cli(with_db(db, path, {"explain", "plain", "--at", "2000"}));
  INFO(plain.out << plain.err);
  CHECK(plain.exit_code == 1);
  CHECK(plain.out.find("the statements that ran before the error") == std::string::npos);
  CHECK(plain.out.find("    INSERT INTO target.plain SELECT id, v FROM legacy.items") !=
        std::string::npos);
  CHECK(plain.out.find("    Insert on plain  (cost=") != std::string::npos);
  CHECK(unwrapped(plain.out).find("why: keys [2001, 4998] were processed already, by batches 1 "
                                  "to 2 of the job") != std::string::npos);
  CHECK(unwrapped(plain.out).find("every key of this job is processed") != std::string::npos);
  CHECK(db.count("SELECT count(*) FROM target.plain") == 3000);
  CHECK(db.count("SELECT count(*) FROM target.counted") == 3000);
}

TEST_CASE("explain names the sequential scan of the planted case and proposes the index") {
  TestDatabase db;
  create_planted(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", planted_yaml());
  run_planted(db, path);
  const std::string before = planted_snapshot(db);

  // A batch from the middle of the key range, the target half full... as the run saw it.
  const std::string text = explain_text(db, path, "quadratic", std::string("60000"));
  INFO(text);
  CHECK(text.find("keys [60003, 61500], 500 rows") != std::string::npos);
  CHECK(text.find("Seq Scan on target.items") != std::string::npos);
  CHECK(text.find("findings:\n  1. statement 1: Seq Scan on target.items reads") !=
        std::string::npos);
  CHECK(text.find("proposed: CREATE INDEX ON target.items (id);") != std::string::npos);
  // With hypopg (scripts/test installs it), the index proposed is checked; without, explain says
  // so.
  if (prerequisite(
          db.scalar("SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'") == "1",
          "hypopg is not installed (Debian package postgresql-15-hypopg): the proposed index "
          "was not checked"))
    CHECK(text.find("hypopg: the planner would use it") != std::string::npos);
  else
    CHECK(text.find("hypopg is not installed") != std::string::npos);
  CHECK(text.find("nothing was written: the transaction was rolled back.") != std::string::npos);
  // The batch, the hypothetical index and hypopg itself were all rolled back.
  CHECK(planted_snapshot(db) == before);

  // The linear job reads only its batch: nothing to point out.
  const std::string linear = explain_text(db, path, "linear", std::nullopt);
  INFO(linear);
  CHECK(linear.find("no keys are left after the cursor, so its last batch again") !=
        std::string::npos);
  CHECK(linear.find("none: no statement reads much more than its batch needs") !=
        std::string::npos);
  CHECK(planted_snapshot(db) == before);

  pgxform::ExplainOptions unknown;
  unknown.file = path;
  unknown.dsn = db.dsn();
  unknown.job = "no_such_job";
  std::ostringstream ignored;
  CHECK_THROWS_AS(pgxform::explain_command(unknown, ignored), pgxform::PreflightError);
  unknown.job = "quadratic";
  unknown.at = "not a number";
  CHECK_THROWS_AS(pgxform::explain_command(unknown, ignored), pgxform::PreflightError);
}

TEST_CASE("explain by a role that may not load auto_explain says so, with the server's SQLSTATE") {
  TestDatabase db;
  create_items(db, 100);
  TestRole reader(db, "reader");
  db.exec("GRANT USAGE ON SCHEMA legacy, target, xf TO " + reader.name() + ";" +
          "GRANT SELECT ON ALL TABLES IN SCHEMA legacy TO " + reader.name());
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10));
  const auto r = run_cli({"explain", "items", "-f", path, "--dsn", reader.dsn()});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("LOAD 'auto_explain' failed (SQLSTATE 42501)") &&
                        Catch::Contains("auto_explain"));
}
