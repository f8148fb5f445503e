#include "state/state_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "base/errors.h"
#include "base/sql_text.h"
#include "catalog/table_stats.h"
#include "state/batch_log.h"
#include "state/capture_state.h"
#include "state/failed_ranges.h"
#include "state/job_identity.h"
#include "state/state_locks.h"

namespace pgxform {

namespace {

std::optional<std::string> opt(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::string>();
}

// Clears the last error of job_state: the job got past it (@no_error@).
const SqlPart k_no_error{
    "@no_error@", "error = NULL, sqlstate = NULL, error_first_key = NULL, error_last_key = NULL"};

// A job's batches so far and its slices ($1 the job).
const char* const k_batches_and_slices = R"(
  SELECT batches_done, (SELECT pg_catalog.count(*) FROM @job_slice@ s WHERE s.job = j.job)
  FROM @job_state@ j WHERE job = $1)";

}  // namespace

StateStore::StateStore(pqxx::connection& conn, StateSchema schema)
    : m_conn(&conn), m_schema(std::move(schema)) {}

StateStore::StateStore(Session& session, StateSchema schema)
    : m_session(&session), m_schema(std::move(schema)) {}

int StateStore::version() {
  return state_version(conn(), m_schema);
}

void StateStore::ensure_schema() {
  ensure_state_schema(conn(), m_schema);
}

void StateStore::register_jobs(const JobsFile& file) {
  pqxx::work tx(conn());
  transaction_lock(tx, setup_lock(m_schema));
  for (const auto& list : file.lists)
    for (const auto& job : list.jobs)
      tx.exec_params(m_schema.fill(R"(
        INSERT INTO @job_state@ (job, list) VALUES ($1, $2)
        ON CONFLICT (job) DO UPDATE SET list = EXCLUDED.list
        WHERE job_state.list IS DISTINCT FROM EXCLUDED.list)"),
                     job.name, list.name);
  tx.commit();
}

std::set<std::string> StateStore::done_jobs() {
  std::set<std::string> out;
  for (const auto& s : read_status())
    if (s.status == "done") out.insert(s.job);
  return out;
}

std::vector<JobStatus> StateStore::read_status() {
  std::vector<JobStatus> out;
  pqxx::read_transaction tx(conn());
  const int version = state_version(tx, m_schema);
  if (version == 0) return out;
  // The holder of a job is whoever holds one of its tasks' locks now ($1, the lock space); its
  // catch-up's, whoever holds its catch-up lock ($2, the lock's space). @from@: where the
  // runner's identity starts in its application_name.
  static const char* const k_sql = R"(
    SELECT j.job, j.list, j.status, j.last_key, j.rows_done, j.batches_done, j.slices,
           (SELECT pg_catalog.count(*) FROM @job_slice@ s
            WHERE s.job = j.job AND s.status = 'done'),
           (SELECT pg_catalog.count(*) FROM @job_slice@ s
            WHERE s.job = j.job AND s.status = 'running'),
           j.started_at::text, j.updated_at::text, j.finished_at::text, j.error, j.sqlstate,
           j.error_first_key, j.error_last_key,
           (SELECT pg_catalog.string_agg(DISTINCT pg_catalog.substr(a.application_name, @from@), ', ')
            FROM pg_catalog.generate_series(0, j.slices - 1) g
            JOIN pg_catalog.pg_locks l ON @task_held@
            JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid),
           @unresolved@, @waiting@,
           (SELECT pg_catalog.string_agg(DISTINCT pg_catalog.substr(a.application_name, @from@), ', ')
            FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
            WHERE @catch_up_held@),
           @catch_up_waiting@,
           (SELECT pg_catalog.count(*) FROM pg_catalog.generate_series(0, j.slices - 1) g
            JOIN pg_catalog.pg_locks l ON @task_held@)
    FROM @job_state@ j)";
  const std::string sql = m_schema.fill(
      k_sql,
      {{"@from@", std::to_string(k_application_prefix.size() + 1)},
       {"@task_held@", lock_held_sql("$1", task_name_sql("j.job", "g"))},
       {"@catch_up_held@", lock_held_sql("$2", "j.job")},
       {"@unresolved@", unresolved_count_sql(m_schema, version, "j.job")},
       {"@waiting@", has_feature(version, StateFeature::control) ? "j.waiting" : "NULL::text"},
       {"@catch_up_waiting@",
        has_feature(version, StateFeature::exact) ? "j.catch_up_waiting" : "NULL::text"}});
  const pqxx::result rows = tx.exec_params(sql, m_schema.name, catch_up_lock(m_schema, "").space);
  for (const auto& r : rows) {
    JobStatus s;
    s.job = r[0].as<std::string>();
    s.list = r[1].as<std::string>();
    s.status = r[2].as<std::string>();
    s.last_key = opt(r[3]);
    s.rows_done = r[4].as<long long>();
    s.batches_done = r[5].as<long long>();
    s.slices = r[6].as<int>();
    s.slices_done = r[7].as<int>();
    s.slices_running = r[8].as<int>();
    s.started_at = opt(r[9]);
    s.updated_at = opt(r[10]);
    s.finished_at = opt(r[11]);
    s.error = opt(r[12]);
    s.sqlstate = opt(r[13]);
    s.error_first_key = opt(r[14]);
    s.error_last_key = opt(r[15]);
    s.runner = opt(r[16]);
    s.set_aside = r[17].as<long long>();
    s.waiting = opt(r[18]);
    s.catch_up_runner = opt(r[19]);
    s.catch_up_waiting = opt(r[20]);
    s.slices_held = r[21].as<int>();
    out.push_back(s);
  }
  return out;
}

