// Reading auto_explain's plans (as PostgreSQL 15 prints them) and what explain points out.
#include "analysis/query_plan.h"

#include <catch2/catch.hpp>

using pgxform::find_problems;
using pgxform::Finding;
using pgxform::parse_auto_explain;

namespace {

// The planted O(N²) transform: an anti-join against the target, which has no index on id.
const char* const k_hash_anti_join = R"(NOTICE:  duration: 7.603 ms  plan:
Query Text: INSERT INTO target.items SELECT l.id, l.v FROM legacy.items l WHERE l.id BETWEEN first_key AND last_key
   AND NOT EXISTS (SELECT 1 FROM target.items t WHERE t.id = l.id)
Insert on target.items  (cost=280.26..308.36 rows=0 width=0) (actual time=7.599..7.602 rows=0 loops=1)
  Buffers: shared hit=576 dirtied=7 written=2
  ->  Hash Anti Join  (cost=280.26..308.36 rows=250 width=12) (actual time=3.482..3.763 rows=500 loops=1)
        Output: l.id, l.v
        Hash Cond: (l.id = t.id)
        Buffers: shared hit=61
        ->  Index Scan using items_pkey on legacy.items l  (cost=0.29..24.29 rows=500 width=12) (actual time=0.028..0.140 rows=500 loops=1)
              Output: l.id, l.v
              Index Cond: ((l.id >= '30003'::bigint) AND (l.id <= '31500'::bigint))
              Buffers: shared hit=6
        ->  Hash  (cost=154.99..154.99 rows=9999 width=8) (actual time=3.359..3.360 rows=9999 loops=1)
              Output: t.id
              Buckets: 16384  Batches: 1  Memory Usage: 519kB
              Buffers: shared hit=55
              ->  Seq Scan on target.items t  (cost=0.00..154.99 rows=9999 width=8) (actual time=0.017..1.261 rows=9999 loops=1)
                    Output: t.id
                    Buffers: shared hit=55
)";

// The same after CREATE INDEX ON target.items (id).
const char* const k_indexed = R"(NOTICE:  duration: 2.054 ms  plan:
Query Text: INSERT INTO target.items SELECT l.id, l.v FROM legacy.items l WHERE l.id BETWEEN first_key AND last_key
   AND NOT EXISTS (SELECT 1 FROM target.items t WHERE t.id = l.id)
Insert on target.items  (cost=0.57..318.17 rows=0 width=0) (actual time=2.052..2.053 rows=0 loops=1)
  Buffers: shared hit=2517 dirtied=7 written=5
  ->  Nested Loop Anti Join  (cost=0.57..318.17 rows=237 width=12) (actual time=0.016..0.752 rows=500 loops=1)
        Output: l.id, l.v
        Buffers: shared hit=1008
        ->  Index Scan using items_pkey on legacy.items l  (cost=0.29..24.29 rows=500 width=12) (actual time=0.011..0.126 rows=500 loops=1)
              Output: l.id, l.v
              Index Cond: ((l.id >= '31503'::bigint) AND (l.id <= '33000'::bigint))
              Buffers: shared hit=8
        ->  Index Only Scan using items_id_idx on target.items t  (cost=0.29..0.58 rows=1 width=8) (actual time=0.001..0.001 rows=0 loops=500)
              Output: t.id
              Index Cond: (t.id = l.id)
              Heap Fetches: 0
              Buffers: shared hit=1000
)";

// A correlated sub-select in the SELECT list of a SQL function's statement: one scan per row.
const char* const k_subplan = R"(NOTICE:  duration: 20.057 ms  plan:
Query Text: 
  WITH ins AS (INSERT INTO target.items SELECT l.id, (SELECT count(*) FROM target.items t WHERE t.v = l.v)::int FROM legacy.items l
    WHERE l.id BETWEEN first_key AND last_key RETURNING 1)
  SELECT count(*) FROM ins 
Aggregate  (cost=18667.79..18667.80 rows=1 width=8) (actual time=20.053..20.055 rows=1 loops=1)
  Output: count(*)
  Buffers: shared hit=1859
  CTE ins
    ->  Insert on target.items  (cost=0.29..18665.54 rows=100 width=12) (actual time=0.611..20.026 rows=32 loops=1)
          Output: 1
          Buffers: shared hit=1859
          ->  Index Scan using items_pkey on legacy.items l  (cost=0.29..18665.54 rows=100 width=12) (actual time=0.604..19.910 rows=32 loops=1)
                Output: l.id, ((SubPlan 1))::integer
                Index Cond: ((l.id >= $1) AND (l.id <= $2))
                Buffers: shared hit=1827
                SubPlan 1
                  ->  Aggregate  (cost=186.54..186.55 rows=1 width=8) (actual time=0.620..0.620 rows=1 loops=32)
                        Output: count(*)
                        Buffers: shared hit=1824
                        ->  Seq Scan on target.items t  (cost=0.00..186.54 rows=1 width=0) (actual time=0.618..0.618 rows=0 loops=32)
                              Output: t.id, t.v
                              Filter: (t.v = l.v)
                              Rows Removed by Filter: 10499
                              Buffers: shared hit=1824
  ->  CTE Scan on ins  (cost=0.00..2.00 rows=100 width=0) (actual time=0.613..20.043 rows=32 loops=1)
        Output: ins."?column?"
        Buffers: shared hit=1859
)";

