// batch_runner: one task's keyset loop — a job, or one slice of a sliced job — on a claim its
// session holds (task_runner.h takes and releases it).
//
// Each batch takes the next keys after the cursor, as many as batch_sizer.h says (so that a
// batch lasts about target_batch_ms), and is ONE transaction holding two statements
// (batch_sql.h): the batch itself, under
// EXPLAIN ANALYZE for its buffer counters, and its batch_log row. So a batch costs four round
// trips (BEGIN, the two statements, COMMIT) whatever its size, and the function's writes, the
// cursor's move and the batch_log row commit together or not at all.
//
// Between two batches the task reads the control table (job_control.h), at most once a
// second: a paused job takes no new batch until it is resumed (a stop signal still ends it),
// a new batch_size or target_batch_ms applies from the next batch, pause_ms sleeps. Then, with
// `throttle:` limits, it waits while the database's health is over one (health_throttle.h).
//
// Failures (see retry.h), decided by SQLSTATE:
//   transient        retried in place with exponential backoff and jitter (`retries`,
//                    `retry_backoff_ms`);
//   connection lost  thrown to task_runner, which reconnects, claims the task again and runs it
//   or in doubt      again from its cursor: the cursor says whether the last COMMIT went through;
//   permanent        `on_error: stop` — the job fails with the error, SQLSTATE and key range;
//                    `on_error: skip` — the range goes to failed_batches in the same transaction
//                    that moves the cursor past it; with `bisect: true` the range is halved
//                    until only the offending keys are set aside and the rest is processed.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "catalog/catalog.h"
#include "database/database.h"
#include "database/retry.h"
#include "engine/batch_sizer.h"
#include "engine/batch_sql.h"
#include "engine/health_throttle.h"
#include "output/progress.h"
#include "output/run_metrics.h"
#include "plan/jobs_file.h"
#include "plan/scheduler.h"
#include "state/job_control.h"
#include "state/state_store.h"

namespace pgxform {

class BatchRunner {
 public:
  BatchRunner(Session& session, StateStore& store, const ResolvedJob& job,
              const JobSettings& settings, std::string list, TaskId task, Progress& progress,
              HealthMonitor& health, RunMetrics& metrics);
  // From the task's cursor to its end, a stop, or a permanent failure, each recorded in the
  // state. Throws what task_runner must handle: a lost connection, an in-doubt COMMIT. Counts
  // the batches it commits in `committed`, which the caller reads also when it throws: a
  // connection that broke after progress is not one that keeps breaking.
  TaskOutcome run(long long& committed);

 private:
  // How one transactional step ended, after its transient failures were retried.
  struct Step {
    enum class Kind { ok, permanent, stopped };
    Kind kind = Kind::ok;
    Failure failure;
  };
  using Work = std::function<void(pqxx::work&)>;
  using Range = std::pair<std::string, std::string>;

  // Runs `work` in a transaction until it commits or fails for good.
  Step transact(const Work& work);
  // The statements, each as one transactional step.
  Step next_batch(bool& finished);
  Step process_range(const Range& range);
  Step skip_range(const Range& range, const Failure& failure);
  // on_error: skip — sets `range` aside, narrowing it down first with bisect.
  Step set_aside(const Range& range, const Failure& failure);

  // Runs prepared statement `name` (`sql` builds its text the first time) with the five
  // parameters of batch_sql.h (seven with a failure's SQLSTATE and error).
  pqxx::result exec(pqxx::work& tx, const std::string& name,
                    const std::function<std::string()>& sql,
                    const std::optional<std::string>& second,
                    const std::optional<std::string>& fifth,
                    const std::optional<std::string>& sqlstate = std::nullopt,
                    const std::optional<std::string>& error = std::nullopt);
  // Commits the range the batch statement processed (its plan in `plan`): the log statement
  // writes the batch_log row; the cursor must have moved. Returns the range's last key, with
  // its rows in `rows`; none when the statement found no key left (nothing is committed).
  std::optional<std::string> commit_logged(pqxx::work& tx, const pqxx::result& plan,
                                           long long& rows);
  std::optional<Range> next_range();
  std::optional<Range> split(const Range& range);
  TaskOutcome fail(const Failure& failure);
  BatchShape shape() const;
  // Between two batches: what the control table says for this job (job_control.h), read at
  // most once a second. Waits while the job is paused, applies new sizes, sleeps pause_ms.
  // False when a stop signal came while it waited.
  bool follow_control();
  void read_control();
  // Waits while a throttle: limit is exceeded (health_throttle.h). False on a stop signal.
  bool wait_for_health();

  Session& m_session;
  StateStore& m_store;
  const ResolvedJob& m_job;
  const JobSettings& m_settings;
  TaskId m_task;
  Progress& m_progress;
  HealthMonitor& m_health;
  RunMetrics& m_metrics;
  Slicing m_slicing;
  Cursor m_cursor;
  BatchSizer m_sizer;
  std::string m_list;
  JobControl m_control;
  std::optional<std::chrono::steady_clock::time_point> m_control_read;
  std::map<std::string, BatchFunction> m_functions;  // by statement variant, built once
  long long* m_committed = nullptr;
};

}  // namespace pgxform