std::optional<JobStatus> StateStore::job_status(const std::string& job) {
  for (auto& s : read_status())
    if (s.job == job) return s;
  return std::nullopt;
}

std::optional<std::string> StateStore::slicing_problem(const ResolvedJob& job) {
  pqxx::read_transaction tx(conn());
  if (state_version(tx, m_schema) == 0) return std::nullopt;
  const pqxx::result r = tx.exec_params(m_schema.fill(k_batches_and_slices), job.name);
  if (r.empty() || r[0][0].as<long long>() == 0) return std::nullopt;
  // To auto from anything: the slices recorded stay (or the job's cursor becomes slice 0), and
  // are split further from where they are.
  if (job.parallel_auto) return std::nullopt;
  const int stored = std::max(1, r[0][1].as<int>());
  if (stored == job.parallel) return std::nullopt;
  return "job '" + job.name + "': parallel changed from " + std::to_string(stored) + " to " +
         std::to_string(job.parallel) +
         (stored > 1 ? " after it started; restore it, or reset the job to start again "
                       "(parallel: auto keeps its slices too)"
                     : " after it started; restore it, or reset the job to start again");
}

// A job with `parallel: auto` starts as one slice, which is split while workers are idle. A job
// that ran before as one task (parallel: 1) goes on from its cursor, as slice 0; slices recorded
// before (parallel: K, or auto) stay as they are.
void StateStore::ensure_auto_slice(pqxx::work& tx, const ResolvedJob& job, int stored) {
  if (stored == 0)
    tx.exec_params(m_schema.fill(R"(
      INSERT INTO @job_slice@ (job, slice, last_key, status, rows_done, batches_done)
      SELECT job, 0, last_key, CASE WHEN status = 'done' THEN 'done' ELSE 'pending' END,
             rows_done, batches_done
      FROM @job_state@ WHERE job = $1)"),
                   job.name);
  tx.exec_params(m_schema.fill(R"(
    UPDATE @job_state@ SET slices = (SELECT pg_catalog.count(*) FROM @job_slice@ WHERE job = $1)
    WHERE job = $1)"),
                 job.name);
  tx.commit();
}

