// running_batch: `pgxform explain JOB --running` — how the batch of JOB that is in flight now is
// planned, read from the server without disturbing it.
//
// Found: the session that holds the job's task lock (a slice's, for a job with slices) with a
// transaction open (state_locks.h: task_holders; the oldest when several slices are in flight),
// its age, what it waits on and the statement it runs (pg_stat_activity.query: the batch's
// statement, whose bound values pg_stat_activity does not show). The batch's range: it starts
// right after the task's cursor (exact: the cursor is the last committed batch's last key), and
// ends where a batch of the size the job's last logged batch asked for ends (the sizer's next
// size differs a little from batch to batch, so the last key is an estimate).
//
// Planned: each statement of the function (a SQL function's statements, PL/pgSQL's SQL
// statements; PERFORM as SELECT) with the function's arguments replaced by parameters $1 and
// $2, bound to the range's first and last key, never pasted into the text: EXPLAIN without
// ANALYZE, in a transaction rolled back, with a short lock_timeout. Nothing runs twice: the
// batch in flight holds locks that a second run of it would wait for, and it would double the
// load that made the batch slow. The plan is the planner's plan now, for these values: the
// batch planned its statements when it started, maybe before an ANALYZE that changed the
// statistics, and PL/pgSQL may reuse a generic plan; a statement that uses a PL/pgSQL variable
// cannot be planned alone and says so.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "commands/explain_command.h"

namespace pgxform {

// The SQL statements of a function body that can be planned alone: every statement of a SQL
// function; of a PL/pgSQL one, those that start with SELECT, INSERT, UPDATE, DELETE, WITH or
// PERFORM (written as SELECT), from the first BEGIN on. Other languages: none.
std::vector<std::string> function_statements(const std::string& language, const std::string& body);

// A statement as planned: its text (arguments as parameters), its plan or why it has none.
struct PlannedStatement {
  std::string text;
  std::string plan;
  std::string why_not;
};

// The batch in flight, as explain --running prints it.
struct RunningBatch {
  std::string job;
  int slice = 0;
  int pid = 0;
  double in_flight_s = 0;
  std::optional<std::string> wait_event;
  std::vector<int> blocked_by;
  std::string query;  // what pg_stat_activity shows the session running
  std::string lo, hi;
  bool hi_estimated = true;  // hi from the last batch's size, not known exactly
  long long batch_size = 0;
  std::vector<PlannedStatement> statements;
};

void print_running(std::ostream& out, const RunningBatch& batch);

// Exit 0 with the plans printed; 1 when no batch of the job is in flight (said so on `out`).
int explain_running(const ExplainOptions& options, std::ostream& out);

}  // namespace pgxform
