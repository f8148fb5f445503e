#include "engine/batch_runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <thread>

#include "analysis/block_counters.h"
#include "base/stop_signal.h"
#include "state/batch_log.h"
#include "state/failed_ranges.h"

namespace pgxform {

namespace {

std::string statement_name(const TaskId& task, const std::string& what) {
  return what + "_" + std::to_string(std::hash<std::string>{}(task.job)) + "_" +
         std::to_string(task.slice);
}

std::string describe(const Failure& failure) {
  return (failure.sqlstate.empty() ? "" : "SQLSTATE " + failure.sqlstate + ": ") + failure.message;
}

// Sleeps `ms` in steps of 100 ms; false as soon as a stop signal came or the worker is asked
// to leave the pool.
bool sleep_unless_stopped(long long ms, const Session& session) {
  for (long long slept = 0; slept < ms; slept += 100) {
    if (stop_level() >= 1 || session.leave_requested()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min<long long>(100, ms - slept)));
  }
  return true;
}

// The signal a throttle reason names: "max_xact_age_s" of "max_xact_age_s 12 > 10".
std::string signal_of(const std::string& reason) {
  return reason.substr(0, reason.find(' '));
}

}  // namespace

BatchRunner::BatchRunner(Session& session, StateStore& store, const ResolvedJob& job,
                         const JobSettings& settings, std::string list, TaskId task,
                         Progress& progress, HealthMonitor& health, RunMetrics& metrics)
    : m_session(session),
      m_store(store),
      m_job(job),
      m_settings(settings),
      m_task(std::move(task)),
      m_progress(progress),
      m_health(health),
      m_metrics(metrics),
      m_slicing(slicing_of(job)),
      m_sizer(sizing_of(settings)),
      m_list(std::move(list)) {}

void BatchRunner::read_control() {
  pqxx::nontransaction tx(m_session.conn());
  m_control = resolve_control(read_control_rows(tx, m_store.schema(), m_job.name, m_list),
                              m_job.name, m_list);
  m_control_read = std::chrono::steady_clock::now();
}

bool BatchRunner::follow_control() {
  using namespace std::chrono;
  const JobControl before = m_control;
  if (!m_control_read || steady_clock::now() - *m_control_read >= seconds(1)) read_control();
  if (m_control.paused) {
    spdlog::info("{}: paused ({}): no new batch until pgxform resume {}", m_task.text(),
                 m_control.paused_by, m_job.name);
    m_metrics.set_paused(m_job.name, Paused::yes);
    m_progress.set_waiting(m_task.text(), "paused (" + m_control.paused_by + ")");
    auto said = steady_clock::now();
    while (m_control.paused) {
      if (!sleep_unless_stopped(1000, m_session)) return false;
      read_control();
      if (m_control.paused && steady_clock::now() - said >= minutes(1)) {
        spdlog::info("{}: still paused ({})", m_task.text(), m_control.paused_by);
        said = steady_clock::now();
      }
    }
    m_metrics.set_paused(m_job.name, Paused::no);
    m_progress.set_waiting(m_task.text(), std::nullopt);
    spdlog::info("{}: resumed", m_task.text());
  }
  if (m_control.batch_size != before.batch_size ||
      m_control.target_batch_ms != before.target_batch_ms) {
    BatchSizing sizing = sizing_of(m_settings);
    if (m_control.target_batch_ms) sizing.target_ms = *m_control.target_batch_ms;
    if (m_control.batch_size) sizing.first = *m_control.batch_size;
    // A size given now is the next batch's; time sizing goes on from it.
    m_sizer = BatchSizer(sizing);
    spdlog::info("{}: batches of {} keys{} from now on (control)", m_task.text(), m_sizer.size(),
                 sizing.target_ms > 0
                     ? ", then sized to last " + std::to_string(sizing.target_ms) + " ms"
                     : std::string());
  }
  return sleep_unless_stopped(m_control.pause_ms, m_session) && wait_for_health();
}

bool BatchRunner::wait_for_health() {
  using namespace std::chrono;
  if (!m_settings.throttle.any()) return true;
  std::optional<std::string> why =
      throttle_reason(m_health.signals(m_session.conn()), m_settings.throttle);
  if (!why) return true;
  const auto started = steady_clock::now();
  spdlog::info("{}: throttled: {}; waiting", m_task.text(), *why);
  m_store.set_waiting(m_job.name, "throttled: " + *why);
  auto counted = started;  // the wait is counted as it goes, so that a long one shows
  m_progress.set_waiting(m_task.text(), "throttled: " + *why);
  while (why) {
    const bool slept = sleep_unless_stopped(1000, m_session);
    const auto now = steady_clock::now();
    m_metrics.throttled(m_job.name, signal_of(*why), duration<double>(now - counted).count());
    counted = now;
    if (!slept) {
      m_store.set_waiting(m_job.name, std::nullopt);
      return false;
    }
    const auto reason = throttle_reason(m_health.signals(m_session.conn()), m_settings.throttle);
    if (reason && signal_of(*reason) != signal_of(*why))
      spdlog::info("{}: throttled: {}", m_task.text(), *reason);
    if (reason) m_progress.set_waiting(m_task.text(), "throttled: " + *reason);
    why = reason;
  }
  m_store.set_waiting(m_job.name, std::nullopt);
  m_progress.set_waiting(m_task.text(), std::nullopt);
  spdlog::info("{}: no longer throttled, after {:.1f} s", m_task.text(),
               duration<double>(steady_clock::now() - started).count());
  return true;
}

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