// NOT IN against a temporary table too large to hash: a materialized scan per row.
const char* const k_not_in = R"(NOTICE:  duration: 232.488 ms  plan:
Query Text: SELECT count(*) FROM legacy.items l WHERE l.id BETWEEN 50000 AND 50300 AND l.id NOT IN (SELECT id FROM tt);
Aggregate  (cost=13888.38..13888.39 rows=1 width=8) (actual time=232.475..232.477 rows=1 loops=1)
  Output: count(*)
  Buffers: shared hit=6, local hit=47, temp read=2376 written=24
  ->  Index Only Scan using items_pkey on legacy.items l  (cost=0.29..13888.25 rows=50 width=0) (actual time=2.694..229.445 rows=100 loops=1)
        Output: l.id
        Index Cond: ((l.id >= 50000) AND (l.id <= 50300))
        Filter: (NOT (SubPlan 1))
        Heap Fetches: 0
        Buffers: shared hit=6, local hit=47, temp read=2376 written=24
        SubPlan 1
          ->  Materialize  (cost=0.00..248.33 rows=10622 width=8) (actual time=0.001..1.283 rows=10531 loops=100)
                Output: tt.id
                Buffers: local hit=47, temp read=2376 written=24
                ->  Seq Scan on pg_temp.tt  (cost=0.00..153.22 rows=10622 width=8) (actual time=0.005..0.662 rows=10531 loops=1)
                      Output: tt.id
                      Buffers: local hit=47
)";

bool has(const std::vector<Finding>& findings, Finding::Kind kind) {
  for (const auto& f : findings)
    if (f.kind == kind) return true;
  return false;
}

}  // namespace

TEST_CASE("an auto_explain message is read into its statement and plan nodes") {
  const auto plan = parse_auto_explain(k_hash_anti_join);
  REQUIRE(plan);
  CHECK(plan->duration_ms == Approx(7.603));
  CHECK(plan->query_text.rfind("INSERT INTO target.items SELECT", 0) == 0);
  CHECK(plan->query_text.find("NOT EXISTS") != std::string::npos);
  REQUIRE(plan->nodes.size() == 5);
  CHECK(plan->nodes[0].type == "Insert");
  CHECK(plan->nodes[0].relation == "target.items");
  CHECK(plan->nodes[1].type == "Hash Anti Join");
  CHECK(plan->nodes[1].parent == 0);
  CHECK(plan->nodes[2].type == "Index Scan");
  CHECK(plan->nodes[2].relation == "legacy.items");
  CHECK(plan->nodes[2].alias == "l");
  CHECK(plan->nodes[3].type == "Hash");
  CHECK(plan->nodes[3].parent == 1);
  CHECK(plan->nodes[4].type == "Seq Scan");
  CHECK(plan->nodes[4].alias == "t");
  CHECK(plan->nodes[4].parent == 3);
  CHECK(plan->nodes[4].rows_read() == 9999);
  CHECK(plan->nodes[1].conditions.at(0) == "Hash Cond: (l.id = t.id)");
  CHECK(plan->plan_text.rfind("Insert on target.items", 0) == 0);
  CHECK(pgxform::plan_without_output(plan->plan_text).find("Output:") == std::string::npos);
  CHECK_FALSE(parse_auto_explain("NOTICE:  something else"));
}

TEST_CASE("a seq scan of the growing target behind an anti-join asks for an index on its key") {
  const auto plan = parse_auto_explain(k_hash_anti_join);
  const auto findings = find_problems(*plan, 500);
  REQUIRE(findings.size() == 1);
  CHECK(findings[0].kind == Finding::Kind::seq_scan);
  CHECK(findings[0].text.find("Seq Scan on target.items reads 9999 rows") != std::string::npos);
  CHECK(findings[0].index_sql() == "CREATE INDEX ON target.items (id)");
  // Against a batch as large as the table the scan is no waste.
  CHECK(find_problems(*plan, 5000).empty());
}

