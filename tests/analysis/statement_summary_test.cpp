// A batch's statements taken together (statement_summary.h): a foreign key's checks, one per
// row, as one statement; triggers added up; the timing run; the findings about the batch as a
// whole, as PostgreSQL 15's auto_explain words them.
#include "analysis/statement_summary.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

using pgxform::Finding;
using pgxform::parse_auto_explain;

namespace {

// A batch of 3 rows into a table with a foreign key, as auto_explain sends it with nested
// statements on: one check per row (each a statement of its own, ending before the INSERT that
// fired it), then the INSERT, whose plan ends with the trigger's line.
const char* const k_fk_check = R"(NOTICE:  duration: %s ms  plan:
Query Text: SELECT 1 FROM ONLY "core"."accounts" x WHERE "id" OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF x
LockRows  (cost=0.28..8.30 rows=1 width=10) (actual time=0.021..0.021 rows=1 loops=1)
  Output: 1, ctid
  Buffers: shared hit=4
  ->  Index Scan using accounts_pkey on core.accounts x  (cost=0.28..8.29 rows=1 width=10) (actual time=0.018..0.018 rows=1 loops=1)
        Output: 1, ctid
        Index Cond: (x.id = '%s'::bigint)
        Buffers: shared hit=3
)";

const char* const k_fk_insert = R"(NOTICE:  duration: 1.129 ms  plan:
Query Text: 
  INSERT INTO target.entries SELECT id, account_id, amount FROM legacy.entries WHERE id BETWEEN first_key AND last_key;
  SELECT 3::bigint 
Insert on target.entries  (cost=0.29..10.29 rows=0 width=0) (actual time=0.181..0.191 rows=0 loops=1)
  Buffers: shared hit=26 read=1 dirtied=3 written=2
  ->  Index Scan using entries_pkey on legacy.entries entries_1  (cost=0.29..10.29 rows=100 width=20) (actual time=0.016..0.018 rows=3 loops=1)
        Output: entries_1.id, entries_1.account_id, entries_1.amount
        Index Cond: ((entries_1.id >= $1) AND (entries_1.id <= $2))
        Buffers: shared hit=3
Trigger RI_ConstraintTrigger_c_16458 for constraint entries_account_id_fkey: time=0.925 calls=3
)";

// The SQL function's second statement: the same Query Text (the whole body), another plan.
const char* const k_fk_select = R"(NOTICE:  duration: 0.002 ms  plan:
Query Text: 
  INSERT INTO target.entries SELECT id, account_id, amount FROM legacy.entries WHERE id BETWEEN first_key AND last_key;
  SELECT 3::bigint 
Result  (cost=0.00..0.01 rows=1 width=8) (actual time=0.000..0.000 rows=1 loops=1)
  Output: '3'::bigint
)";

std::string filled(const char* format, const std::string& a, const std::string& b) {
  std::string text = format;
  text.replace(text.find("%s"), 2, a);
  text.replace(text.find("%s"), 2, b);
  return text;
}

// The statements of that batch: checks of 0.02, 0.05 and 0.01 ms, the INSERT, the SELECT.
std::vector<pgxform::StatementPlan> fk_batch() {
  std::vector<pgxform::StatementPlan> statements;
  for (const auto& [ms, key] :
       {std::pair<std::string, std::string>{"0.020", "2"}, {"0.050", "3"}, {"0.010", "4"}})
    statements.push_back(*parse_auto_explain(filled(k_fk_check, ms, key)));
  statements.push_back(*parse_auto_explain(k_fk_insert));
  statements.push_back(*parse_auto_explain(k_fk_select));
  return statements;
}

pgxform::ForeignKeyTrigger accounts_fk() {
  return {"entries_account_id_fkey",
          "target.entries",
          "core.accounts",
          "FOREIGN KEY (account_id) REFERENCES core.accounts(id)",
          {"account_id"},
          false};
}

}  // namespace

