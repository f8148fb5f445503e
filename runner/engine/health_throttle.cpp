#include "engine/health_throttle.h"

#include <cmath>

#include "database/retry.h"

namespace pgxform {

namespace {

std::string figure(double value) {
  return std::to_string(static_cast<long long>(std::floor(value)));
}

// The limit of `limits` that `signal` names.
const std::optional<long>& limit_of(const ThrottleLimits& limits, const std::string& signal) {
  if (signal == "max_replica_lag_s") return limits.max_replica_lag_s;
  if (signal == "max_active_sessions") return limits.max_active_sessions;
  if (signal == "max_xact_age_s") return limits.max_xact_age_s;
  return limits.max_wal_mb_per_s;
}

// One query per signal, so that a failure names its signal.
const char* const k_replica_lag_sql = R"(
SELECT extract(epoch FROM pg_catalog.max(replay_lag))::float8
FROM pg_catalog.pg_stat_replication)";

const char* const k_active_sessions_sql = R"(
SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity
WHERE state = 'active' AND datname = pg_catalog.current_database()
  AND pid <> pg_catalog.pg_backend_pid() AND backend_type = 'client backend'
  AND application_name NOT LIKE 'pgxform%')";

const char* const k_xact_age_sql = R"(
SELECT extract(epoch FROM pg_catalog.max(pg_catalog.clock_timestamp() - xact_start))::float8
FROM pg_catalog.pg_stat_activity
WHERE xact_start IS NOT NULL AND datname = pg_catalog.current_database()
  AND pid <> pg_catalog.pg_backend_pid() AND backend_type = 'client backend'
  AND application_name NOT LIKE 'pgxform%')";

const char* const k_wal_bytes_sql = R"(
SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), '0/0')::float8)";

// What the role may see, for throttle_blind_spots.
const char* const k_role_sight_sql = R"(
SELECT current_user,
       pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'),
       pg_catalog.has_function_privilege('pg_catalog.pg_current_wal_lsn()', 'EXECUTE')
         AND NOT pg_catalog.pg_is_in_recovery())";

// The signal's one value; none when its query failed, which `s` records. A lost connection or
// a cancelled statement is thrown: the task deals with those.
std::optional<pqxx::result> read_signal(pqxx::connection& conn, const std::string& signal,
                                        const char* sql, HealthSignals& s) {
  try {
    pqxx::nontransaction tx(conn);
    return tx.exec(sql);
  } catch (const std::exception& e) {
    const Failure failure = classify(e);
    if (failure.kind != FailureKind::permanent) throw;
    s.unreadable[signal] = {failure.sqlstate, failure.message};
    return std::nullopt;
  }
}

}  // namespace

std::string signal_needs(const std::string& signal) {
  const std::string stats =
      ", which PostgreSQL shows only to superusers and to members of pg_read_all_stats (GRANT "
      "pg_monitor, or pg_read_all_stats, TO the role)";
  if (signal == "max_replica_lag_s") return "the replay lag in pg_stat_replication" + stats;
  if (signal == "max_active_sessions")
    return "the state of other roles' sessions in pg_stat_activity" + stats;
  if (signal == "max_xact_age_s")
    return "the xact_start of other roles' sessions in pg_stat_activity" + stats;
  return "EXECUTE on pg_catalog.pg_current_wal_lsn() (GRANT EXECUTE ON FUNCTION "
         "pg_catalog.pg_current_wal_lsn() TO the role), on a primary server";
}

ThrottleSignalError::ThrottleSignalError(const std::string& signal, const SignalFailure& why)
    : pqxx::sql_error("throttle " + signal + ": its signal could not be read" +
                          (why.sqlstate.empty() ? "" : " (SQLSTATE " + why.sqlstate + ")") + ": " +
                          why.message + "\nit needs " + signal_needs(signal) +
                          "; grant that, or remove the limit " + signal,
                      "", why.sqlstate.empty() ? nullptr : why.sqlstate.c_str()) {}

