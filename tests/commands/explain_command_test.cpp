// explain's pure parts: a statement rewritten with the batch's bounds for planning on its own,
// the statement that an error names, and the report's text (no database). Against a real
// PostgreSQL: explain_command_db_test.cpp.
#include "commands/explain_command.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <sstream>

#include "support/test_text.h"

using pgxform::ExplainReport;

using pgxform_test::occurrences;

namespace {

std::size_t lines_of(const std::string& text) {
  return std::size_t(std::count(text.begin(), text.end(), '\n'));
}

// The text with every run of blanks and line breaks as one space: phrases that explain wraps
// across lines read whole.
std::string unwrapped(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool blank = c == ' ' || c == '\n';
    if (blank && !out.empty() && out.back() == ' ') continue;
    out += blank ? ' ' : c;
  }
  return out;
}

const char* const k_check_text =
    R"(SELECT 1 FROM ONLY "core"."accounts" x WHERE "id" OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF x)";

// A batch of 300 rows into target.entries, whose foreign key to core.accounts is checked once
// per row: 300 checks, then the INSERT that fired them, 40 ms of its 50 in the trigger.
ExplainReport foreign_key_report() {
  ExplainReport report;
  auto& b = report.batch;
  b.job = "entries";
  b.table_sql = R"("legacy"."entries")";
  b.function_sql = R"("xf"."entries")";
  b.described = "the job's first batch";
  b.lo = "1";
  b.hi = "300";
  b.rows = 300;
  b.took_ms = 52;
  b.fully_explained_ms = 130;
  b.timed_over_ms = 1;
  for (int i = 0; i < 300; ++i)
    b.statements.push_back(*pgxform::parse_auto_explain(
        std::string("duration: 0.030 ms  plan:\nQuery Text: ") + k_check_text +
        "\nLockRows  (cost=0.28..8.30 rows=1 width=10) (actual time=0.021..0.021 rows=1 loops=1)\n"
        "  ->  Index Scan using accounts_pkey on core.accounts x  (cost=0.28..8.29 rows=1 "
        "width=10) (actual time=0.018..0.018 rows=1 loops=1)\n"
        "        Index Cond: (x.id = '7'::bigint)\n"));
  b.statements.push_back(*pgxform::parse_auto_explain(
      "duration: 50.000 ms  plan:\nQuery Text: INSERT INTO target.entries SELECT * FROM "
      "legacy.entries WHERE id BETWEEN first_key AND last_key\n"
      "Insert on target.entries  (cost=0.29..10.29 rows=0 width=0) (actual time=9.1..9.1 rows=0 "
      "loops=1)\n"
      "  ->  Index Scan using entries_pkey on legacy.entries  (cost=0.29..10.29 rows=100 width=20) "
      "(actual time=0.016..0.9 rows=300 loops=1)\n"
      "        Index Cond: ((entries.id >= $1) AND (entries.id <= $2))\n"
      "Trigger RI_ConstraintTrigger_c_16458 for constraint entries_account_id_fkey: time=40.000 "
      "calls=300\n"));
  b.foreign_keys["RI_ConstraintTrigger_c_16458"] = {
      "entries_account_id_fkey",
      "target.entries",
      "core.accounts",
      "FOREIGN KEY (account_id) REFERENCES core.accounts(id)",
      {"account_id"},
      false};
  report.summary = pgxform::summarise_statements(b.statements);
  pgxform::find_proposals(report, {"first_key", "last_key"}, "'1'::bigint", "'300'::bigint");
  return report;
}

}  // namespace

TEST_CASE("a function's statement is planned alone with its arguments replaced by the bounds") {
  const std::vector<std::string> names{"first_key", "last_key"};
  CHECK(pgxform::with_bounds(
            "SELECT * FROM t WHERE t.id BETWEEN first_key AND Last_Key AND t.first_key_x = 1",
            names, "'3'::bigint", "'9'::bigint") ==
        "SELECT * FROM t WHERE t.id BETWEEN '3'::bigint AND '9'::bigint AND t.first_key_x = 1");
  // Positional arguments; names inside quotes and qualified columns stay.
  CHECK(pgxform::with_bounds("SELECT $1, '$1 first_key', \"first_key\", x.first_key, $2", names,
                             "1",
                             "2") == "SELECT 1, '$1 first_key', \"first_key\", x.first_key, 2");
}