TEST_CASE("a foreign key's statements are told from the function's") {
  using pgxform::statement_kind;
  using pgxform::StatementKind;
  CHECK(
      statement_kind(
          R"(SELECT 1 FROM ONLY "core"."accounts" x WHERE "id" OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF x)") ==
      StatementKind::foreign_key);
  CHECK(
      statement_kind(
          R"(SELECT 1 FROM "core"."parts" x WHERE $1 OPERATOR(pg_catalog.=) "part_id" AND $2 OPERATOR(pg_catalog.=) "k" FOR KEY SHARE OF x)") ==
      StatementKind::foreign_key);
  CHECK(statement_kind(
            R"(DELETE FROM ONLY "core"."lines" WHERE $1 OPERATOR(pg_catalog.=) "order_id")") ==
        StatementKind::foreign_key);
  CHECK(
      statement_kind(
          R"(UPDATE ONLY "core"."lines" SET "order_id" = NULL WHERE $1 OPERATOR(pg_catalog.=) "order_id")") ==
      StatementKind::foreign_key);
  CHECK(statement_kind("SELECT 1 FROM target.items t WHERE t.id = 3") == StatementKind::ordinary);
  CHECK(statement_kind("DELETE FROM target.items WHERE id BETWEEN first_key AND last_key") ==
        StatementKind::ordinary);
}

TEST_CASE("statements differing only in blanks and constants read the same") {
  using pgxform::normalised_text;
  CHECK(normalised_text("INSERT INTO t1 VALUES (42, 'it''s',\n   3.5)") ==
        "INSERT INTO t1 VALUES (?, ?, ?)");
  CHECK(normalised_text("SELECT $1, \"Col 2\" FROM x2 WHERE a = 7") ==
        "SELECT $1, \"Col 2\" FROM x2 WHERE a = ?");
  CHECK(normalised_text("SELECT 1") == normalised_text("  SELECT   2 "));
}

TEST_CASE("a foreign key's checks, one per row, are one statement with its count and times") {
  const auto statements = fk_batch();
  const auto summary = pgxform::summarise_statements(statements);
  // The function's two statements (one text, two plans) first, then the checks.
  REQUIRE(summary.groups.size() == 3);
  CHECK(summary.groups[0].runs == std::vector<std::size_t>{3});
  CHECK(summary.groups[1].runs == std::vector<std::size_t>{4});
  const auto& checks = summary.groups[2];
  CHECK(checks.kind == pgxform::StatementKind::foreign_key);
  CHECK(checks.runs == std::vector<std::size_t>{0, 1, 2});
  CHECK(checks.slowest == 1);
  CHECK(checks.total_ms == Approx(0.08));
  CHECK(checks.max_ms == Approx(0.05));
  REQUIRE(summary.triggers.size() == 1);
  CHECK(summary.triggers[0].trigger.calls == 3);
  CHECK(summary.triggers[0].group == 0);  // the INSERT fired it
}

TEST_CASE("the timing run's figures replace those of the statements that ran once") {
  auto first = fk_batch();
  auto second = fk_batch();
  second[3].duration_ms = 0.4;  // the INSERT, its checks no longer explained
  second[3].triggers[0].time_ms = 0.3;
  second[1].duration_ms = 9;  // a check: the first run's stand
  pgxform::take_timing(first, second);
  CHECK(first[3].duration_ms == Approx(0.4));
  CHECK(first[3].triggers[0].time_ms == Approx(0.3));
  CHECK(first[1].duration_ms == Approx(0.05));
  // A second run that explained only the slow statements has fewer of them.
  pgxform::take_timing(first, {second[3]});
  CHECK(first.size() == 5);
}

