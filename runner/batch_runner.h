// batch_runner: one task's keyset loop — a job, or one slice of a sliced job.
//
// Each batch is ONE transaction holding two statements (batch_sql.h): the batch itself, under
// EXPLAIN ANALYZE for its buffer counters, and its batch_log row. So a batch costs four round
// trips (BEGIN, the two statements, COMMIT) whatever its size, and the function's writes, the
// cursor's move and the batch_log row commit together or not at all.
//
// Failures (see retry.h), decided by SQLSTATE:
//   transient        retried with exponential backoff and jitter (`retries`, `retry_backoff_ms`);
//   connection lost  the connection is reopened and the task's claim taken again (if another
//                    runner took it meanwhile, the task is left to it), then retried;
//   in doubt         COMMIT sent, no answer: settled by reading the cursor, never by redoing;
//   permanent        `on_error: stop` — the job fails with the error, SQLSTATE and key range;
//                    `on_error: skip` — the range goes to failed_batches in the same transaction
//                    that moves the cursor past it; with `bisect: true` the range is halved
//                    until only the offending keys are set aside and the rest is processed.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "batch_sql.h"
#include "catalog.h"
#include "database.h"
#include "jobs_file.h"
#include "progress.h"
#include "retry.h"
#include "scheduler.h"
#include "state_store.h"

namespace pgxform {

struct TaskOutcome {
  enum class Kind { finished, failed, deferred, stopped };
  Kind kind = Kind::finished;
  std::string message;  // for failed: the error, SQLSTATE and key range
};

class BatchRunner {
 public:
  BatchRunner(Session& session, StateStore& store, const ResolvedJob& job,
              const JobSettings& settings, TaskId task, std::string list, Progress& progress);
  TaskOutcome run();

 private:
  // How one transactional step ended, after retries.
  struct Step {
    enum class Kind { ok, permanent, stopped, deferred };
    Kind kind = Kind::ok;
    Failure failure;
  };
  using Work = std::function<void(pqxx::work&)>;

  // Runs `work` in a transaction until it commits or fails for good. Before COMMIT, `work`
  // sets m_committing to the key the cursor moves to, so an in-doubt COMMIT can be settled.
  Step transact(const Work& work);
  // The statements, each as one transaction step.
  Step next_batch(bool& finished);
  Step process_range(const std::string& lo, const std::string& hi);
  Step skip_range(const std::string& lo, const std::string& hi, const Failure& failure);
  // on_error: skip — sets [lo, hi] aside, narrowing it down first with bisect.
  Step set_aside(const std::string& lo, const std::string& hi, const Failure& failure);

  // Runs prepared statement `name` (`sql` builds its text the first time) with the five
  // parameters of batch_sql.h (seven with a failure's SQLSTATE and error).
  pqxx::result exec(pqxx::work& tx, const std::string& name,
                    const std::function<std::string()>& sql,
                    const std::optional<std::string>& second,
                    const std::optional<std::string>& fifth,
                    const std::optional<std::string>& sqlstate = std::nullopt,
                    const std::optional<std::string>& error = std::nullopt);
  // The log statement of batch_sql.h, given the batch statement's plan: lo, hi, rows, moved.
  pqxx::result log_batch(pqxx::work& tx, const pqxx::result& plan);
  std::optional<std::pair<std::string, std::string>> next_range();
  std::optional<std::pair<std::string, std::string>> split(const std::string& lo,
                                                           const std::string& hi);
  TaskOutcome fail(const Failure& failure);
  BatchShape shape() const;

  Session& m_session;
  StateStore& m_store;
  const ResolvedJob& m_job;
  const JobSettings& m_settings;
  TaskId m_task;
  std::string m_list;
  Progress& m_progress;
  Slicing m_slicing;
  Cursor m_cursor;
  std::optional<std::string> m_committing;
};

// Runs a one-shot `sql:` step once and only once.
TaskOutcome run_step(StateStore& store, const std::string& job, const std::string& sql);

// Sets the session's timeouts for a job (statement_timeout, lock_timeout,
// idle_in_transaction_session_timeout).
void apply_timeouts(pqxx::connection& conn, const JobSettings& settings);

}  // namespace pgxform