TEST_CASE("explain's report says why a batch failed, and when nothing inside was explained") {
  ExplainReport report;
  auto& b = report.batch;
  b.job = "items";
  b.table_sql = R"("legacy"."items")";
  b.function_sql = R"("xf"."items")";
  b.described = "the job's first batch";
  b.lo = "3";
  b.hi = "300";
  b.rows = 100;
  b.error = "(SQLSTATE 22012): ERROR:  division by zero\n";
  std::ostringstream failed;
  pgxform::print_explained(failed, report);
  CHECK(failed.str() ==
        "explain items: the job's first batch\n"
        "  keys [3, 300], 100 rows of \"legacy\".\"items\", in a transaction that is rolled back\n"
        "the function failed (SQLSTATE 22012): ERROR:  division by zero\n"
        "\n"
        "nothing was written: the transaction was rolled back.\n");

  b.error.reset();
  b.took_ms = 12.34;
  std::ostringstream empty;
  pgxform::print_explained(empty, report);
  INFO(empty.str());
  CHECK(empty.str().find("  \"xf\".\"items\" ran in 12.3 ms\n") != std::string::npos);
  CHECK(empty.str().find("no statement inside the function was explained") != std::string::npos);
  CHECK(empty.str().find("findings:\n  none: no statement reads much more") != std::string::npos);
}

TEST_CASE("a foreign key's checks are one statement with its count, the trigger one line") {
  const ExplainReport report = foreign_key_report();
  std::ostringstream summary;
  pgxform::print_explained(summary, report);
  const std::string text = summary.str();
  INFO(text);
  CHECK(lines_of(text) < 50);
  CHECK(occurrences(text, k_check_text) == 1);
  CHECK(text.find("\nstatement 1, 50.0 ms:\n    INSERT INTO target.entries") != std::string::npos);
  CHECK(text.find("\nstatement 2, run 300 times by a foreign key's trigger, 9.0 ms in all, at most "
                  "0.0 ms:\n") != std::string::npos);
  CHECK(text.find("  \"xf\".\"entries\" ran in 52.0 ms\n  (explaining each of its 301 statements "
                  "made it take 130.0 ms") != std::string::npos);
  CHECK(text.find("\ntriggers (their time is part of the statement that fired them):\n"
                  "  foreign key entries_account_id_fkey of target.entries (references "
                  "core.accounts): 300 checks, 40.0 ms, 77% of the batch (statement 1)\n") !=
        std::string::npos);
  CHECK(text.find("findings:\n  1. statement 1: the foreign key entries_account_id_fkey of ") !=
        std::string::npos);
  CHECK(unwrapped(text).find("the foreign key entries_account_id_fkey of target.entries takes 40.0 "
                             "ms, 77% of the batch, in 300 checks") != std::string::npos);
  CHECK(text.find("\n     remedy: check the constraint once, after the job") != std::string::npos);

  // --full: every statement, numbered as it ran; the findings name the INSERT by its number.
  std::ostringstream full;
  pgxform::print_explained(full, report, pgxform::PlanDetail::full);
  INFO(full.str());
  CHECK(occurrences(full.str(), k_check_text) == 300);
  CHECK(occurrences(full.str(), "\nstatement ") == 301);
  CHECK(full.str().find("\nstatement 301 of 301, 50.0 ms:\n") != std::string::npos);
  CHECK(full.str().find("  1. statement 301: the foreign key") != std::string::npos);
  CHECK(full.str().find("(statement 301)\n") != std::string::npos);
}

