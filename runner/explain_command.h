// explain_command: `pgxform explain JOB [--at KEY]` — runs ONE batch of a job the way a run
// would (the next batch after the job's cursor, or after KEY) inside a transaction that is
// ROLLED BACK, with auto_explain loaded for that session only, and prints the plans of the
// statements inside the function, with ANALYZE and BUFFERS. Then it points out what makes the
// batch expensive (query_plan.h: sequential scans reading far more than the batch, sub-plans
// run once per row, nested loops with many loops) and proposes an index for each. When the
// hypopg extension is available it creates the proposed index hypothetically, in the same
// rolled-back transaction, and tells whether the planner would use it.
//
// A job with no keys left after its cursor (a done job) has its last logged batch explained
// again. Writes nothing: the batch, the hypothetical index and hypopg itself are rolled back.
// LOAD 'auto_explain' needs a superuser (or auto_explain in $libdir/plugins); without it explain
// stops with a message saying so.
//
// How the plans reach the client: auto_explain.log_level = notice with client_min_messages =
// notice, so each plan arrives as a NOTICE, caught by a libpqxx errorhandler on the connection.
//
// fetch (the batch run and explained: ExplainedBatch) -> compute (find_proposals, pure) ->
// checks in the same transaction (existing indexes, hypopg) -> render (print_explained).
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "command_options.h"
#include "query_plan.h"

namespace pgxform {

struct ExplainOptions : CommandOptions {
  std::string job;
  std::optional<std::string> at;  // explain the batch that starts after this key
};

// Exit 0 when the batch ran (whatever it found), 1 when the function failed; throws
// PreflightError (exit 2) for an unknown job, a step, a bad key or a missing auto_explain.
int explain_command(const ExplainOptions& options, std::ostream& out);

// One batch as explain ran it.
struct ExplainedBatch {
  std::string job;
  std::string table_sql;
  std::string function_sql;
  std::string described;  // which batch: "the job's first batch", "the batch after key K"
  std::string lo, hi;
  long long rows = 0;
  std::optional<std::string> error;  // the function failed: "(SQLSTATE x): message"
  double took_ms = 0;
  std::vector<std::string> notices;  // messages that were no plan
  std::vector<StatementPlan> statements;
};

// An index proposed by a finding, and what the database says of it.
struct IndexProposal {
  std::string sql;                      // CREATE INDEX ...
  std::string relation;                 // as printed in the plan
  std::string columns;                  // as printed, ", "-separated
  std::string statement;                // the statement it came from, with the bounds in place
  std::optional<std::string> existing;  // an index that starts with these columns
  std::optional<std::string> hypopg;    // what hypopg said; none when it is not installed
};

struct ExplainReport {
  ExplainedBatch batch;
  std::vector<std::pair<Finding, std::size_t>> findings;  // with the statement's index
  std::vector<IndexProposal> proposals;                   // one per index, first come first
};

// The findings of every statement, and the index each proposes (once per index), with the
// statement it came from rewritten for planning alone: `lo` and `hi` are SQL literals of the
// bounds, `arg_names` the function's argument names.
void find_proposals(ExplainReport& report, const std::vector<std::string>& arg_names,
                    const std::string& lo, const std::string& hi);

// The statement with the function's arguments replaced by the batch's bounds, so that it can be
// planned on its own (EXPLAIN, for hypopg). Names are matched as whole words outside quotes.
std::string with_bounds(const std::string& sql, const std::vector<std::string>& names,
                        const std::string& lo, const std::string& hi);

void print_explained(std::ostream& out, const ExplainReport& report);

}  // namespace pgxform
