// state_store: the runner's own state in PostgreSQL, in the schema named by `state_schema:`
// (default pgxform). The DDL lives in state/NNN_*.sql, compiled into the binary; the schema's
// version is kept in <schema>.schema_version and upgraded on first use, in one transaction
// under an advisory lock, so that two runners starting together never both create it.
//
// Tables (see docs/state-tables.md):
//   job_state  one row per job: status, cursor (last_key as text), counters, last error, runner.
//   job_slice  one cursor per slice of a job with `parallel: K` (K > 1).
//   batch_log  one row per committed batch.
//
// Status transitions:  pending -> running -> done
//                                        \-> failed -> running (a later run retries it)
//                      done -> running (a later run found rows appended after the job finished)
//                      running -> pending (the run was stopped by a signal)
//
// Resume: a batch's writes, the cursor's move and its batch_log row commit in one transaction
// (batch_runner). So the cursor names exactly the last committed batch, and a new run continues
// with the keys after it: nothing lost, nothing applied twice, whatever killed the last run.
//
// Claims: a runner works on a job (or slice) only while its session holds the advisory lock
// (hashtext(schema), hashtext(task)). The lock dies with the session, so a killed runner's
// claims are free again as soon as the server notices its session ended (at once for an idle
// session; when the statement in flight ends for a busy one); a second runner never runs a
// batch the first one runs.
#pragma once

#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <vector>

#include "catalog.h"
#include "database.h"
#include "jobs_file.h"
#include "retry.h"
#include "scheduler.h"

namespace pgxform {

// Where a task's batches continue from.
struct Cursor {
  std::optional<std::string> last_key;  // exclusive lower bound; none before the first batch
  std::optional<std::string> hi_key;    // inclusive upper bound of a slice; none = open
  std::string status;
};

struct JobStatus {
  std::string job;
  std::string list;
  std::string status;
  std::optional<std::string> last_key;
  long long rows_done = 0;
  long long batches_done = 0;
  int slices = 1;
  int slices_done = 0;
  std::optional<std::string> started_at, updated_at, finished_at;
  std::optional<std::string> error, sqlstate, error_first_key, error_last_key;
  std::optional<std::string> runner;  // who holds it now, when someone does
  long long set_aside = 0;            // unresolved ranges in failed_batches
};

class StateStore {
 public:
  StateStore(pqxx::connection& conn, std::string schema);
  // Follows the session's connection, also after it reconnected.
  StateStore(Session& session, std::string schema);

  const std::string& schema_sql() const { return m_schema_sql; }

  // Read-only: does the state schema exist yet, and at which version (0 when not).
  int schema_version();
  // Creates or upgrades the state schema. Refuses a schema newer than this binary knows.
  void ensure_schema();
  // Adds a pending row for every job of the file that has none.
  void register_jobs(const JobsFile& file);
  // Jobs whose status is done; empty when the schema does not exist. Read-only.
  std::set<std::string> done_jobs();
  // Computes and stores the slice boundaries of a job with parallel > 1, once; later runs
  // reuse them. Throws std::runtime_error when the job's slice count changed mid-job.
  void ensure_slices(const ResolvedJob& job);

  // Takes the task's advisory lock without waiting; records the runner on success.
  bool try_claim(const TaskId& task, const std::string& list);
  void release(const TaskId& task);

  // Read-only: throws std::runtime_error when `job`'s `parallel` differs from the slices it
  // already started with (run checks this before it writes anything).
  void check_slicing(const ResolvedJob& job);

  // Read-only: one problem per resumed job (started, not done) whose function's definition
  // changed since the job was pinned to it, unless the job is in `accepted`.
  std::vector<std::string> changed_functions(const std::map<std::string, ResolvedJob>& jobs,
                                             const std::set<std::string>& accepted);
  // Pins every job to its function's current version (batches record it in batch_log).
  void pin_function_versions(const std::map<std::string, ResolvedJob>& jobs);

  // The task's cursor; none for a slice that was never cut (its table was empty).
  std::optional<Cursor> read_cursor(const TaskId& task, bool sliced);
  void mark_done(const TaskId& task, bool sliced);
  void mark_failed(const TaskId& task, bool sliced, const Failure& failure,
                   const std::optional<std::string>& first_key,
                   const std::optional<std::string>& last_key);
  void mark_stopped(const TaskId& task, bool sliced);

  // A one-shot step: runs `sql` and records the job done in one transaction, unless done.
  // Returns false when it was already done.
  bool run_step_once(const std::string& job, const std::string& sql);

  std::vector<JobStatus> read_status();

 private:
  pqxx::connection& conn() { return m_session ? m_session->conn() : *m_conn; }

  pqxx::connection* m_conn = nullptr;
  Session* m_session = nullptr;
  std::string m_schema;
  std::string m_schema_sql;
};

}  // namespace pgxform