TEST_CASE("the statement that an error names is found in its CONTEXT or its function's body") {
  const std::string plpgsql =
      "(SQLSTATE 23505): ERROR:  duplicate key value violates unique constraint \"t_pkey\"\n"
      "DETAIL:  Key (id)=(1) already exists.\n"
      "CONTEXT:  SQL statement \"INSERT INTO \"T\" SELECT id FROM s\n"
      "    WHERE id BETWEEN first_key AND last_key\"\n"
      "PL/pgSQL function xf.items(bigint,bigint) line 5 at SQL statement";
  CHECK(pgxform::failed_statement_text(plpgsql, "items", "") ==
        "INSERT INTO \"T\" SELECT id FROM s\n    WHERE id BETWEEN first_key AND last_key");
  // A statement of another function (one the job's function calls) is not the job's.
  CHECK_FALSE(pgxform::failed_statement_text(plpgsql, "other", ""));

  const std::string sql =
      "(SQLSTATE 23505): ERROR:  duplicate key value violates unique constraint \"t_pkey\"\n"
      "DETAIL:  Key (id)=(1) already exists.\n"
      "CONTEXT:  SQL function \"items\" statement 2\n";
  const std::string body = "\n  SELECT 1;\n  INSERT INTO t SELECT 2; -- the second\n SELECT 3 ";
  CHECK(pgxform::failed_statement_text(sql, "items", body) == "INSERT INTO t SELECT 2");
  CHECK_FALSE(pgxform::failed_statement_text(sql, "items", "SELECT 1"));
  CHECK_FALSE(pgxform::failed_statement_text("(SQLSTATE 22012): ERROR:  division by zero\n",
                                             "items", body));
}

TEST_CASE("explain's report on a range processed already says so, and where to explain instead") {
  ExplainReport report;
  auto& b = report.batch;
  b.job = "items";
  b.table_sql = R"("legacy"."items")";
  b.function_sql = R"("xf"."items")";
  b.described = "no keys are left after the cursor, so its last batch again";
  b.lo = "901";
  b.hi = "1000";
  b.rows = 100;
  b.sqlstate = "23505";
  b.error =
      "(SQLSTATE 23505): ERROR:  duplicate key value violates unique constraint \"items_pkey\"";
  b.job_done = true;
  b.cursor_key = "1000";
  b.processed_by = std::make_pair(10LL, 10LL);
  b.failed_statement = pgxform::FailedStatement{
      "INSERT INTO target.items SELECT * FROM legacy.items WHERE id BETWEEN '901'::bigint AND "
      "'1000'::bigint",
      "Insert on items  (cost=0.29..10.29 rows=0 width=0)\n", ""};
  std::ostringstream done;
  pgxform::print_explained(done, report);
  INFO(done.str());
  CHECK(done.str().find("\nthe statement that failed, planned alone without running it (EXPLAIN, "
                        "estimates):\n    INSERT INTO target.items") != std::string::npos);
  CHECK(done.str().find("  plan:\n    Insert on items") != std::string::npos);
  CHECK(unwrapped(done.str())
            .find("why: keys [901, 1000] were processed already, by batch 10 of "
                  "the job") != std::string::npos);
  CHECK(unwrapped(done.str())
            .find("to explain anyway: explain a range that is not processed yet: every key of "
                  "this job is processed") != std::string::npos);

  // A job with keys left: the next batch, or --at from its cursor on.
  b.job_done = false;
  b.described = "the batch after key 900";
  std::ostringstream unfinished;
  pgxform::print_explained(unfinished, report);
  INFO(unfinished.str());
  CHECK(unwrapped(unfinished.str())
            .find("to explain anyway: explain a range that is not processed yet: pgxform explain "
                  "items (the next batch, after key 1000), or --at a key from 1000 on") !=
        std::string::npos);

  // Another failure: no guess at why.
  b.sqlstate = "22012";
  b.failed_statement.reset();
  std::ostringstream other;
  pgxform::print_explained(other, report);
  CHECK(other.str().find("why:") == std::string::npos);
}