TEST_CASE("foreign-key checks taking most of the batch are a finding with the remedy") {
  const auto statements = fk_batch();
  const auto summary = pgxform::summarise_statements(statements);
  const std::map<std::string, pgxform::ForeignKeyTrigger> fks{
      {"RI_ConstraintTrigger_c_16458", accounts_fk()}};
  // 0.925 ms of triggers in a batch of 1.2 ms (at least 1 ms of trigger time counts): none.
  CHECK(pgxform::find_costly_repeats(summary, statements, fks, {1.2}, 3).empty());
  auto heavy = statements;
  heavy[3].triggers[0].time_ms = 30;
  const auto findings =
      pgxform::find_costly_repeats(pgxform::summarise_statements(heavy), heavy, fks, {40}, 3);
  REQUIRE(findings.size() == 1);
  const auto& [f, group] = findings[0];
  CHECK(group == 0);
  CHECK(f.kind == Finding::Kind::foreign_key);
  CHECK(f.text.find("the foreign key entries_account_id_fkey of target.entries takes 30.0 ms, 75% "
                    "of the batch, in 3 checks") == 0);
  CHECK(f.remedy.find("ALTER TABLE target.entries DROP CONSTRAINT entries_account_id_fkey;") !=
        std::string::npos);
  CHECK(f.remedy.find("ADD CONSTRAINT entries_account_id_fkey FOREIGN KEY (account_id) REFERENCES "
                      "core.accounts(id) NOT VALID;") != std::string::npos);
  CHECK(f.remedy.find("VALIDATE CONSTRAINT entries_account_id_fkey") != std::string::npos);
  CHECK(f.index_sql().empty());  // the referenced key has its index already
  // Under half the batch: no finding.
  CHECK(pgxform::find_costly_repeats(pgxform::summarise_statements(heavy), heavy, fks, {61}, 3)
            .empty());
}

TEST_CASE("a foreign key's check that scans the referencing table asks for an index on it") {
  // Deleting parents: each check reads the whole child table, which has no index on its key.
  const char* const check = R"(NOTICE:  duration: 0.381 ms  plan:
Query Text: SELECT 1 FROM ONLY "core"."lines" x WHERE $1 OPERATOR(pg_catalog.=) "order_id" FOR KEY SHARE OF x
LockRows  (cost=0.00..54.51 rows=1 width=10) (actual time=0.379..0.380 rows=0 loops=1)
  ->  Seq Scan on core.lines x  (cost=0.00..54.50 rows=1 width=10) (actual time=0.379..0.379 rows=0 loops=1)
        Filter: ('1'::bigint = x.order_id)
        Rows Removed by Filter: 3000
)";
  const char* const del = R"(NOTICE:  duration: 40.0 ms  plan:
Query Text: DELETE FROM core.orders WHERE id BETWEEN first_key AND last_key
Delete on core.orders  (cost=0.29..10.29 rows=0 width=0) (actual time=0.1..0.1 rows=0 loops=1)
  ->  Index Scan using orders_pkey on core.orders  (cost=0.29..10.29 rows=100 width=6) (actual time=0.016..0.018 rows=100 loops=1)
        Index Cond: ((orders.id >= $1) AND (orders.id <= $2))
Trigger RI_ConstraintTrigger_a_20001 for constraint lines_order_id_fkey: time=38.000 calls=100
)";
  std::vector<pgxform::StatementPlan> statements;
  for (int i = 0; i < 100; ++i) statements.push_back(*parse_auto_explain(check));
  statements.push_back(*parse_auto_explain(del));
  const auto summary = pgxform::summarise_statements(statements);
  const std::map<std::string, pgxform::ForeignKeyTrigger> fks{
      {"RI_ConstraintTrigger_a_20001",
       {"lines_order_id_fkey",
        "core.lines",
        "core.orders",
        "FOREIGN KEY (order_id) REFERENCES core.orders(id)",
        {"order_id"},
        true}}};
  const auto findings = pgxform::find_costly_repeats(summary, statements, fks, {41}, 100);
  REQUIRE(findings.size() == 1);
  const Finding& f = findings[0].first;
  CHECK(f.text.find("one per row of core.orders deleted or updated") != std::string::npos);
  CHECK(f.text.find("Each check reads the whole table (Seq Scan, 3000 rows)") != std::string::npos);
  CHECK(f.index_sql() == "CREATE INDEX ON core.lines (order_id)");
}