void StateStore::ensure_slices(const ResolvedJob& job) {
  pqxx::work tx(conn());
  transaction_lock(tx, setup_lock(m_schema));
  const pqxx::row state = tx.exec_params1(m_schema.fill(k_batches_and_slices), job.name);
  const long long batches = state[0].as<long long>();
  const int stored = state[1].as<int>();
  if (job.parallel_auto) return ensure_auto_slice(tx, job, stored);
  if (stored == job.parallel || (job.parallel == 1 && stored == 0)) return;
  if (batches > 0) {
    tx.abort();
    // Another runner's batches began since this run's preflight.
    if (auto problem = slicing_problem(job)) throw PreflightError({*problem});
    return;
  }
  tx.exec_params(m_schema.fill("DELETE FROM @job_slice@ WHERE job = $1"), job.name);
  if (job.parallel > 1) {
    // K-1 boundaries, evenly spaced in the key's distribution.
    std::vector<double> positions;
    for (int i = 1; i < job.parallel; ++i) positions.push_back(double(i) / job.parallel);
    const std::vector<std::string> bounds = keys_at(tx, job, positions);
    // An empty table: slices are cut once it has rows. Nothing is stored until then.
    if (bounds.size() + 1 != size_t(job.parallel)) {
      tx.commit();
      return;
    }
    for (int i = 0; i < job.parallel; ++i) {
      std::optional<std::string> lo, hi;
      if (i > 0) lo = bounds[size_t(i) - 1];
      if (i < job.parallel - 1) hi = bounds[size_t(i)];
      tx.exec_params(m_schema.fill(R"(
        INSERT INTO @job_slice@ (job, slice, lo_key, hi_key, last_key)
        VALUES ($1, $2, $3, $4, $3))"),
                     job.name, i, lo, hi);
    }
  }
  tx.exec_params(m_schema.fill("UPDATE @job_state@ SET slices = $2 WHERE job = $1"), job.name,
                 job.parallel);
  tx.commit();
}

std::vector<std::string> StateStore::changed_functions(
    const std::map<std::string, ResolvedJob>& jobs, const std::set<std::string>& accepted) {
  std::vector<std::string> problems;
  pqxx::read_transaction tx(conn());
  if (!has_feature(state_version(tx, m_schema), StateFeature::function_versions)) return problems;
  for (const auto& [name, job] : jobs) {
    if (job.function_version.empty() || accepted.count(name)) continue;
    const pqxx::result r = tx.exec_params(m_schema.fill(R"(
      SELECT fn_version FROM @job_state@
      WHERE job = $1 AND status <> 'done' AND batches_done > 0
        AND fn_version IS DISTINCT FROM $2 AND fn_version IS NOT NULL)"),
                                          name, job.function_version);
    if (!r.empty())
      problems.push_back("job '" + name + "': function " + job.function_sql +
                         " changed since the job started (version " +
                         r[0][0].as<std::string>().substr(0, 12) + ", now " +
                         job.function_version.substr(0, 12) +
                         "); its batches would be split between two versions. Restore the "
                         "function, or run with --accept-changed " +
                         name + ", or `pgxform reset " + name + "` to start the job again");
  }
  return problems;
}

void StateStore::pin_function_versions(const std::map<std::string, ResolvedJob>& jobs) {
  pqxx::work tx(conn());
  transaction_lock(tx, setup_lock(m_schema));
  for (const auto& [name, job] : jobs) {
    if (job.function_version.empty()) continue;
    const pqxx::result r = tx.exec_params(m_schema.fill(R"(
      UPDATE @job_state@ j SET fn_version = $2
      FROM (SELECT fn_version AS old FROM @job_state@ WHERE job = $1 FOR UPDATE) o
      WHERE j.job = $1 AND j.fn_version IS DISTINCT FROM $2
      RETURNING o.old)"),
                                          name, job.function_version);
    if (!r.empty() && !r[0][0].is_null())
      spdlog::warn("job '{}': function version {} replaces {} from here on", name,
                   job.function_version.substr(0, 12), r[0][0].as<std::string>().substr(0, 12));
  }
  tx.commit();
}

bool StateStore::try_claim(const TaskId& task, const std::string& list) {
  pqxx::work tx(conn());
  // A session lock: it outlives this transaction and is held while the task runs.
  if (!try_session_lock(tx, task_lock(m_schema, task))) return false;
  // Catch-up leaves the job's row to the main pass: its status, runner and start are the pass's.
  if (task.phase == Phase::catch_up) {
    tx.commit();
    return true;
  }
  // A task that was pending or failed is running again; a done one stays done.
  const SqlPart claimed{"@claimed@", R"(updated_at = pg_catalog.now(),
      status = CASE WHEN status IN ('pending', 'failed') THEN 'running' ELSE status END)"};
  tx.exec_params(m_schema.fill(R"(
    UPDATE @job_state@
    SET runner = $2, list = $3, started_at = coalesce(started_at, pg_catalog.now()), @claimed@,
        slices = greatest(slices, $4 + 1)
    WHERE job = $1)",
                               {claimed}),
                 task.job, runner_identity(), list, task.slice);
  tx.exec_params(m_schema.fill(R"(
    UPDATE @job_slice@ SET runner = $3, @claimed@ WHERE job = $1 AND slice = $2)",
                               {claimed}),
                 task.job, task.slice, runner_identity());
  tx.commit();
  return true;
}

