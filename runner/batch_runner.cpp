#include "batch_runner.h"

#include <spdlog/spdlog.h>

#include <iterator>
#include <thread>

#include "block_counters.h"
#include "stop_signal.h"

namespace pgxform {

namespace {

std::string statement_name(const TaskId& task, const std::string& what) {
  return what + "_" + std::to_string(std::hash<std::string>{}(task.job)) + "_" +
         std::to_string(task.slice);
}

std::string describe(const Failure& failure) {
  return (failure.sqlstate.empty() ? "" : "SQLSTATE " + failure.sqlstate + ": ") + failure.message;
}

}  // namespace

void apply_timeouts(pqxx::connection& conn, const JobSettings& settings) {
  pqxx::nontransaction tx(conn);
  tx.exec_params(
      "SELECT set_config('statement_timeout', $1, false), set_config('lock_timeout', $2, false),"
      " set_config('idle_in_transaction_session_timeout', $3, false)",
      settings.statement_timeout, settings.lock_timeout,
      settings.idle_in_transaction_session_timeout);
}

BatchRunner::BatchRunner(Session& session, StateStore& store, const ResolvedJob& job,
                         const JobSettings& settings, TaskId task, std::string list,
                         Progress& progress)
    : m_session(session),
      m_store(store),
      m_job(job),
      m_settings(settings),
      m_task(std::move(task)),
      m_list(std::move(list)),
      m_progress(progress),
      m_slicing(job.parallel > 1 ? Slicing::slice : Slicing::whole_job) {}

BatchShape BatchRunner::shape() const {
  return {m_slicing, m_cursor.last_key ? CursorStart::after_last_key : CursorStart::none,
          m_cursor.hi_key ? UpperBound::hi_key : UpperBound::open};
}

pqxx::result BatchRunner::exec(pqxx::work& tx, const std::string& name,
                               const std::function<std::string()>& sql,
                               const std::optional<std::string>& second,
                               const std::optional<std::string>& fifth,
                               const std::optional<std::string>& sqlstate,
                               const std::optional<std::string>& error) {
  m_session.prepare(name, sql);
  if (error) {
    return tx.exec_prepared(name, m_cursor.last_key, second, m_job.name, m_task.slice, fifth,
                            sqlstate, error);
  }
  return tx.exec_prepared(name, m_cursor.last_key, second, m_job.name, m_task.slice, fifth);
}

pqxx::result BatchRunner::log_batch(pqxx::work& tx, const pqxx::result& plan) {
  const std::string name = "log_batch";
  m_session.prepare(name, [&] { return log_sql(m_store.schema_sql()); });
  std::optional<long long> c[std::size(k_counter_fields)];
  if (const auto counters = top_node_counters(plan[0][0].c_str())) {
    for (std::size_t i = 0; i < std::size(k_counter_fields); ++i)
      c[i] = (*counters).*k_counter_fields[i].member;
  } else {
    spdlog::debug("{}: no buffer counters in the batch's plan", m_task.text());
  }
  static_assert(std::size(k_counter_fields) == 8, "log_sql binds eight counters");
  return tx.exec_prepared(name, m_job.name, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]);
}

BatchRunner::Step BatchRunner::transact(const Work& work) {
  for (int attempt = 0;; ++attempt) {
    m_committing.reset();
    try {
      pqxx::work tx(m_session.conn());
      work(tx);
      return {};
    } catch (const std::exception& e) {
      const Failure failure = classify(e);
      if (failure.kind == FailureKind::cancelled && stop_level() >= 2)
        return {Step::Kind::stopped, failure};
      const bool connection =
          failure.kind == FailureKind::connection_lost || failure.kind == FailureKind::in_doubt;
      // A lost connection gets more tries than a transient error: a restarting server may take
      // a while to accept connections again.
      const int limit = m_settings.retries + (connection ? 10 : 0);
      if ((failure.kind != FailureKind::transient && !connection) || attempt >= limit)
        return {Step::Kind::permanent, failure};
      spdlog::warn("{}: {} (attempt {} of {}), retrying", m_task.text(), describe(failure),
                   attempt + 1, limit);
      std::this_thread::sleep_for(
          backoff_delay(attempt, std::chrono::milliseconds(m_settings.retry_backoff_ms)));
      try {
        if (connection) {
          m_session.reconnect();
          apply_timeouts(m_session.conn(), m_settings);
          // The claim died with the old session: take it again, or leave the task to whoever
          // holds it now.
          if (!m_store.try_claim(m_task, m_list)) return {Step::Kind::deferred, failure};
        }
        // Whether an in-doubt COMMIT went through is read from the cursor, never guessed.
        const std::string expected = m_committing.value_or("");
        if (auto cursor = m_store.read_cursor(m_task, m_slicing == Slicing::slice))
          m_cursor = *cursor;
        if (m_committing && m_cursor.last_key == m_committing) {
          spdlog::info("{}: the transaction moving to {} did commit", m_task.text(), expected);
          return {};
        }
      } catch (const std::exception& again) {
        spdlog::warn("{}: reconnecting failed: {}", m_task.text(), redact(again.what()));
      }
    }
  }
}

