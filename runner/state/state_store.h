// state_store: the jobs' state — job_state (one row per job) and job_slice (one cursor per
// slice of a job with `parallel: K`, K > 1) in the state schema (state_schema.h; the tables are
// described in docs/state-tables.md).
//
// Status transitions:  pending -> running -> done
//                                        \-> failed -> running (a later run retries it)
//                      done -> running (a later run found rows appended after the job finished)
//                      running -> pending (the run was stopped by a signal)
//
// Resume: a batch's writes, the cursor's move and its batch_log row commit in one transaction
// (batch_sql.h composes the batch statement with cursor_move_sql below). So the cursor names
// exactly the last committed batch, and a new run continues with the keys after it: nothing
// lost, nothing applied twice, whatever killed the last run. The cursor only moves from the
// key it was read at ($1 of the batch statement), so a batch can never be applied twice.
//
// Claims: a runner works on a task (a job, or one slice of it) only while its session holds
// the task's lock (state_locks.h); try_claim takes it and records the runner in the row.
//
// Durability: a job's batches commit with synchronous_commit off by default (a server crash may
// take the last ones back, cursor and writes together: they are redone). The closing change of
// a task (mark_done, mark_failed, mark_stopped) waits for its WAL's flush, and with it for the
// flush of every batch before it: what a run reported as done stays done.
//
// Every method that changes state is one transaction with an explicit commit. The methods
// that only read never create the state schema: without one, they find nothing recorded.
#pragma once

#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "database/database.h"
#include "database/retry.h"
#include "plan/jobs_file.h"
#include "plan/scheduler.h"
#include "state/state_schema.h"
#include "state/task_cursor.h"

namespace pgxform {

struct JobStatus {
  std::string job;
  std::string list;
  std::string status;
  std::optional<std::string> last_key;
  long long rows_done = 0;
  long long batches_done = 0;
  int slices = 1;
  int slices_done = 0;
  int slices_running = 0;  // slices whose row says running (held now, or their runner died)
  int slices_held = 0;     // tasks of the job held now: the workers at work on it, in any runner
  std::optional<std::string> started_at, updated_at, finished_at;
  std::optional<std::string> error, sqlstate, error_first_key, error_last_key;
  std::optional<std::string> runner;   // who holds it now, when someone does
  long long set_aside = 0;             // unresolved ranges in failed_batches
  std::optional<std::string> waiting;  // job_state.waiting: why its runner takes no batch now
  // Who holds the job's catch-up now (host:pid), and why it takes no batch (catch_up_waiting).
  std::optional<std::string> catch_up_runner, catch_up_waiting;
};

class StateStore {
 public:
  StateStore(pqxx::connection& conn, StateSchema schema);
  // Follows the session's connection, also after it reconnected.
  StateStore(Session& session, StateSchema schema);

  const StateSchema& schema() const { return m_schema; }
  pqxx::connection& conn() { return m_session ? m_session->conn() : *m_conn; }

  // 0 when the schema does not exist. Read-only.
  int version();
  // Creates or upgrades the schema (state_schema.h).
  void ensure_schema();

  // Adds a pending row for every job of the file that has none.
  void register_jobs(const JobsFile& file);
  // Jobs whose status is done; empty when the schema does not exist. Read-only.
  std::set<std::string> done_jobs();
  // Every recorded job, with who holds it now; empty when the schema does not exist.
  std::vector<JobStatus> read_status();
  std::optional<JobStatus> job_status(const std::string& job);

  // Read-only: the problem when `job`'s `parallel` differs from the slices it already started
  // with (run checks this before it writes anything); none when it does not.
  std::optional<std::string> slicing_problem(const ResolvedJob& job);
  // Cuts and stores the slice boundaries of a job with parallel > 1, once; later runs reuse
  // them. Nothing is stored for an empty table: its slices are cut once it has rows. A job with
  // `parallel: auto` gets its first slice (the whole key range, or the job's cursor so far).
  void ensure_slices(const ResolvedJob& job);

  // Read-only: one problem per resumed job (started, not done) whose function's definition
  // changed since the job was pinned to it, unless the job is in `accepted`.
  std::vector<std::string> changed_functions(const std::map<std::string, ResolvedJob>& jobs,
                                             const std::set<std::string>& accepted);
  // Pins every job to its function's current version (batches record it in batch_log).
  void pin_function_versions(const std::map<std::string, ResolvedJob>& jobs);

  // Takes the task's lock without waiting (state_locks.h: task_lock); records the runner on
  // success, in the job's row for a task of the main pass.
  bool try_claim(const TaskId& task, const std::string& list);
  void release(const TaskId& task);
  // Who holds the task's lock now, as status's RUNNER names a runner (host:pid); none when
  // nobody does.
  std::optional<std::string> task_holder(const TaskId& task);

  // The task's cursor; none for a slice that was never cut (its table was empty).
  std::optional<Cursor> read_cursor(const TaskId& task, Slicing slicing);
  // The cursor the job's next batch starts from: the job's, or its first unfinished slice's.
  std::optional<Cursor> next_cursor(const std::string& job, Slicing slicing);
  // The job's rows_done when this finished the job (its last slice), else nothing.
  std::optional<long long> mark_done(const TaskId& task, Slicing slicing);
  // Why the task's runner takes no batch now (pacing.h), or nothing: job_state.waiting for the
  // main pass, catch_up_waiting (state version 11) for catch-up.
  void set_waiting(const TaskId& task, const std::optional<std::string>& why);
  void mark_failed(const TaskId& task, Slicing slicing, const Failure& failure,
                   const std::optional<std::string>& first_key,
                   const std::optional<std::string>& last_key);
  void mark_stopped(const TaskId& task, Slicing slicing);
  // A catch-up that ended with none of the job's keys set aside: its error ("catch-up: ...")
  // leaves the job's row.
  void clear_catch_up_error(const std::string& job);
  // A catch-up batch failed (change_drain.h): its error, SQLSTATE and keys on the job's row,
  // the error prefixed "catch-up: "; the status of the main pass is left as it is.
  void mark_catch_up_failed(const std::string& job, const Failure& failure,
                            const std::optional<std::string>& first_key,
                            const std::optional<std::string>& last_key);

  // A one-shot step: runs `sql` and records the job done in one transaction, unless done.
  // Returns false when it was already done.
  bool run_step_once(const std::string& job, const std::string& sql);

  // Moves the job back to its first key: its counters, batch log, slices, unresolved
  // set-aside ranges and recorded identity (job_identity.h) are cleared. The caller holds the
  // job (JobClaim).
  void reset_job(const std::string& job);
  // Moves the job's cursor back to just after `key` (a job without slices); set-aside ranges
  // past it are dropped, as the next run covers them again. The caller holds the job.
  void reset_job_to(const ResolvedJob& job, const std::string& key);

 private:
  void ensure_auto_slice(pqxx::work& tx, const ResolvedJob& job, int stored);

  pqxx::connection* m_conn = nullptr;
  Session* m_session = nullptr;
  StateSchema m_schema;
};

}  // namespace pgxform
