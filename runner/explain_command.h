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
#pragma once

#include <optional>
#include <ostream>
#include <string>

namespace pgxform {

struct ExplainOptions {
  std::string file = "jobs.yaml";
  std::string dsn;
  std::string job;
  std::optional<std::string> at;  // explain the batch that starts after this key
};

// Exit 0 when the batch ran (whatever it found), 1 when the function failed; throws
// PreflightError (exit 2) for an unknown job, a step, a bad key or a missing auto_explain.
int explain_command(const ExplainOptions& options, std::ostream& out);

}  // namespace pgxform