BatchRunner::Step BatchRunner::next_batch(bool& finished) {
  finished = false;
  long long rows = 0;
  const auto started = std::chrono::steady_clock::now();
  Step step = transact([&](pqxx::work& tx) {
    const BatchShape s = shape();
    const std::string name =
        statement_name(m_task, std::string("batch") + (s.start == CursorStart::none ? "0" : "") +
                                   (s.upper == UpperBound::hi_key ? "h" : ""));
    const pqxx::result r =
        log_batch(tx, exec(
                          tx, name, [&] { return batch_sql(m_job, m_store.schema_sql(), s); },
                          std::to_string(m_job.batch_size), m_cursor.hi_key));
    if (r.empty()) {
      tx.commit();
      finished = true;
      return;
    }
    if (r[0]["moved"].as<long long>() != 1)
      throw std::runtime_error("the cursor of " + m_task.text() + " moved under this runner");
    rows = r[0]["rows"].as<long long>();
    m_committing = r[0][1].as<std::string>();
    tx.commit();
    m_cursor.last_key = m_committing;
  });
  if (step.kind == Step::Kind::ok && !finished)
    m_progress.batch_done(
        m_task.text(), m_job.name, rows,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count(),
        m_cursor.last_key.value_or(""));
  return step;
}

BatchRunner::Step BatchRunner::process_range(const std::string& lo, const std::string& hi) {
  return transact([&](pqxx::work& tx) {
    const pqxx::result r = log_batch(
        tx, exec(
                tx, statement_name(m_task, "range"),
                [&] { return range_sql(m_job, m_store.schema_sql(), m_slicing); }, lo, hi));
    if (r.empty() || r[0]["moved"].as<long long>() != 1)
      throw std::runtime_error("the cursor of " + m_task.text() + " moved under this runner");
    m_committing = hi;
    tx.commit();
    m_cursor.last_key = hi;
  });
}

BatchRunner::Step BatchRunner::skip_range(const std::string& lo, const std::string& hi,
                                          const Failure& failure) {
  return transact([&](pqxx::work& tx) {
    const std::optional<std::string> sqlstate =
        failure.sqlstate.empty() ? std::nullopt : std::optional<std::string>(failure.sqlstate);
    const pqxx::result r = exec(
        tx, statement_name(m_task, "skip"),
        [&] { return skip_sql(m_store.schema_sql(), m_slicing); }, lo, hi, sqlstate,
        failure.message);
    if (r[0]["moved"].as<long long>() != 1)
      throw std::runtime_error("the cursor of " + m_task.text() + " moved under this runner");
    m_committing = hi;
    tx.commit();
    m_cursor.last_key = hi;
    spdlog::warn("{}: set aside [{}, {}]: {}", m_task.text(), lo, hi, describe(failure));
  });
}

std::optional<std::pair<std::string, std::string>> BatchRunner::next_range() {
  try {
    pqxx::read_transaction tx(m_session.conn());
    const pqxx::row r =
        tx.exec_params1(bounds_query(m_job, shape()), m_cursor.last_key, m_job.batch_size,
                        m_job.name, m_task.slice, m_cursor.hi_key);
    if (!r[0].is_null()) return std::make_pair(r[0].as<std::string>(), r[1].as<std::string>());
  } catch (const std::exception& e) {
    spdlog::warn("{}: could not find the failing batch's key range: {}", m_task.text(),
                 redact(e.what()));
  }
  return std::nullopt;
}

