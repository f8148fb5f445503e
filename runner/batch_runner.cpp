#include "batch_runner.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "retry.h"
#include "stop_signal.h"

namespace pgxform {

namespace {

enum class UpperBound { open, hi_key };

// Placeholders for the cursor's last key (text), the batch size and, for a bounded slice, its
// hi_key. Both bounds are cast to the key's type on the server.
struct KeyParams {
  const char* last_key = "$1";
  const char* limit = "$2";
  const char* hi_key = "$5";
};

// The batch's bounds, found on the key's index in two probes: lo, the first key after the cursor,
// and hi, the last of the next `limit` keys. ORDER BY ... LIMIT 1 rather than min/max, which not
// every key type has (uuid has not).
std::string bounds_sql(const ResolvedJob& job, CursorStart start, UpperBound upper,
                       KeyParams p = {}) {
  const std::string key = "t." + job.key_sql;
  std::string where = start == CursorStart::none
                          ? key + " IS NOT NULL"
                          : key + " > (" + p.last_key + "::text)::" + job.key_type;
  if (upper == UpperBound::hi_key)
    where += " AND " + key + " <= (" + p.hi_key + "::text)::" + job.key_type;
  const std::string from = " FROM " + job.table_sql + " t WHERE " + where + " ORDER BY " + key;
  return "SELECT (SELECT " + key + from + " LIMIT 1) AS lo, (SELECT k FROM (SELECT " + key +
         " AS k" + from + " LIMIT " + p.limit + ") s ORDER BY k DESC LIMIT 1) AS hi";
}

// The rows of the leading table in [lo, hi]: every row of the last key counts, even those past
// the LIMIT that found hi.
std::string rows_sql(const ResolvedJob& job) {
  return "(SELECT count(*) FROM " + job.table_sql + " t WHERE t." + job.key_sql +
         " >= b.lo AND t." + job.key_sql + " <= b.hi)";
}

std::string statement_name(const TaskId& task, CursorStart start, UpperBound upper,
                           const char* what) {
  return std::string(what) + "_" + std::to_string(std::hash<std::string>{}(task.job)) + "_" +
         std::to_string(task.slice) + (start == CursorStart::none ? "_first" : "_next") +
         (upper == UpperBound::hi_key ? "_hi" : "");
}

std::string batch_sql_with(const ResolvedJob& job, const std::string& state, Slicing slicing,
                           CursorStart start, UpperBound upper) {
  const bool sliced = slicing == Slicing::slice;
  const std::string cursor_table = state + (sliced ? ".job_slice" : ".job_state");
  std::string sql =
      "WITH b AS MATERIALIZED (" + bounds_sql(job, start, upper) +
      "), r AS MATERIALIZED (SELECT b.lo, b.hi, " + rows_sql(job) + " AS rows, " +
      job.function_sql +
      "(b.lo, b.hi)::text AS result FROM b WHERE b.lo IS NOT NULL),"
      // The cursor moves only from where this runner read it: never the same batch twice.
      " c AS (UPDATE " +
      cursor_table +
      " c SET last_key = r.hi::text, rows_done = c.rows_done + r.rows,"
      " batches_done = c.batches_done + 1, status = 'running', updated_at = clock_timestamp()"
      " FROM r WHERE c.job = $3" +
      (sliced ? " AND c.slice = $4" : "") +
      " AND c.last_key IS NOT DISTINCT FROM $1::text RETURNING c.batches_done),";
  std::string numbered = "c";
  if (sliced) {
    sql += " j AS (UPDATE " + state +
           ".job_state j SET rows_done = j.rows_done + r.rows, batches_done = j.batches_done + 1,"
           " status = 'running', updated_at = clock_timestamp() FROM r, c WHERE j.job = $3"
           " RETURNING j.batches_done),";
    numbered = "j";
  }
  sql += " l AS (INSERT INTO " + state +
         ".batch_log (job, batch_no, slice, first_key, last_key, rows, rows_written,"
         " started_at, duration_ms) SELECT $3, x.batches_done, " +
         (sliced ? "$4" : "0") +
         ", r.lo::text, r.hi::text, r.rows, NULLIF(r.result, '')::bigint, statement_timestamp(),"
         " 1000 * extract(epoch FROM clock_timestamp() - statement_timestamp()) FROM r, " +
         numbered +
         " x RETURNING 1)"
         " SELECT r.lo::text, r.hi::text, r.rows, (SELECT count(*) FROM c) AS moved,"
         " (SELECT count(*) FROM l) AS logged FROM r";
  return sql;
}

}  // namespace

std::string batch_sql(const ResolvedJob& job, const std::string& state_schema_sql, Slicing slicing,
                      CursorStart start) {
  return batch_sql_with(job, state_schema_sql, slicing, start, UpperBound::open);
}

BatchRunner::BatchRunner(Session& session, StateStore& store, const ResolvedJob& job, TaskId task,
                         std::string list, RetryPolicy retry, Progress& progress)
    : m_session(session),
      m_store(store),
      m_job(job),
      m_task(std::move(task)),
      m_list(std::move(list)),
      m_retry(retry),
      m_progress(progress),
      m_slicing(job.parallel > 1 ? Slicing::slice : Slicing::whole_job) {}

std::pair<std::optional<std::string>, std::optional<std::string>> BatchRunner::batch_range(
    const Cursor& cursor) {
  try {
    pqxx::read_transaction tx(m_session.conn());
    const CursorStart start = cursor.last_key ? CursorStart::after_last_key : CursorStart::none;
    const UpperBound upper = cursor.hi_key ? UpperBound::hi_key : UpperBound::open;
    // $1 is named even when the first batch does not use it, so that it has a type.
    const std::string sql = "SELECT lo::text, hi::text, $1::text FROM (" +
                            bounds_sql(m_job, start, upper, {"$1", "$2", "$3"}) + ") b";
    const pqxx::result r =
        upper == UpperBound::hi_key
            ? tx.exec_params(sql, cursor.last_key, m_job.batch_size, cursor.hi_key)
            : tx.exec_params(sql, cursor.last_key, m_job.batch_size);
    if (!r.empty() && !r[0][0].is_null())
      return {r[0][0].as<std::string>(), r[0][1].as<std::string>()};
  } catch (const std::exception& e) {
    spdlog::warn("{}: could not find the failing batch's key range: {}", m_task.text(),
                 redact(e.what()));
  }
  return {std::nullopt, std::nullopt};
}

TaskOutcome BatchRunner::fail(const Failure& failure, const Cursor& cursor) {
  auto [first, last] = batch_range(cursor);
  std::string message =
      m_task.text() + ": batch [" + first.value_or("?") + ", " + last.value_or("?") + "] failed";
  if (!failure.sqlstate.empty()) message += " (SQLSTATE " + failure.sqlstate + ")";
  message += ": " + failure.message;
  m_store.mark_failed(m_task, m_slicing == Slicing::slice, failure, first, last);
  return {TaskOutcome::Kind::failed, message};
}

TaskOutcome BatchRunner::run() {
  const bool sliced = m_slicing == Slicing::slice;
  std::optional<Cursor> start_cursor = m_store.read_cursor(m_task, sliced);
  if (!start_cursor) {
    // A slice that was never cut: the table was empty when the run started. Its rows, if any
    // arrived since, are the next run's, which cuts the slices first.
    m_store.mark_done(m_task, sliced);
    return {TaskOutcome::Kind::finished, ""};
  }
  Cursor cursor = *start_cursor;
  int attempt = 0;
  std::optional<std::string> committing;  // the last key of a batch whose COMMIT was sent
  while (true) {
    if (stop_level() >= 1) {
      m_store.mark_stopped(m_task, sliced);
      return {TaskOutcome::Kind::stopped, ""};
    }
    const CursorStart start = cursor.last_key ? CursorStart::after_last_key : CursorStart::none;
    const UpperBound upper = cursor.hi_key ? UpperBound::hi_key : UpperBound::open;
    const std::string name = statement_name(m_task, start, upper, "batch");
    try {
      m_session.prepare(name, batch_sql_with(m_job, m_store.schema_sql(), m_slicing, start, upper));
      pqxx::work tx(m_session.conn());
      const pqxx::result r =
          !sliced ? tx.exec_prepared(name, cursor.last_key, m_job.batch_size, m_job.name)
          : upper == UpperBound::hi_key
              ? tx.exec_prepared(name, cursor.last_key, m_job.batch_size, m_job.name, m_task.slice,
                                 cursor.hi_key)
              : tx.exec_prepared(name, cursor.last_key, m_job.batch_size, m_job.name, m_task.slice);
      if (r.empty()) {
        tx.commit();
        m_store.mark_done(m_task, sliced);
        m_progress.job_finished(m_task.text());
        return {TaskOutcome::Kind::finished, ""};
      }
      if (r[0]["moved"].as<long long>() != 1) {
        // The cursor is not where we read it: someone else moved it. Undo the function's work.
        tx.abort();
        return {TaskOutcome::Kind::deferred, "the cursor of " + m_task.text() + " moved"};
      }
      committing = r[0][1].as<std::string>();
      tx.commit();
      cursor.last_key = committing;
      committing.reset();
      attempt = 0;
      m_progress.batch_done(m_task.text(), r[0][2].as<long long>(), *cursor.last_key);
    } catch (const std::exception& e) {
      const Failure failure = classify(e);
      if (failure.kind == FailureKind::cancelled && stop_level() >= 2) {
        m_store.mark_stopped(m_task, sliced);
        return {TaskOutcome::Kind::stopped, ""};
      }
      const bool retriable = failure.kind == FailureKind::transient ||
                             failure.kind == FailureKind::connection_lost ||
                             failure.kind == FailureKind::in_doubt;
      if (!retriable || attempt >= m_retry.retries) return fail(failure, cursor);
      spdlog::warn("{}: {} (attempt {} of {}), retrying", m_task.text(), failure.message,
                   attempt + 1, m_retry.retries);
      std::this_thread::sleep_for(backoff_delay(attempt++, m_retry.backoff));
      try {
        if (failure.kind != FailureKind::transient) {
          m_session.reconnect();
          // The claim died with the old session: take it again, or leave the task to whoever
          // has it now.
          if (!m_store.try_claim(m_task, m_list))
            return {TaskOutcome::Kind::deferred, m_task.text() + " was claimed by another runner"};
        }
        // Whether an in-doubt COMMIT went through is read from the cursor, never guessed.
        cursor = m_store.read_cursor(m_task, sliced).value_or(cursor);
        if (committing && cursor.last_key == committing)
          spdlog::info("{}: the batch ending at {} did commit", m_task.text(), *committing);
        committing.reset();
      } catch (const std::exception& again) {
        spdlog::warn("{}: reconnect failed: {}", m_task.text(), redact(again.what()));
      }
    }
  }
}

TaskOutcome run_step(Session& session, StateStore& store, const std::string& job,
                     const std::string& sql) {
  (void)session;
  try {
    if (store.run_step_once(job, sql))
      spdlog::info("{}: step done", job);
    else
      spdlog::info("{}: step already done, not run again", job);
    return {TaskOutcome::Kind::finished, ""};
  } catch (const std::exception& e) {
    const Failure failure = classify(e);
    if (failure.kind == FailureKind::cancelled && stop_level() >= 2) {
      store.mark_stopped(TaskId{job, 0}, false);
      return {TaskOutcome::Kind::stopped, ""};
    }
    store.mark_failed(TaskId{job, 0}, false, failure, std::nullopt, std::nullopt);
    return {TaskOutcome::Kind::failed,
            job + ": step failed" +
                (failure.sqlstate.empty() ? "" : " (SQLSTATE " + failure.sqlstate + ")") + ": " +
                failure.message};
  }
}

}  // namespace pgxform
