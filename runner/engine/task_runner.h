// task_runner: one task of a run, from its claim to its release, on a worker's session (the
// worker pool hands tasks out; this runs one). It
//   1. claims the task (state_store.h), or leaves it to the runner that holds it (deferred);
//   2. sets the job's timeouts on the session and runs it: a batched task's keyset loop
//      (batch_runner.h) or a one-shot step, which record how they ended in the state;
//   3. releases the claim.
// The one place that decides what a lost connection means for a task (retry.h says which
// failures are one): the connection is reopened, the task claimed again and run again from its
// cursor, up to k_reconnect_attempts times. Whether a COMMIT that got no answer went through
// is told by that cursor, never guessed: the task continues after whatever committed. Every
// other failure ends the task with the outcome its runner recorded.
#pragma once

#include <map>
#include <string>

#include "catalog/catalog.h"
#include "database/database.h"
#include "engine/health_throttle.h"
#include "output/progress.h"
#include "output/run_metrics.h"
#include "plan/jobs_file.h"
#include "plan/scheduler.h"
#include "state/state_schema.h"

namespace pgxform {

// What every task of one run shares. Read-only, but for the progress it reports to.
struct RunContext {
  const JobsFile& file;
  const std::map<std::string, ResolvedJob>& jobs;  // the batched jobs, resolved
  StateSchema schema;
  Progress& progress;
  HealthMonitor& health;  // the database's health signals, shared by the workers
  RunMetrics& metrics;    // what --metrics-port serves (collects nothing without it)
};

TaskOutcome run_task(Session& session, const RunContext& run, const TaskId& task);

// Sets the session's settings for a job: statement_timeout, lock_timeout,
// idle_in_transaction_session_timeout and synchronous_commit (off unless the job says on: a
// batch need not wait for its WAL's flush, as a crash loses its writes and its cursor's move
// together; the task's closing state change waits for it, see state_store.h).
void apply_session_settings(pqxx::connection& conn, const JobSettings& settings);

}  // namespace pgxform