std::optional<std::string> throttle_reason(const HealthSignals& s, const ThrottleLimits& limits) {
  for (const auto& [signal, failure] : s.unreadable)
    if (limit_of(limits, signal)) throw ThrottleSignalError(signal, failure);
  if (limits.max_replica_lag_s && s.replica_lag_s && *s.replica_lag_s > *limits.max_replica_lag_s)
    return "max_replica_lag_s " + figure(*s.replica_lag_s) + " > " +
           std::to_string(*limits.max_replica_lag_s);
  if (limits.max_active_sessions && s.active_sessions > *limits.max_active_sessions)
    return "max_active_sessions " + std::to_string(s.active_sessions) + " > " +
           std::to_string(*limits.max_active_sessions);
  if (limits.max_xact_age_s && s.xact_age_s && *s.xact_age_s > *limits.max_xact_age_s)
    return "max_xact_age_s " + figure(*s.xact_age_s) + " > " +
           std::to_string(*limits.max_xact_age_s);
  if (limits.max_wal_mb_per_s && s.wal_mb_per_s && *s.wal_mb_per_s > *limits.max_wal_mb_per_s)
    return "max_wal_mb_per_s " + figure(*s.wal_mb_per_s) + " > " +
           std::to_string(*limits.max_wal_mb_per_s);
  return std::nullopt;
}

std::vector<std::string> throttle_blind_spots(pqxx::transaction_base& tx, const JobsFile& file,
                                              const std::vector<std::string>& jobs) {
  const pqxx::row sight = tx.exec1(k_role_sight_sql);
  const std::string role = sight[0].as<std::string>();
  std::vector<std::string> problems;
  for (const auto& signal : k_throttle_signals) {
    const bool seen = signal == "max_wal_mb_per_s" ? sight[2].as<bool>() : sight[1].as<bool>();
    if (seen) continue;
    std::vector<const Job*> limited;
    for (const auto& name : jobs)
      if (const Job* job = file.find_job(name);
          job && !job->is_step() && limit_of(job->settings.throttle, signal))
        limited.push_back(job);
    if (limited.empty()) continue;
    std::string named;
    for (const Job* job : limited) named += (named.empty() ? "'" : ", '") + job->name + "'";
    problems.push_back(file.path + ":" + std::to_string(limited.front()->line) + ": throttle " +
                       signal + " of job" + (limited.size() == 1 ? " " : "s ") + named + ": role " +
                       role + " cannot see what it measures, so the limit would " +
                       "never be reached; it needs " + signal_needs(signal) +
                       ". Grant that, or remove the limit");
  }
  return problems;
}

HealthSignals HealthMonitor::signals(pqxx::connection& conn) {
  std::lock_guard<std::mutex> lock(m_mutex);
  const auto now = std::chrono::steady_clock::now();
  if (m_read_at && now - *m_read_at < std::chrono::seconds(1)) return m_signals;
  HealthSignals s;
  if (const auto r = read_signal(conn, "max_replica_lag_s", k_replica_lag_sql, s);
      r && !(*r)[0][0].is_null())
    s.replica_lag_s = (*r)[0][0].as<double>();
  if (const auto r = read_signal(conn, "max_active_sessions", k_active_sessions_sql, s))
    s.active_sessions = (*r)[0][0].as<long long>();
  if (const auto r = read_signal(conn, "max_xact_age_s", k_xact_age_sql, s);
      r && !(*r)[0][0].is_null())
    s.xact_age_s = (*r)[0][0].as<double>();
  if (const auto r = read_signal(conn, "max_wal_mb_per_s", k_wal_bytes_sql, s)) {
    const double wal = (*r)[0][0].as<double>();
    if (m_wal_bytes && m_read_at) {
      const double seconds = std::chrono::duration<double>(now - *m_read_at).count();
      if (seconds > 0) s.wal_mb_per_s = (wal - *m_wal_bytes) / (1024.0 * 1024.0) / seconds;
    }
    m_wal_bytes = wal;
  } else {
    m_wal_bytes.reset();  // the next reading starts the rate again
  }
  m_read_at = now;
  m_signals = s;
  return s;
}

}  // namespace pgxform
