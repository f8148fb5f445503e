// explain_command: `pgxform explain JOB [--at KEY] [--full]` — runs ONE batch of a job the way a
// run would (the next batch after the job's cursor, or after KEY) inside a transaction that is
// ROLLED BACK, with auto_explain loaded for that session only, and prints the plans of the
// statements inside the function, with ANALYZE and BUFFERS. Then it points out what makes the
// batch expensive (query_plan.h: sequential scans reading far more than the batch, sub-plans
// run once per row, nested loops with many loops, foreign keys and triggers that take most of
// the batch, statements run once per row) and proposes an index or a remedy for each. When the
// hypopg extension is available it creates the proposed index hypothetically, in the same
// rolled-back transaction, and tells whether the planner would use it.
//
// A statement run many times (a foreign key's check, once per row written; a statement in a
// loop) is printed once, with its count, total and longest time and its slowest run's plan;
// --full prints every statement. Explaining thousands of statements slows the statements around
// them several times over, so when statements repeat, the batch runs twice, each time in a
// subtransaction rolled back before the next: the first explains every statement (the plans),
// the second only those that take longer than the repeated ones did (the times).
//
// A job with no keys left after its cursor (a done job) has its last logged batch explained
// again. A function that fails still has the plans of the statements that ran before the error
// printed, and the statement that failed planned alone (EXPLAIN without ANALYZE); when a unique
// key refused its rows on a range a run already processed, explain says so and where a range
// not yet processed starts. Writes nothing: the batch, the hypothetical index and hypopg itself
// are rolled back. LOAD 'auto_explain' needs a superuser (or auto_explain in $libdir/plugins);
// without it explain stops with a message saying so.
//
// How the plans reach the client: auto_explain.log_level = notice with client_min_messages =
// notice, so each plan arrives as a NOTICE, caught by a libpqxx errorhandler on the connection.
//
// fetch (the batch run and explained: ExplainedBatch) -> compute (summarise_statements,
// find_proposals; pure: query_plan.h, statement_summary.h) -> checks in the same transaction
// (existing indexes, hypopg) -> render (print_explained).
#pragma once

#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "analysis/query_plan.h"
#include "analysis/statement_summary.h"
#include "commands/command_options.h"

namespace pgxform {

// How much of the batch's statements explain prints.
enum class PlanDetail {
  summary,  // a statement run many times once, with its count and its slowest run's plan
  full      // every statement, each with its plan
};

struct ExplainOptions : CommandOptions {
  std::string job;
  std::optional<std::string> at;  // explain the batch that starts after this key
  PlanDetail detail = PlanDetail::summary;
};

// Exit 0 when the batch ran (whatever it found), 1 when the function failed; throws
// PreflightError (exit 2) for an unknown job, a step, a bad key or a missing auto_explain.
int explain_command(const ExplainOptions& options, std::ostream& out);

// The statement that failed, as the error's CONTEXT names it, planned alone.
struct FailedStatement {
  std::string query_text;  // with the batch's bounds in place of the function's arguments
  std::string plan;        // EXPLAIN's text (estimates); empty when it could not be planned
  std::string why_not;     // why it could not be planned alone
};

// One batch as explain ran it.
struct ExplainedBatch {
  std::string job;
  std::string table_sql;
  std::string function_sql;
  std::string described;  // which batch: "the job's first batch", "the batch after key K"
  std::string lo, hi;
  long long rows = 0;
  std::optional<std::string> error;  // the function failed: "(SQLSTATE x): message"
  std::string sqlstate;              // the failure's
  double took_ms = 0;
  // Set when a second run timed the batch: what the first, explaining every statement, took,
  // and the second's threshold (auto_explain.log_min_duration).
  std::optional<double> fully_explained_ms;
  int timed_over_ms = 0;
  std::vector<std::string> notices;  // messages that were no plan
  std::vector<StatementPlan> statements;
  std::map<std::string, ForeignKeyTrigger> foreign_keys;  // by trigger name

  // What tells why a function failed, and where to explain instead.
  bool job_done = false;                  // every key of the job is processed
  std::optional<std::string> cursor_key;  // the job's cursor: keys after it are not processed
  // The first and last logged batches over these keys.
  std::optional<std::pair<long long, long long>> processed_by;
  std::optional<FailedStatement> failed_statement;
};

// An index proposed by a finding, and what the database says of it.
struct IndexProposal {
  std::string sql;                      // CREATE INDEX ...
  std::string relation;                 // as printed in the plan
  std::string columns;                  // as printed, ", "-separated
  std::string statement;                // the statement it came from, with the bounds in place;
                                        // empty when it cannot be planned alone (hypopg skipped)
  std::optional<std::string> existing;  // an index that starts with these columns
  std::optional<std::string> hypopg;    // what hypopg said; none when it is not installed
};

struct ExplainReport {
  ExplainedBatch batch;
  StatementSummary summary;                               // of batch.statements
  std::vector<std::pair<Finding, std::size_t>> findings;  // with the statement group's index
  std::vector<IndexProposal> proposals;                   // one per index, first come first
};

// The findings of every statement group (on its slowest run's plan) and of the summary as a
// whole (triggers, repeated statements), and the index each proposes (once per index), with the
// statement it came from rewritten for planning alone: `lo` and `hi` are SQL literals of the
// bounds, `arg_names` the function's argument names. report.summary must be made first.
void find_proposals(ExplainReport& report, const std::vector<std::string>& arg_names,
                    const std::string& lo, const std::string& hi);

// The statement with the function's arguments replaced by the batch's bounds, so that it can be
// planned on its own (EXPLAIN, for hypopg). Names are matched as whole words outside quotes.
std::string with_bounds(const std::string& sql, const std::vector<std::string>& names,
                        const std::string& lo, const std::string& hi);

// The statement that an error's CONTEXT names, if it is one of the function `function_name`
// (pg_proc.proname): a PL/pgSQL statement's text as CONTEXT quotes it, or statement N of a SQL
// function's `body` (pg_proc.prosrc).
std::optional<std::string> failed_statement_text(const std::string& error,
                                                 const std::string& function_name,
                                                 const std::string& body);

void print_explained(std::ostream& out, const ExplainReport& report,
                     PlanDetail detail = PlanDetail::summary);

}  // namespace pgxform
