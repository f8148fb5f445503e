// query_plan: reads the plans that auto_explain sends (text format, ANALYZE and VERBOSE on) and
// points out what makes one statement expensive. Pure: text in, findings out; explain_command
// runs the batch and collects the messages, statement_summary.h takes a batch's statements
// together.
//
// One auto_explain message reads:
//   duration: 7.603 ms  plan:
//   Query Text: INSERT INTO target.items SELECT ...
//   Insert on target.items  (cost=...) (actual time=... rows=0 loops=1)
//     ->  Hash Anti Join  (cost=...) (actual time=... rows=500 loops=1)
//           Hash Cond: (l.id = t.id)
//           ...
//   Trigger RI_ConstraintTrigger_c_16458 for constraint entries_account_id_fkey: time=248.193
//   calls=5000
// A node's properties (Output, Filter, Hash Cond, Rows Removed by Filter, ...) follow its line,
// before its children; "SubPlan N", "InitPlan N" and "CTE name" head the node below them.
// Actual rows and removed rows are averages per loop, as EXPLAIN prints them. The Trigger lines
// (auto_explain.log_triggers) close the plan of the statement that fired the triggers: the
// time its row triggers took, foreign-key checks included, which the statement's own duration
// holds too.
//
// Findings, each with an index to propose when one would help:
//   seq_scan         a Seq Scan reading many rows (all loops together) for the batch's rows;
//   per_row_subplan  a SubPlan (not hashed) executed once per outer row;
//   nested_loop      a Nested Loop whose inner side runs many times and reads many rows each.
// The index is on the scanned table, over its columns that the scan's own filter or the join
// above it compares for equality (e.g. "CREATE INDEX ON target.items (id)"). The findings of a
// whole batch (foreign_key, trigger, repeated_statement: statement_summary.h) have the same
// shape, with a remedy.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace pgxform {

struct PlanNode {
  std::string type;      // "Seq Scan", "Hash Anti Join", "Index Only Scan", ...
  std::string relation;  // as printed after "on", schema-qualified with VERBOSE; may be empty
  std::string alias;     // the alias the conditions use (the table's name when none is printed)
  std::string label;     // "SubPlan 1", "InitPlan 1 (returns $0)", "CTE ins" when it heads one
  double rows = 0;       // actual rows per loop
  double loops = 0;      // 0 when never executed
  double removed = 0;    // rows removed by its filters, per loop
  std::vector<std::string> conditions;  // "Filter: ...", "Hash Cond: ...", "Index Cond: ..."
  std::vector<std::string> output;      // the Output list, as printed
  int parent = -1;                      // index in StatementPlan::nodes
  int indent = 0;
  // Rows the node looked at over all its loops: what it returned plus what its filters dropped.
  double rows_read() const { return (rows + removed) * loops; }
};

// A Trigger line below a plan: "Trigger NAME [for constraint C] [on REL]: time=T calls=N".
struct TriggerTime {
  std::string name;        // pg_trigger.tgname
  std::string constraint;  // the constraint it enforces; empty for an ordinary trigger
  std::string relation;    // printed only when the statement wrote several tables
  double time_ms = 0;
  double calls = 0;
  // The internal trigger of a foreign key, named RI_ConstraintTrigger_a_OID (on the referenced
  // table: deletes and updates there) or RI_ConstraintTrigger_c_OID (on the referencing table).
  bool foreign_key() const;
};

struct StatementPlan {
  std::string query_text;
  double duration_ms = 0;
  std::string plan_text;  // the plan as printed, without the duration and Query Text lines
  std::vector<PlanNode> nodes;
  std::vector<TriggerTime> triggers;
};

// Parses one auto_explain message; none when the text is not one.
std::optional<StatementPlan> parse_auto_explain(const std::string& message);

struct Finding {
  enum class Kind {
    seq_scan,
    per_row_subplan,
    nested_loop,
    foreign_key,
    trigger,
    repeated_statement
  };
  Kind kind;
  std::string text;
  std::string relation;              // the table to index; empty when no index is proposed
  std::vector<std::string> columns;  // its columns, as printed (quoted when they need it)
  std::string remedy;                // what to do, when it is not (only) an index
  std::string index_sql() const;     // "CREATE INDEX ON target.items (id)", or empty
};

// What is wrong with `plan` for a batch of `batch_rows` rows of the leading table.
std::vector<Finding> find_problems(const StatementPlan& plan, double batch_rows);

// The rows a scan may read for a batch of `batch_rows` rows before it reads far more than the
// batch needs and is worth a finding (find_problems, and verify's check of its query's plan).
double many_rows_for(double batch_rows);

// A table that a plan reads without a bound on its rows, as EXPLAIN (VERBOSE, FORMAT JSON)
// names it (schema and name unquoted): a Seq Scan, or an Index Scan or Index Only Scan with no
// Index Cond — which reads the index from its first entry, as the inner side of a Merge Join
// does, skipping every key below the other side's first. A scan right under a Limit is none:
// it stops after the rows it needs.
struct ScannedTable {
  std::string schema;
  std::string name;
  std::string scan;  // "Seq Scan", "Index Scan", "Index Only Scan"
  bool operator==(const ScannedTable& o) const { return schema == o.schema && name == o.name; }
};
// The tables `explain_json` (the one row of EXPLAIN (VERBOSE, FORMAT JSON), without ANALYZE:
// what the planner chose, nothing run) reads without a bound, parallel or not, in its
// sub-plans and init-plans too, each once (its first such scan), in plan order; empty for text
// that is no such plan.
std::vector<ScannedTable> unbounded_scans(const std::string& explain_json);

// The plan for printing: the VERBOSE Output lines left out (they list every column).
std::string plan_without_output(const std::string& plan_text);

}  // namespace pgxform