void StateStore::release(const TaskId& task) {
  pqxx::nontransaction tx(conn());
  session_unlock(tx, task_lock(m_schema, task));
}

std::optional<std::string> StateStore::task_holder(const TaskId& task) {
  pqxx::read_transaction tx(conn());
  const std::optional<LockHolder> holder = lock_holder(tx, task_lock(m_schema, task));
  if (!holder) return std::nullopt;
  return holder_name(*holder);
}

std::optional<Cursor> StateStore::read_cursor(const TaskId& task, Slicing slicing) {
  pqxx::read_transaction tx(conn());
  const pqxx::result r =
      slicing == Slicing::slice
          ? tx.exec_params(m_schema.fill(R"(
              SELECT last_key, hi_key, status FROM @job_slice@ WHERE job = $1 AND slice = $2)"),
                           task.job, task.slice)
          : tx.exec_params(
                m_schema.fill("SELECT last_key, NULL, status FROM @job_state@ WHERE job = $1"),
                task.job);
  if (r.empty()) return std::nullopt;
  return Cursor{opt(r[0][0]), opt(r[0][1]), r[0][2].as<std::string>(), task.slice};
}

std::optional<Cursor> StateStore::next_cursor(const std::string& job, Slicing slicing) {
  pqxx::read_transaction tx(conn());
  if (state_version(tx, m_schema) == 0) return std::nullopt;
  const pqxx::result r =
      slicing == Slicing::slice
          ? tx.exec_params(m_schema.fill(R"(
              SELECT last_key, hi_key, status, slice FROM @job_slice@
              WHERE job = $1 AND status <> 'done' ORDER BY slice LIMIT 1)"),
                           job)
          : tx.exec_params(
                m_schema.fill("SELECT last_key, NULL, status, 0 FROM @job_state@ WHERE job = $1"),
                job);
  if (r.empty()) return std::nullopt;
  return Cursor{opt(r[0][0]), opt(r[0][1]), r[0][2].as<std::string>(), r[0][3].as<int>()};
}

namespace {

// A task's closing state change waits for its WAL to be flushed, whatever the batches before
// it did (they may commit with synchronous_commit off, see task_runner.h): as WAL is flushed in
// order, everything the task committed is then on disk, so a job shown done, failed or stopped
// stays so after a server crash. The server's own setting, at least a local flush.
// Called first in the transaction, so that its statements already run under the setting.
void flush_at_commit(pqxx::work& tx) {
  tx.exec(R"(
    SELECT pg_catalog.set_config('synchronous_commit',
                                 CASE s.reset_val WHEN 'off' THEN 'local' ELSE s.reset_val END,
                                 true)
    FROM pg_catalog.pg_settings s WHERE s.name = 'synchronous_commit')");
}

}  // namespace

void StateStore::set_waiting(const TaskId& task, const std::optional<std::string>& why) {
  static const char* const k_waiting = "UPDATE @job_state@ SET @column@ = $2 WHERE job = $1";
  pqxx::work tx(conn());
  tx.exec_params(
      m_schema.fill(k_waiting,
                    {{"@column@", task.phase == Phase::catch_up ? "catch_up_waiting" : "waiting"}}),
      task.job, why);
  tx.commit();
}