std::optional<std::string> BatchRunner::commit_logged(pqxx::work& tx, const pqxx::result& plan,
                                                      long long& rows) {
  const std::string name = "log_batch";
  m_session.prepare(name, [&] { return log_sql(m_store.schema()); });
  const pqxx::result r = log_batch(tx, m_store.schema(), m_job.name, plan, name);
  if (r.empty()) return std::nullopt;  // no key was left
  if (r[0]["moved"].as<long long>() != 1)
    throw std::runtime_error("the cursor of " + m_task.text() + " moved under this runner");
  rows = r[0]["rows"].as<long long>();
  const std::string hi = r[0]["hi"].as<std::string>();
  // libpqxx throws in_doubt_error when this COMMIT gets no answer: task_runner reconnects and
  // the cursor, read again, tells whether it went through.
  tx.commit();
  m_cursor.last_key = hi;
  if (m_committed) ++*m_committed;
  return hi;
}

BatchRunner::Step BatchRunner::transact(const Work& work) {
  for (int attempt = 0;; ++attempt) {
    try {
      pqxx::work tx(m_session.conn());
      work(tx);
      return {};
    } catch (const std::exception& e) {
      const Failure failure = classify(e);
      switch (failure.kind) {
        case FailureKind::connection_lost:
        case FailureKind::in_doubt:
          throw;
        case FailureKind::cancelled:
          return {stop_level() >= 2 ? Step::Kind::stopped : Step::Kind::permanent, failure};
        case FailureKind::permanent:
          return {Step::Kind::permanent, failure};
        case FailureKind::transient:
          if (attempt >= m_settings.retries) return {Step::Kind::permanent, failure};
      }
      spdlog::warn("{}: {} (attempt {} of {}), retrying", m_task.text(), describe(failure),
                   attempt + 1, m_settings.retries);
      std::this_thread::sleep_for(
          backoff_delay(attempt, std::chrono::milliseconds(m_settings.retry_backoff_ms)));
    }
  }
}

BatchRunner::Step BatchRunner::next_batch(bool& finished) {
  finished = false;
  long long rows = 0;
  const long size = m_sizer.size();
  const BatchShape s = shape();
  const std::string variant = std::string(s.start == CursorStart::none ? "0" : "") +
                              (s.upper == UpperBound::hi_key ? "h" : "");
  // The batch as a call of a temporary function, planned once per session (see batch_sql.h);
  // the statement itself where the session cannot create one.
  auto it = m_functions.find(variant);
  if (it == m_functions.end())
    it = m_functions.emplace(variant, batch_function(m_job, m_store.schema(), s)).first;
  const BatchFunction& function = it->second;
  const bool called =
      !function.name.empty() && m_session.define(function.name, [&] { return function.ddl; });
  const std::string name = statement_name(m_task, (called ? "call" : "batch") + variant);
  auto started = std::chrono::steady_clock::now();
  Step step = transact([&](pqxx::work& tx) {
    started = std::chrono::steady_clock::now();  // the attempt that commits, not its retries
    const pqxx::result plan = exec(
        tx, name, [&] { return called ? function.call : batch_sql(m_job, m_store.schema(), s); },
        std::to_string(size), m_cursor.hi_key);
    if (!commit_logged(tx, plan, rows)) {
      tx.commit();
      finished = true;
    }
  });
  if (step.kind == Step::Kind::ok && !finished) {
    // The whole transaction as the client saw it: what a lock held for a batch lasts.
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    m_sizer.batch_done(rows, ms);
    m_progress.batch_done(m_task.text(), m_job.name, rows, size, ms,
                          m_cursor.last_key.value_or(""));
    m_metrics.batch_done(m_job.name, rows, size, ms / 1000);
  }
  return step;
}

BatchRunner::Step BatchRunner::process_range(const Range& range) {
  return transact([&](pqxx::work& tx) {
    const pqxx::result plan = exec(
        tx, statement_name(m_task, "range"),
        [&] { return range_sql(m_job, m_store.schema(), m_slicing, CursorMove::advance); },
        range.first, range.second);
    long long rows = 0;
    if (!commit_logged(tx, plan, rows))
      throw std::runtime_error("the cursor of " + m_task.text() + " moved under this runner");
    m_progress.range_done(m_task.text(), rows);
    m_metrics.range_done(m_job.name, rows);
  });
}