TEST_CASE("a row trigger or a statement run per row that takes most of the batch is a finding") {
  const char* const insert = R"(NOTICE:  duration: 50.0 ms  plan:
Query Text: INSERT INTO target.items SELECT * FROM legacy.items WHERE id BETWEEN $1 AND $2
Insert on target.items  (cost=0.29..10.29 rows=0 width=0) (actual time=0.1..0.1 rows=0 loops=1)
  ->  Seq Scan on legacy.items  (cost=0.00..10.29 rows=100 width=6) (actual time=0.016..0.018 rows=200 loops=1)
Trigger audit_items: time=45.000 calls=200
)";
  const char* const audit = R"(NOTICE:  duration: 0.2 ms  plan:
Query Text: INSERT INTO audit.log VALUES (NEW.id, 'insert')
Insert on audit.log  (cost=0.00..0.01 rows=0 width=0) (actual time=0.1..0.1 rows=0 loops=1)
  ->  Result  (cost=0.00..0.01 rows=1 width=40) (actual time=0.001..0.001 rows=1 loops=1)
)";
  std::vector<pgxform::StatementPlan> statements;
  for (int i = 0; i < 200; ++i) statements.push_back(*parse_auto_explain(audit));
  statements.push_back(*parse_auto_explain(insert));
  const auto summary = pgxform::summarise_statements(statements);
  REQUIRE(summary.groups.size() == 2);
  CHECK(summary.groups[0].runs.size() == 200);  // both the function's, in order of first run
  const auto findings = pgxform::find_costly_repeats(summary, statements, {}, {60}, 200);
  REQUIRE(findings.size() == 2);
  CHECK(findings[0].first.kind == Finding::Kind::trigger);
  CHECK(findings[0].first.text ==
        "trigger audit_items takes 45.0 ms, 75% of the batch, in 200 calls: it runs once per row "
        "written.");
  CHECK(findings[0].second == 1);
  CHECK(findings[0].first.remedy.find("FOR EACH STATEMENT") != std::string::npos);
  CHECK(findings[1].first.kind == Finding::Kind::repeated_statement);
  CHECK(findings[1].second == 0);
  CHECK(findings[1].first.text.find("it runs 200 times for a batch of 200 rows, taking 40.0 ms") ==
        0);
  CHECK(pgxform::percent_of(0.1, 40) == "<1%");
}

TEST_CASE("a loop's statements are measured against the run that explained them") {
  // A PL/pgSQL loop inserting row by row: 200 INSERTs, each firing one foreign-key check. The
  // second run timed the batch at 30 ms; the INSERTs, run many times, keep the figures of the
  // first, which explained every statement and took 100 ms.
  const char* const insert = R"(NOTICE:  duration: 0.4 ms  plan:
Query Text: INSERT INTO target.lines VALUES (r.id, r.order_id)
Insert on target.lines  (cost=0.00..0.01 rows=0 width=0) (actual time=0.1..0.1 rows=0 loops=1)
  ->  Result  (cost=0.00..0.01 rows=1 width=16) (actual time=0.001..0.001 rows=1 loops=1)
Trigger RI_ConstraintTrigger_c_30001 for constraint lines_order_id_fkey: time=0.300 calls=1
)";
  std::vector<pgxform::StatementPlan> statements;
  for (int i = 0; i < 200; ++i) statements.push_back(*parse_auto_explain(insert));
  const auto summary = pgxform::summarise_statements(statements);
  REQUIRE(summary.triggers.size() == 1);
  CHECK(summary.triggers[0].trigger.time_ms == Approx(60));
  CHECK(summary.triggers[0].trigger.calls == 200);
  CHECK(summary.triggers[0].fired_by_repeats);
  const pgxform::BatchTime time{30, 100};
  CHECK(time.of(summary.triggers[0]) == 100);
  const auto findings = pgxform::find_costly_repeats(summary, statements, {}, time, 200);
  REQUIRE(findings.size() == 2);
  CHECK(findings[0].first.kind == Finding::Kind::foreign_key);
  CHECK(findings[0].first.text.find("takes 60.0 ms, 60% of the batch, in 200 checks") !=
        std::string::npos);
  CHECK(findings[1].first.kind == Finding::Kind::repeated_statement);
  CHECK(findings[1].first.text.find("taking 80.0 ms, 80% of the batch") != std::string::npos);
}