std::optional<long long> StateStore::mark_done(const TaskId& task, Slicing slicing) {
  pqxx::work tx(conn());
  flush_at_commit(tx);
  // Slices finishing at the same moment each see the other still running unless they take
  // turns: the job's row lock orders them, and the last one marks the job done.
  tx.exec_params(m_schema.fill("SELECT 1 FROM @job_state@ WHERE job = $1 FOR UPDATE"), task.job);
  if (slicing == Slicing::slice)
    tx.exec_params(m_schema.fill(R"(
      UPDATE @job_slice@ SET status = 'done', updated_at = pg_catalog.now()
      WHERE job = $1 AND slice = $2)"),
                   task.job, task.slice);
  const pqxx::result done = tx.exec_params(m_schema.fill(R"(
    UPDATE @job_state@ j
    SET status = 'done', updated_at = pg_catalog.now(),
        finished_at = CASE WHEN status = 'done' THEN finished_at ELSE pg_catalog.now() END,
        @no_error@
    WHERE job = $1 AND NOT EXISTS (SELECT 1 FROM @job_slice@ s
                                   WHERE s.job = j.job AND s.status <> 'done')
    RETURNING rows_done)",
                                                         {k_no_error}),
                                           task.job);
  tx.commit();
  if (done.empty()) return std::nullopt;
  return done[0][0].as<long long>();
}

void StateStore::mark_failed(const TaskId& task, Slicing slicing, const Failure& failure,
                             const std::optional<std::string>& first_key,
                             const std::optional<std::string>& last_key) {
  pqxx::work tx(conn());
  flush_at_commit(tx);
  if (slicing == Slicing::slice)
    tx.exec_params(m_schema.fill(R"(
      UPDATE @job_slice@ SET status = 'failed', updated_at = pg_catalog.now()
      WHERE job = $1 AND slice = $2)"),
                   task.job, task.slice);
  std::optional<std::string> sqlstate;
  if (!failure.sqlstate.empty()) sqlstate = failure.sqlstate;
  tx.exec_params(m_schema.fill(R"(
    UPDATE @job_state@
    SET status = 'failed', updated_at = pg_catalog.now(), error = $2, sqlstate = $3,
        error_first_key = $4, error_last_key = $5
    WHERE job = $1)"),
                 task.job, failure.message, sqlstate, first_key, last_key);
  tx.commit();
}

void StateStore::mark_catch_up_failed(const std::string& job, const Failure& failure,
                                      const std::optional<std::string>& first_key,
                                      const std::optional<std::string>& last_key) {
  pqxx::work tx(conn());
  flush_at_commit(tx);
  std::optional<std::string> sqlstate;
  if (!failure.sqlstate.empty()) sqlstate = failure.sqlstate;
  tx.exec_params(m_schema.fill(R"(
    UPDATE @job_state@
    SET updated_at = pg_catalog.now(), error = 'catch-up: ' || $2, sqlstate = $3,
        error_first_key = $4, error_last_key = $5
    WHERE job = $1)"),
                 job, failure.message, sqlstate, first_key, last_key);
  tx.commit();
}

void StateStore::clear_catch_up_error(const std::string& job) {
  static const std::string k_clear = R"(
    UPDATE @job_state@ j SET error = NULL, sqlstate = NULL, error_first_key = NULL,
                             error_last_key = NULL, updated_at = pg_catalog.now()
    WHERE j.job = $1 AND j.error LIKE 'catch-up: %'
      AND NOT EXISTS (SELECT 1 FROM @failed_batches@ f
                      WHERE f.job = j.job AND f.catch_up AND f.resolved_at IS NULL))";
  pqxx::work tx(conn());
  tx.exec_params(fill_sql(k_clear, {{"@job_state@", m_schema.table("job_state")},
                                    {"@failed_batches@", m_schema.table("failed_batches")}}),
                 job);
  tx.commit();
}

void StateStore::mark_stopped(const TaskId& task, Slicing slicing) {
  pqxx::work tx(conn());
  flush_at_commit(tx);
  if (slicing == Slicing::slice)
    tx.exec_params(m_schema.fill(R"(
      UPDATE @job_slice@ SET status = 'pending', updated_at = pg_catalog.now()
      WHERE job = $1 AND slice = $2 AND status = 'running')"),
                   task.job, task.slice);
  tx.exec_params(m_schema.fill(R"(
    UPDATE @job_state@ SET status = 'pending', updated_at = pg_catalog.now()
    WHERE job = $1 AND status = 'running')"),
                 task.job);
  tx.commit();
}