TEST_CASE("the same statement with the index in place has nothing to point out") {
  const auto plan = parse_auto_explain(k_indexed);
  REQUIRE(plan);
  CHECK(plan->nodes[3].loops == 500);
  CHECK(find_problems(*plan, 500).empty());
}

TEST_CASE("a sub-select run once per row is pointed out with the index it needs") {
  const auto plan = parse_auto_explain(k_subplan);
  REQUIRE(plan);
  CHECK(plan->query_text.rfind("WITH ins AS", 0) == 0);
  const auto findings = find_problems(*plan, 32);
  CHECK(has(findings, Finding::Kind::seq_scan));
  REQUIRE(has(findings, Finding::Kind::per_row_subplan));
  for (const auto& f : findings) {
    CHECK(f.index_sql() == "CREATE INDEX ON target.items (v)");
    if (f.kind == Finding::Kind::per_row_subplan)
      CHECK(f.text.find("SubPlan 1 runs once per row: 32 times") != std::string::npos);
  }
}

TEST_CASE("NOT IN against a temporary table is pointed out, with a rewrite") {
  const auto plan = parse_auto_explain(k_not_in);
  REQUIRE(plan);
  const auto findings = find_problems(*plan, 100);
  REQUIRE(has(findings, Finding::Kind::per_row_subplan));
  for (const auto& f : findings)
    if (f.kind == Finding::Kind::per_row_subplan) {
      CHECK(f.index_sql() == "CREATE INDEX ON tt (id)");
      CHECK(f.text.find("rewrite it as NOT EXISTS") != std::string::npos);
      CHECK(f.text.find("temporary table") != std::string::npos);
    }
}

TEST_CASE("a nested loop running a scan per outer row is pointed out") {
  const char* const plan_text = R"(LOG:  duration: 900.000 ms  plan:
Query Text: SELECT 1
Nested Loop  (cost=0.00..1.00 rows=1 width=0) (actual time=0.1..900.0 rows=500 loops=1)
  ->  Index Scan using items_pkey on legacy.items l  (cost=0.29..24.29 rows=500 width=12) (actual time=0.011..0.126 rows=500 loops=1)
        Index Cond: (l.id <= 1500)
  ->  Seq Scan on target.lines x  (cost=0.00..154.99 rows=1 width=8) (actual time=0.017..1.261 rows=1 loops=500)
        Filter: ((x.item_id = l.id) AND (x.kind = 'a'::text))
        Rows Removed by Filter: 20000
)";
  const auto plan = parse_auto_explain(plan_text);
  REQUIRE(plan);
  const auto findings = find_problems(*plan, 500);
  REQUIRE(has(findings, Finding::Kind::nested_loop));
  for (const auto& f : findings)
    CHECK(f.index_sql() == "CREATE INDEX ON target.lines (item_id, kind)");
}

namespace {

// An INSERT into a table with a foreign key: its plan ends with the trigger's line.
const char* const k_insert_with_trigger = R"(NOTICE:  duration: 1.129 ms  plan:
Query Text: INSERT INTO target.entries SELECT id, account_id, amount FROM legacy.entries WHERE id BETWEEN first_key AND last_key
Insert on target.entries  (cost=0.29..10.29 rows=0 width=0) (actual time=0.181..0.191 rows=0 loops=1)
  Buffers: shared hit=26 read=1 dirtied=3 written=2
  ->  Index Scan using entries_pkey on legacy.entries entries_1  (cost=0.29..10.29 rows=100 width=20) (actual time=0.016..0.018 rows=3 loops=1)
        Output: entries_1.id, entries_1.account_id, entries_1.amount
        Index Cond: ((entries_1.id >= $1) AND (entries_1.id <= $2))
        Buffers: shared hit=3
Trigger RI_ConstraintTrigger_c_16458 for constraint entries_account_id_fkey: time=0.925 calls=3
)";

}  // namespace