std::optional<std::pair<std::string, std::string>> BatchRunner::split(const std::string& lo,
                                                                      const std::string& hi) {
  pqxx::read_transaction tx(m_session.conn());
  const pqxx::row r = tx.exec_params1(split_query(m_job), lo, hi);
  if (r[0].is_null() || r[1].is_null()) return std::nullopt;
  return std::make_pair(r[0].as<std::string>(), r[1].as<std::string>());
}

BatchRunner::Step BatchRunner::set_aside(const std::string& lo, const std::string& hi,
                                         const Failure& failure) {
  if (!m_settings.bisect) return skip_range(lo, hi, failure);
  std::optional<std::pair<std::string, std::string>> halves;
  try {
    halves = split(lo, hi);
  } catch (const std::exception& e) {
    spdlog::warn("{}: cannot split [{}, {}]: {}", m_task.text(), lo, hi, redact(e.what()));
  }
  if (!halves) return skip_range(lo, hi, failure);  // a single key value: the culprit
  // Left to right, so that the cursor only ever moves forward.
  const std::pair<std::string, std::string> parts[] = {{lo, halves->first}, {halves->second, hi}};
  for (const auto& [a, b] : parts) {
    if (stop_level() >= 1) return {Step::Kind::stopped, failure};
    Step step = process_range(a, b);
    if (step.kind == Step::Kind::permanent) step = set_aside(a, b, step.failure);
    if (step.kind != Step::Kind::ok) return step;
  }
  return {};
}

TaskOutcome BatchRunner::fail(const Failure& failure) {
  const auto range = next_range();
  const std::optional<std::string> first =
      range ? std::optional<std::string>(range->first) : std::nullopt;
  const std::optional<std::string> last =
      range ? std::optional<std::string>(range->second) : std::nullopt;
  std::string message =
      m_task.text() + ": batch [" + first.value_or("?") + ", " + last.value_or("?") + "] failed";
  if (!failure.sqlstate.empty()) message += " (SQLSTATE " + failure.sqlstate + ")";
  message += ": " + failure.message;
  m_store.mark_failed(m_task, m_slicing == Slicing::slice, failure, first, last);
  return {TaskOutcome::Kind::failed, message};
}

TaskOutcome BatchRunner::run() {
  const bool sliced = m_slicing == Slicing::slice;
  std::optional<Cursor> cursor = m_store.read_cursor(m_task, sliced);
  if (!cursor) {
    // A slice that was never cut: the table was empty when the run started. Its rows, if any
    // arrived since, are the next run's, which cuts the slices first.
    m_store.mark_done(m_task, sliced);
    return {TaskOutcome::Kind::finished, ""};
  }
  m_cursor = *cursor;
  apply_timeouts(m_session.conn(), m_settings);
  while (true) {
    if (stop_level() >= 1) {
      m_store.mark_stopped(m_task, sliced);
      return {TaskOutcome::Kind::stopped, ""};
    }
    bool finished = false;
    Step step = next_batch(finished);
    if (step.kind == Step::Kind::permanent && m_settings.on_error == OnError::skip) {
      if (const auto range = next_range())
        step = set_aside(range->first, range->second, step.failure);
    }
    switch (step.kind) {
      case Step::Kind::ok:
        break;
      case Step::Kind::permanent:
        return fail(step.failure);
      case Step::Kind::stopped:
        m_store.mark_stopped(m_task, sliced);
        return {TaskOutcome::Kind::stopped, ""};
      case Step::Kind::deferred:
        return {TaskOutcome::Kind::deferred, m_task.text() + " was claimed by another runner"};
    }
    if (finished) {
      m_store.mark_done(m_task, sliced);
      m_progress.job_finished(m_task.text());
      return {TaskOutcome::Kind::finished, ""};
    }
  }
}

TaskOutcome run_step(StateStore& store, const std::string& job, const std::string& sql) {
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
