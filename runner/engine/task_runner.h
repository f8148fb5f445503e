// task_runner: one task, from its claim to its release, on a worker's session (the worker pool
// hands tasks out; this runs one) — of the main pass or of catch-up, on one engine. It
//   1. claims the task (state_store.h: the main pass's task lock, or the job's catch-up lock),
//      or leaves it to the runner that holds it (deferred);
//   2. sets the job's timeouts on the session and runs it: a one-shot step, or a loop of
//      batches (batch_runner.h) with the task's phase (main_pass.h, change_drain.h) and its
//      pacing (pacing.h), which record how they ended in the state;
//   3. releases the claim.
// The one place that decides what a lost connection means for a task (retry.h says which
// failures are one): the connection is reopened, the task claimed again and run again from its
// cursor, up to k_reconnect_attempts times. Whether a COMMIT that got no answer went through
// is told by that cursor (or by the change log), never guessed: the task continues after
// whatever committed. Every other failure ends the task with the outcome its runner recorded.
//
// A catch-up task drains its job's changes at or below the cursor; then, wherever the job's
// main pass has keys above its cursor (not done yet, or rows appended after it finished), it
// continues that main pass itself, as main-pass tasks on the same session (their own claims),
// and drains again: a catch-up ends with the main pass done and the log empty, so that the
// target is complete. A main-pass task that another runner holds is waited for (without
// --follow) or left to it. With --follow it continues only main passes that were done (rows
// appended since: an unfinished one is the run's), and then waits for more changes, paced like
// a batch, until a signal; with --until N it ends once at most N changes are left, main pass or
// not. With changes: logical, a catch-up task that finds its job's log empty reads the slot once
// more, waiting for whoever reads it now, before it says the job is caught up: every change
// committed before that read is then in the log, or applied.
#pragma once

#include <chrono>
#include <map>
#include <optional>
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

class SlotReader;
class BoundFinder;

// How a catch-up task ends once its job's log is empty (or nearly).
// How often catch-up --follow says what it applied, once caught up (task_runner.cpp).
inline constexpr std::chrono::seconds k_follow_line_interval{60};

enum class Follow { no, yes };  // yes: wait for more changes until a stop signal

struct DrainOptions {
  Follow follow = Follow::no;
  std::optional<long long> until;  // stop once at most this many changes are left
};

// What every task of one command shares. Read-only, but for the progress it reports to.
struct RunContext {
  const JobsFile& file;
  const std::map<std::string, ResolvedJob>& jobs;  // the batched jobs, resolved
  StateSchema schema;
  Progress& progress;
  HealthMonitor& health;    // the database's health signals, shared by the workers
  RunMetrics& metrics;      // what --metrics-port serves (collects nothing without it)
  DrainOptions drain = {};  // catch-up tasks
  // The slot of changes: logical, when the jobs file has a job with it (batch_runner.h).
  SlotReader* slot = nullptr;
  // The main pass's bound finder (bound_finder.h), shared by the workers; none: each batch walks
  // for itself.
  BoundFinder* bounds = nullptr;
};

TaskOutcome run_task(Session& session, const RunContext& run, const TaskId& task);
// The same, the task shown on the terminal (progress.h) from its start to its end, or as held
// by another runner.
TaskOutcome run_task_shown(Session& session, const RunContext& run, const TaskId& task);

// Sets the session's settings for a job: statement_timeout, lock_timeout,
// idle_in_transaction_session_timeout and synchronous_commit (off unless the job says on: a
// batch need not wait for its WAL's flush, as a crash loses its writes and its cursor's move
// together; the task's closing state change waits for it, see state_store.h).
void apply_session_settings(pqxx::connection& conn, const JobSettings& settings);

}  // namespace pgxform
