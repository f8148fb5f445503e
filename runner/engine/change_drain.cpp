#include "engine/change_drain.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "base/stop_signal.h"

namespace pgxform {

namespace {

// A condition on the log row `l`: its key is at or below the job's cursor ($1 the job). A done
// job's every key is; a sliced job's key is when it is in a slice at or below that slice's
// cursor (every key of a done slice).
std::string below_cursor_sql(const ResolvedJob& job, const StateSchema& schema,
                             const std::string& l) {
  const std::string k = as_key(job, l + ".key");
  return "EXISTS (SELECT 1 FROM " + schema.table("job_state") +
         " s WHERE s.job = $1 AND (s.status = 'done' OR (s.slices <= 1 AND " + k +
         " <= " + as_key(job, "s.last_key") + ") OR (s.slices > 1 AND EXISTS (SELECT 1 FROM " +
         schema.table("job_slice") + " sl WHERE sl.job = $1 AND (sl.lo_key IS NULL OR " + k +
         " > " + as_key(job, "sl.lo_key") + ") AND CASE WHEN sl.status = 'done' THEN" +
         " sl.hi_key IS NULL OR " + k + " <= " + as_key(job, "sl.hi_key") + " ELSE " + k +
         " <= " + as_key(job, "sl.last_key") + " END))))";
}

// The CTEs `picked` (the log rows the batch consumes) and `keys` (their distinct keys, typed).
std::string picked_sql(const ResolvedJob& job, const StateSchema& schema) {
  const std::string log = schema.table("change_log");
  return "WITH picked AS MATERIALIZED (SELECT l.id, l.key FROM " + log +
         " l WHERE l.job = $1 AND l.key IN (SELECT f.key FROM " + log + " f WHERE f.job = $1 AND " +
         below_cursor_sql(job, schema, "f") +
         " ORDER BY f.id LIMIT $2::bigint)), keys AS MATERIALIZED (SELECT DISTINCT " +
         as_key(job, "p.key") + " AS k FROM picked p)";
}

std::string drain_statement(const std::string& what, const std::string& job) {
  return what + "_" + std::to_string(std::hash<std::string>{}(job));
}

bool sleep_or_stop(long long ms) {
  for (long long slept = 0; slept < ms; slept += 100) {
    if (stop_level() >= 1) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min<long long>(100, ms - slept)));
  }
  return true;
}

std::string describe_failure(const Failure& failure) {
  return (failure.sqlstate.empty() ? "" : "SQLSTATE " + failure.sqlstate + ": ") + failure.message;
}

}  // namespace

std::string drain_sql(const ResolvedJob& job, const StateSchema& schema) {
  const std::string log = schema.table("batch_log");
  // The refresh runs once per batch, only when there are keys; a void function's value is
  // not read (a volatile call in FROM is never dropped).
  const std::string call = job.refresh_sql + "(ARRAY(SELECT k FROM keys ORDER BY k))";
  const std::string written = job.refresh_counts ? "f.v::bigint" : "NULL::bigint";
  return picked_sql(job, schema) + ", refreshed AS MATERIALIZED (SELECT " + written +
         " AS written FROM (SELECT " + call +
         " AS v) f WHERE EXISTS (SELECT 1 FROM keys)), gone AS (DELETE FROM " +
         schema.table("change_log") +
         " l WHERE l.id IN (SELECT p.id FROM picked p) RETURNING 1), logged AS (INSERT INTO " +
         log +
         " (job, batch_no, slice, first_key, last_key, rows, rows_written, started_at,"
         " duration_ms, batch_size, catch_up) SELECT $1::text, coalesce((SELECT"
         " pg_catalog.max(b.batch_no) FROM " +
         log +
         " b WHERE b.job = $1 AND b.catch_up), 0) + 1, 0, (SELECT pg_catalog.min(k)::text FROM"
         " keys), (SELECT pg_catalog.max(k)::text FROM keys), (SELECT pg_catalog.count(*) FROM"
         " keys), r.written, pg_catalog.statement_timestamp(), extract(epoch FROM"
         " pg_catalog.clock_timestamp() - pg_catalog.statement_timestamp())::float8 * 1000,"
         " $2::bigint, true FROM refreshed r RETURNING first_key, last_key, rows, rows_written)"
         " SELECT (SELECT pg_catalog.count(*) FROM gone) AS consumed, g.first_key, g.last_key,"
         " g.rows, g.rows_written FROM (SELECT 1) x LEFT JOIN logged g ON true";
}

std::string drain_keys_sql(const ResolvedJob& job, const StateSchema& schema) {
  return picked_sql(job, schema) +
         " SELECT pg_catalog.min(k)::text, pg_catalog.max(k)::text, pg_catalog.count(*) FROM keys";
}

std::string drainable_sql(const ResolvedJob& job, const StateSchema& schema) {
  return "SELECT pg_catalog.count(*) FROM " + schema.table("change_log") +
         " f WHERE f.job = $1 AND " + below_cursor_sql(job, schema, "f");
}

ChangeDrain::ChangeDrain(Session& session, StateStore& store, const ResolvedJob& job,
                         const Job& spec, HealthMonitor& health, DrainOptions options)
    : m_session(session),
      m_store(store),
      m_job(job),
      m_spec(spec),
      m_health(health),
      m_options(options),
      m_batch_size(spec.settings.batch_size) {}