BatchRunner::Step BatchRunner::skip_range(const Range& range, const Failure& failure) {
  return transact([&](pqxx::work& tx) {
    const std::optional<std::string> sqlstate =
        failure.sqlstate.empty() ? std::nullopt : std::optional<std::string>(failure.sqlstate);
    const pqxx::result r = exec(
        tx, statement_name(m_task, "skip"),
        [&] { return set_aside_sql(m_store.schema(), m_slicing); }, range.first, range.second,
        sqlstate, failure.message);
    if (r[0]["moved"].as<long long>() != 1)
      throw std::runtime_error("the cursor of " + m_task.text() + " moved under this runner");
    tx.commit();
    m_cursor.last_key = range.second;
    m_progress.range_set_aside(m_task.text());
    m_metrics.batch_failed(m_job.name);
    spdlog::warn("{}: set aside [{}, {}]: {}", m_task.text(), range.first, range.second,
                 describe(failure));
  });
}

std::optional<BatchRunner::Range> BatchRunner::next_range() {
  try {
    pqxx::read_transaction tx(m_session.conn());
    const pqxx::row r = tx.exec_params1(bounds_query(m_job, shape()), m_cursor.last_key,
                                        m_sizer.size(), m_job.name, m_task.slice, m_cursor.hi_key);
    if (!r[0].is_null()) return Range(r[0].as<std::string>(), r[1].as<std::string>());
  } catch (const std::exception& e) {
    spdlog::warn("{}: could not find the failing batch's key range: {}", m_task.text(),
                 redact(e.what()));
  }
  return std::nullopt;
}

std::optional<BatchRunner::Range> BatchRunner::split(const Range& range) {
  try {
    pqxx::read_transaction tx(m_session.conn());
    const pqxx::row r = tx.exec_params1(split_query(m_job), range.first, range.second);
    if (!r[0].is_null() && !r[1].is_null())
      return Range(r[0].as<std::string>(), r[1].as<std::string>());
  } catch (const std::exception& e) {
    spdlog::warn("{}: cannot split [{}, {}]: {}", m_task.text(), range.first, range.second,
                 redact(e.what()));
  }
  return std::nullopt;  // a single key value (or no way to tell): the culprit
}

BatchRunner::Step BatchRunner::set_aside(const Range& range, const Failure& failure) {
  if (!m_settings.bisect) return skip_range(range, failure);
  const std::optional<Range> halves = split(range);
  if (!halves) return skip_range(range, failure);
  // Left to right, so that the cursor only ever moves forward.
  for (const Range& part :
       {Range(range.first, halves->first), Range(halves->second, range.second)}) {
    if (stop_level() >= 1) return {Step::Kind::stopped, failure};
    Step step = process_range(part);
    if (step.kind == Step::Kind::permanent) step = set_aside(part, step.failure);
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
  m_store.mark_failed(m_task, m_slicing, failure, first, last);
  m_metrics.batch_failed(m_job.name);
  return {TaskOutcome::Kind::failed, message};
}

TaskOutcome BatchRunner::run(long long& committed) {
  m_committed = &committed;
  std::optional<Cursor> cursor = m_store.read_cursor(m_task, m_slicing);
  if (!cursor) {
    // A slice that was never cut: the table was empty when the run started. Its rows, if any
    // arrived since, are the next run's, which cuts the slices first.
    if (m_store.mark_done(m_task, m_slicing)) m_metrics.job_done(m_job.name);
    return {TaskOutcome::Kind::finished, ""};
  }
  m_cursor = *cursor;
  while (true) {
    if (stop_level() >= 1 || m_session.leave_requested() || !follow_control()) {
      m_store.mark_stopped(m_task, m_slicing);
      if (stop_level() >= 1) return {TaskOutcome::Kind::stopped, ""};
      spdlog::info("{}: handed back after its batch (fewer threads); it goes on from its cursor",
                   m_task.text());
      return {TaskOutcome::Kind::released, ""};
    }
    bool finished = false;
    Step step = next_batch(finished);
    if (step.kind == Step::Kind::permanent && m_settings.on_error == OnError::skip) {
      if (const auto range = next_range()) step = set_aside(*range, step.failure);
    }
    switch (step.kind) {
      case Step::Kind::ok:
        break;
      case Step::Kind::permanent:
        return fail(step.failure);
      case Step::Kind::stopped:
        m_store.mark_stopped(m_task, m_slicing);
        return {TaskOutcome::Kind::stopped, ""};
    }
    if (finished) {
      const std::optional<long long> job_rows = m_store.mark_done(m_task, m_slicing);
      if (job_rows) m_metrics.job_done(m_job.name);
      m_progress.job_finished(m_task.text(), job_rows);
      return {TaskOutcome::Kind::finished, ""};
    }
  }
}

}  // namespace pgxform
