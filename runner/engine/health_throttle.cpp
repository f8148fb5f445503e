#include "engine/health_throttle.h"

#include <cmath>

namespace pgxform {

namespace {

std::string figure(double value) {
  return std::to_string(static_cast<long long>(std::floor(value)));
}

}  // namespace

std::optional<std::string> throttle_reason(const HealthSignals& s, const ThrottleLimits& limits) {
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

HealthSignals HealthMonitor::signals(pqxx::connection& conn) {
  std::lock_guard<std::mutex> lock(m_mutex);
  const auto now = std::chrono::steady_clock::now();
  if (m_read_at && now - *m_read_at < std::chrono::seconds(1)) return m_signals;
  pqxx::nontransaction tx(conn);
  const pqxx::row r = tx.exec1(
      "SELECT (SELECT extract(epoch FROM max(replay_lag))::float8"
      "        FROM pg_catalog.pg_stat_replication),"
      " (SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE state = 'active'"
      "   AND datname = pg_catalog.current_database() AND pid <> pg_catalog.pg_backend_pid()"
      "   AND backend_type = 'client backend' AND application_name NOT LIKE 'pgxform%'),"
      " (SELECT extract(epoch FROM max(pg_catalog.clock_timestamp() - xact_start))::float8"
      "   FROM pg_catalog.pg_stat_activity WHERE xact_start IS NOT NULL"
      "   AND datname = pg_catalog.current_database() AND pid <> pg_catalog.pg_backend_pid()"
      "   AND backend_type = 'client backend' AND application_name NOT LIKE 'pgxform%'),"
      " pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), '0/0')::float8");
  HealthSignals s;
  if (!r[0].is_null()) s.replica_lag_s = r[0].as<double>();
  s.active_sessions = r[1].as<long long>();
  if (!r[2].is_null()) s.xact_age_s = r[2].as<double>();
  const double wal = r[3].as<double>();
  if (m_wal_bytes && m_read_at) {
    const double seconds = std::chrono::duration<double>(now - *m_read_at).count();
    if (seconds > 0) s.wal_mb_per_s = (wal - *m_wal_bytes) / (1024.0 * 1024.0) / seconds;
  }
  m_wal_bytes = wal;
  m_read_at = now;
  m_signals = s;
  return s;
}

}  // namespace pgxform