bool StateStore::run_step_once(const std::string& job, const std::string& sql) {
  pqxx::work tx(conn());
  const auto status =
      tx.exec_params1(m_schema.fill("SELECT status FROM @job_state@ WHERE job = $1 FOR UPDATE"),
                      job)[0]
          .as<std::string>();
  if (status == "done") return false;
  tx.exec(sql);
  tx.exec_params(m_schema.fill(R"(
    UPDATE @job_state@
    SET status = 'done', batches_done = batches_done + 1, updated_at = pg_catalog.now(),
        finished_at = pg_catalog.now(), @no_error@
    WHERE job = $1)",
                               {k_no_error}),
                 job);
  tx.commit();
  return true;
}

void StateStore::reset_job(const std::string& job) {
  pqxx::work tx(conn());
  drop_batches(tx, m_schema, job);
  tx.exec_params(m_schema.fill("DELETE FROM @job_slice@ WHERE job = $1"), job);
  drop_unresolved(tx, m_schema, job);
  if (has_feature(state_version(tx, m_schema), StateFeature::job_identity))
    forget_identity(tx, m_schema, job);
  // A fresh pass re-covers whatever its change log lacked.
  clear_capture_lost(tx, m_schema, job);
  tx.exec_params(m_schema.fill(R"(
    UPDATE @job_state@
    SET last_key = NULL, rows_done = 0, batches_done = 0, slices = 1, fn_version = NULL,
        status = 'pending', started_at = NULL, finished_at = NULL,
        updated_at = pg_catalog.now(), @no_error@
    WHERE job = $1)",
                               {k_no_error}),
                 job);
  tx.commit();
}

void StateStore::reset_job_to(const ResolvedJob& job, const std::string& key) {
  pqxx::work tx(conn());
  // The counters keep counting each row once: the batches after the key are run again, so
  // they leave the log and the counters; a batch the key cuts keeps its rows up to the key.
  // $1 the job, $2 the key; @first@, @last@ and @key@ the batch's bounds and the key as the
  // key's type; @main@ leaves catch-up's batches (state version 9), no rows of the pass, alone.
  static const char* const k_forget = R"(
    WITH gone AS (
      DELETE FROM @batch_log@ b WHERE b.job = $1 @main@ AND @first@ > @key@
      RETURNING b.rows),
    cut AS (
      SELECT b.batch_no, b.rows,
             (SELECT pg_catalog.count(*) FROM @table@ t
              WHERE t.@key_column@ >= @first@ AND t.@key_column@ <= @key@) AS kept
      FROM @batch_log@ b
      WHERE b.job = $1 @main@ AND @first@ <= @key@ AND @last@ > @key@),
    trimmed AS (
      UPDATE @batch_log@ b SET last_key = $2, rows = cut.kept FROM cut
      WHERE b.job = $1 @main@ AND b.batch_no = cut.batch_no
      RETURNING cut.rows - cut.kept AS less)
    SELECT (SELECT COALESCE(pg_catalog.sum(rows), 0) FROM gone)
           + (SELECT COALESCE(pg_catalog.sum(less), 0) FROM trimmed),
           (SELECT pg_catalog.count(*) FROM gone))";
  const pqxx::row less = tx.exec_params1(
      m_schema.fill(k_forget, {{"@main@", main_pass_only(state_version(tx, m_schema), "b")},
                               {"@first@", as_key(job, "b.first_key")},
                               {"@last@", as_key(job, "b.last_key")},
                               {"@key@", as_key(job, "$2")},
                               {"@table@", job.table_sql},
                               {"@key_column@", job.key_sql}}),
      job.name, key);
  tx.exec_params(m_schema.fill(R"(
    UPDATE @job_state@
    SET last_key = $2, status = 'pending', finished_at = NULL,
        rows_done = GREATEST(rows_done - $3::bigint, 0),
        batches_done = GREATEST(batches_done - $4::bigint, 0),
        updated_at = pg_catalog.now(), @no_error@
    WHERE job = $1)",
                               {k_no_error}),
                 job.name, key, less[0].as<long long>(), less[1].as<long long>());
  drop_unresolved_after(tx, m_schema, job, key);
  tx.commit();
}

}  // namespace pgxform