bool ChangeDrain::follow_control() {
  using namespace std::chrono;
  const auto read = [&] {
    pqxx::nontransaction tx(m_session.conn());
    m_control = resolve_control(read_control_rows(tx, m_store.schema(), m_job.name, m_spec.list),
                                m_job.name, m_spec.list);
    m_control_read = steady_clock::now();
  };
  if (!m_control_read || steady_clock::now() - *m_control_read >= seconds(1)) read();
  if (m_control.paused) {
    spdlog::info("{}: catch-up paused ({}): no new batch until pgxform resume {}", m_job.name,
                 m_control.paused_by, m_job.name);
    while (m_control.paused) {
      if (!sleep_or_stop(1000)) return false;
      read();
    }
    spdlog::info("{}: catch-up resumed", m_job.name);
  }
  // A catch-up batch is sized in keys, not by time: batch_size as set, else the job's.
  m_batch_size = m_control.batch_size ? long(*m_control.batch_size) : m_spec.settings.batch_size;
  return sleep_or_stop(m_control.pause_ms) && wait_for_health();
}

bool ChangeDrain::wait_for_health() {
  if (!m_spec.settings.throttle.any()) return true;
  std::optional<std::string> why =
      throttle_reason(m_health.signals(m_session.conn()), m_spec.settings.throttle);
  if (!why) return true;
  spdlog::info("{}: catch-up throttled: {}; waiting", m_job.name, *why);
  m_store.set_waiting(m_job.name, "throttled: " + *why);
  while (why) {
    if (!sleep_or_stop(1000)) {
      m_store.set_waiting(m_job.name, std::nullopt);
      return false;
    }
    why = throttle_reason(m_health.signals(m_session.conn()), m_spec.settings.throttle);
  }
  m_store.set_waiting(m_job.name, std::nullopt);
  return true;
}

long long ChangeDrain::drainable() {
  const std::string name = drain_statement("drainable", m_job.name);
  m_session.prepare(name, [&] { return drainable_sql(m_job, m_store.schema()); });
  pqxx::read_transaction tx(m_session.conn());
  return tx.exec_prepared1(name, m_job.name)[0].as<long long>();
}

ChangeDrain::Result ChangeDrain::next_batch(Failure& failure, long long& keys) {
  const std::string name = drain_statement("drain", m_job.name);
  m_session.prepare(name, [&] { return drain_sql(m_job, m_store.schema()); });
  for (int attempt = 0;; ++attempt) {
    try {
      pqxx::work tx(m_session.conn());
      const pqxx::row r = tx.exec_prepared1(name, m_job.name, m_batch_size);
      if (r["consumed"].as<long long>() == 0) {
        tx.commit();
        return Result::empty;
      }
      keys = r["rows"].as<long long>();
      const std::string first = r["first_key"].as<std::string>();
      const std::string last = r["last_key"].as<std::string>();
      // An in-doubt COMMIT is thrown to the caller: the log, read again, tells what went through.
      tx.commit();
      spdlog::debug("{}: caught up {} keys [{}, {}]", m_job.name, keys, first, last);
      return Result::ok;
    } catch (const std::exception& e) {
      failure = classify(e);
      switch (failure.kind) {
        case FailureKind::connection_lost:
        case FailureKind::in_doubt:
          throw;
        case FailureKind::cancelled:
          return stop_level() >= 2 ? Result::stopped : Result::permanent;
        case FailureKind::permanent:
          return Result::permanent;
        case FailureKind::transient:
          if (attempt >= m_spec.settings.retries) return Result::permanent;
      }
      spdlog::warn("{}: catch-up: {} (attempt {} of {}), retrying", m_job.name,
                   describe_failure(failure), attempt + 1, m_spec.settings.retries);
      std::this_thread::sleep_for(
          backoff_delay(attempt, std::chrono::milliseconds(m_spec.settings.retry_backoff_ms)));
    }
  }
}

TaskOutcome ChangeDrain::run(long long& batches, long long& keys) {
  bool said_waiting = false;
  while (true) {
    if (stop_level() >= 1 || !follow_control()) return {TaskOutcome::Kind::stopped, ""};
    if (m_options.until && drainable() <= *m_options.until)
      return {TaskOutcome::Kind::finished, ""};
    Failure failure;
    long long batch_keys = 0;
    switch (next_batch(failure, batch_keys)) {
      case Result::ok:
        ++batches;
        keys += batch_keys;
        said_waiting = false;
        break;
      case Result::empty:
        if (m_options.follow == Follow::no) return {TaskOutcome::Kind::finished, ""};
        if (!said_waiting) {
          spdlog::info("{}: caught up; waiting for changes", m_job.name);
          said_waiting = true;
        }
        if (!sleep_or_stop(1000)) return {TaskOutcome::Kind::stopped, ""};
        break;
      case Result::stopped:
        return {TaskOutcome::Kind::stopped, ""};
      case Result::permanent: {
        std::optional<std::string> first, last;
        try {
          pqxx::read_transaction tx(m_session.conn());
          const pqxx::row r =
              tx.exec_params1(drain_keys_sql(m_job, m_store.schema()), m_job.name, m_batch_size);
          if (!r[0].is_null()) {
            first = r[0].as<std::string>();
            last = r[1].as<std::string>();
          }
        } catch (const std::exception& e) {
          spdlog::debug("{}: could not read the failing batch's keys: {}", m_job.name,
                        redact(e.what()));
        }
        m_store.mark_catch_up_failed(m_job.name, failure, first, last);
        std::string message = m_job.name + ": catch-up batch [" + first.value_or("?") + ", " +
                              last.value_or("?") + "] failed";
        if (!failure.sqlstate.empty()) message += " (SQLSTATE " + failure.sqlstate + ")";
        return {TaskOutcome::Kind::failed, message + ": " + failure.message};
      }
    }
  }
}

}  // namespace pgxform