TEST_CASE("a plan's trigger lines are read with their time and calls") {
  const auto plan = parse_auto_explain(k_insert_with_trigger);
  REQUIRE(plan);
  REQUIRE(plan->triggers.size() == 1);
  const auto& t = plan->triggers[0];
  CHECK(t.name == "RI_ConstraintTrigger_c_16458");
  CHECK(t.constraint == "entries_account_id_fkey");
  CHECK(t.relation.empty());
  CHECK(t.time_ms == Approx(0.925));
  CHECK(t.calls == 3);
  CHECK(t.foreign_key());
  // The trigger line is no plan node, and the plan text keeps it.
  CHECK(plan->nodes.size() == 2);
  CHECK(plan->plan_text.find("Trigger RI_ConstraintTrigger_c_16458") != std::string::npos);

  // An ordinary trigger, on one of several tables written; without VERBOSE, no name.
  const auto audit = parse_auto_explain(
      "duration: 3.0 ms  plan:\nQuery Text: INSERT INTO t VALUES (1)\n"
      "Insert on public.t  (cost=0.00..0.01 rows=0 width=0) (actual time=0.1..0.1 rows=0 "
      "loops=1)\nTrigger audit_entries on t: time=2.952 calls=3\n"
      "Trigger for constraint t_fkey on t: time=1.5 calls=2\n");
  REQUIRE(audit);
  REQUIRE(audit->triggers.size() == 2);
  CHECK(audit->triggers[0].name == "audit_entries");
  CHECK(audit->triggers[0].relation == "t");
  CHECK(audit->triggers[0].constraint.empty());
  CHECK_FALSE(audit->triggers[0].foreign_key());
  CHECK(audit->triggers[1].name.empty());
  CHECK(audit->triggers[1].constraint == "t_fkey");
  CHECK(audit->triggers[1].calls == 2);
}

TEST_CASE("the tables a planned query reads without a bound are found at any depth of its plan") {
  // EXPLAIN (VERBOSE, FORMAT JSON) of a verify query (PostgreSQL 15; fields trimmed): the
  // target's rows found by index, a lookup table read whole (a parallel Seq Scan).
  const char* const plan_json = R"json([{"Plan": {"Node Type": "Limit", "Plans": [
    {"Node Type": "Sort", "Plans": [{"Node Type": "WindowAgg", "Plans": [
     {"Node Type": "Nested Loop", "Plans": [
      {"Node Type": "Gather", "Plans": [{"Node Type": "Hash Join", "Plans": [
       {"Node Type": "Bitmap Heap Scan", "Relation Name": "orders", "Schema": "legacy",
        "Alias": "l", "Plans": [{"Node Type": "Bitmap Index Scan", "Index Name": "orders_pkey"}]},
       {"Node Type": "Hash", "Plans": [{"Node Type": "Seq Scan", "Parallel Aware": true,
        "Relation Name": "lines", "Schema": "target", "Alias": "x", "Plan Rows": 625000}]}]}]},
      {"Node Type": "Index Scan", "Index Name": "orders_pkey", "Relation Name": "orders",
       "Schema": "target", "Alias": "t", "Plan Rows": 1,
       "Index Cond": "(t.id = l.id)"}]}]}]}]}}])json";
  const auto tables = pgxform::unbounded_scans(plan_json);
  REQUIRE(tables.size() == 1);
  CHECK(tables[0].schema == "target");
  CHECK(tables[0].name == "lines");
  CHECK(tables[0].scan == "Seq Scan");
  // A Merge Join's inner index scan with no condition reads the index from its first key.
  const char* const merge_json = R"json([{"Plan": {"Node Type": "Merge Join", "Plans": [
    {"Node Type": "Index Scan", "Relation Name": "orders", "Schema": "legacy",
     "Index Cond": "((l.id >= '700001'::bigint) AND (l.id <= '900000'::bigint))"},
    {"Node Type": "Index Only Scan", "Relation Name": "orders", "Schema": "target"}]}}])json";
  const auto merged = pgxform::unbounded_scans(merge_json);
  REQUIRE(merged.size() == 1);
  CHECK(merged[0].name == "orders");
  CHECK(merged[0].schema == "target");
  CHECK(merged[0].scan == "Index Only Scan");
  // A scan under a Limit reads what the Limit takes: the first key, the latest row.
  CHECK(pgxform::unbounded_scans(R"json([{"Plan": {"Node Type": "Result", "Plans": [
    {"Node Type": "Limit", "Parent Relationship": "InitPlan", "Plans": [
     {"Node Type": "Index Only Scan", "Relation Name": "settings", "Schema": "target"}]}]}}])json")
            .empty());
  // Two scans of one table name it once; anything that is no plan names none.
  CHECK(pgxform::unbounded_scans(R"json([{"Plan": {"Node Type": "Append", "Plans": [
    {"Node Type": "Seq Scan", "Relation Name": "a", "Schema": "s"},
    {"Node Type": "Seq Scan", "Relation Name": "a", "Schema": "s"}]}}])json")
            .size() == 1);
  CHECK(pgxform::unbounded_scans("").empty());
  CHECK(pgxform::unbounded_scans("Seq Scan on target.items").empty());
  CHECK(pgxform::unbounded_scans(R"json({"Plan": {"Node Type": "Seq Scan"}})json").empty());
  // The threshold find_problems uses: four times the batch, and never below 1000 rows.
  CHECK(pgxform::many_rows_for(10000) == 40000);
  CHECK(pgxform::many_rows_for(10) == 1000);
}
