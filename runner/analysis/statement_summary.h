// statement_summary: a batch's statements taken together, and what makes the batch expensive
// as a whole. Pure: the plans in (query_plan.h), the summary and its findings out.
//
// With nested statements logged, a foreign key's check is a statement of its own, once per row
// written: a batch of 5000 rows sends 5000 plans of one text, and a loop in the function (or a
// row trigger's function) sends one plan per row as well. summarise_statements takes the
// statements of one text (blanks and constants aside) and one plan shape (the nodes' types and
// tables) together, with their count, total and longest time, and adds up each trigger's time
// and calls over the batch. A SQL function's statements all carry the function's whole body as
// their text: the shape tells them apart.
//
// Findings, measured against the whole batch, each with a remedy:
//   foreign_key         the foreign keys' checks take at least half the batch together: one
//                       finding per foreign key taking a tenth or more (an index on the
//                       referencing columns when a check scans the whole referencing table);
//   trigger             an ordinary trigger takes at least half the batch;
//   repeated_statement  one statement, run at least 100 times, takes at least half the batch.
// Under 1 ms, nothing dominates.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "analysis/query_plan.h"

namespace pgxform {

// Who wrote a statement: the function (or an ordinary trigger's function), or a foreign key's
// trigger, whose statements PostgreSQL words in a fixed form:
//   SELECT 1 FROM [ONLY] "s"."t" x WHERE "c" OPERATOR(pg_catalog.=) $1 ... FOR KEY SHARE OF x
//   DELETE FROM [ONLY] "s"."t" WHERE $1 OPERATOR(pg_catalog.=) "c" ...        (ON DELETE CASCADE)
//   UPDATE [ONLY] "s"."t" SET "c" = ... WHERE $1 OPERATOR(pg_catalog.=) "c" (ON UPDATE, SET NULL)
enum class StatementKind { ordinary, foreign_key };
StatementKind statement_kind(const std::string& query_text);

// The statement's text for comparing with others: blanks collapsed, numbers and quoted strings
// replaced by "?" (a dynamic statement run in a loop with other constants is the same one).
std::string normalised_text(const std::string& query_text);

// The statements that share a text and a plan shape (the nodes' types and tables).
struct StatementGroup {
  std::string query_text;  // the first run's
  StatementKind kind = StatementKind::ordinary;
  std::vector<std::size_t> runs;  // indexes of the batch's statements, in order
  std::size_t slowest = 0;        // the run that took longest
  double total_ms = 0;
  double max_ms = 0;
};

// A trigger's time and calls over the batch: every plan that reports it, added up.
struct TriggerTotal {
  TriggerTime trigger;
  std::size_t group = 0;          // the group of the first statement that fired it
  bool fired_by_repeats = false;  // by a statement run many times (see BatchTime)
};

struct StatementSummary {
  // The function's statements first, then the foreign keys': each in the order of its first run.
  std::vector<StatementGroup> groups;
  std::vector<TriggerTotal> triggers;  // in the order they first appear
};

StatementSummary summarise_statements(const std::vector<StatementPlan>& statements);

// Explaining every statement costs time inside the statements around them: a foreign key's
// 5000 checks, each explained, make the INSERT that fires them several times slower. So explain
// times the batch in a second run that explains only the slower statements, and this takes its
// plans (durations and trigger times) for the statements that ran once in `first`; the
// statements run many times keep the first run's, their own durations being honest.
void take_timing(std::vector<StatementPlan>& first, const std::vector<StatementPlan>& second);

// What the catalog says of a foreign key, for the trigger that enforces it.
struct ForeignKeyTrigger {
  std::string constraint;
  std::string table;                 // the referencing table, "schema.table" as plans print it
  std::string referenced;            // the referenced table, likewise
  std::string definition;            // "FOREIGN KEY (account_id) REFERENCES core.accounts(id)"
  std::vector<std::string> columns;  // the referencing columns, quoted when they need it
  bool on_referenced = false;        // the trigger fires for deletes and updates of `referenced`
};

// What a figure is measured against. When a second run timed the batch (take_timing), the
// statements run many times keep the figures of the first, which explained every statement and
// took longer for it: their figures, and those of the triggers they fired, are measured against
// that run's duration; the others against the batch as timed.
struct BatchTime {
  double ms = 0;            // the batch, as timed
  double first_run_ms = 0;  // the run that explained every statement; 0 when it was the only one
  double of_repeats() const { return first_run_ms > 0 ? first_run_ms : ms; }
  double of(const TriggerTotal& t) const { return t.fired_by_repeats ? of_repeats() : ms; }
};

// The findings of the summary: costly triggers and statements run many times, measured against
// the batch's `time`; `foreign_keys` by trigger name (a trigger missing there is described from
// its plan line alone). Each with the index of the group it is about.
std::vector<std::pair<Finding, std::size_t>> find_costly_repeats(
    const StatementSummary& summary, const std::vector<StatementPlan>& statements,
    const std::map<std::string, ForeignKeyTrigger>& foreign_keys, const BatchTime& time,
    double batch_rows);

// The share `part` is of `whole`, as printed: "69%" ("<1%" below one percent).
std::string percent_of(double part, double whole);

}  // namespace pgxform
