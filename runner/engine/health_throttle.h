// health_throttle: waiting for the database's other work — the `throttle:` limits of a job
// (jobs-file.md) checked against what the server says of its health before each batch. While
// any signal is over its limit the job takes no new batch; the task says why when it starts
// waiting and when it stops, and records the reason in job_state.waiting for status.
//
//   max_replica_lag_s    replay lag of the slowest standby (pg_stat_replication)
//   max_active_sessions  sessions of this database running a statement, pgxform's own left out
//                        (application_name starting with "pgxform")
//   max_xact_age_s       age of the oldest open transaction of this database, pgxform's own left
//                        out: it holds back vacuum on the tables the migration fills
//   max_wal_mb_per_s     WAL written per second, from pg_current_wal_lsn() between two readings
//
// The signals are read at most once a second per runner, whichever worker asks first, and
// shared by all its workers (HealthMonitor is thread-safe). throttle_reason is pure.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "plan/jobs_file.h"

namespace pgxform {

// The signals' names, as throttle_reason starts its reasons with them.
inline const std::vector<std::string> k_throttle_signals = {
    "max_replica_lag_s", "max_active_sessions", "max_xact_age_s", "max_wal_mb_per_s"};

struct HealthSignals {
  std::optional<double> replica_lag_s;  // none without a standby
  long long active_sessions = 0;
  std::optional<double> xact_age_s;    // none when no other transaction is open
  std::optional<double> wal_mb_per_s;  // none before the second reading
};

// The first signal over its limit, as status and the log say it: "max_xact_age_s 12 > 10";
// none when every signal is within its limit.
std::optional<std::string> throttle_reason(const HealthSignals& signals,
                                           const ThrottleLimits& limits);

class HealthMonitor {
 public:
  // The signals, read on `conn` unless a worker read them less than a second ago.
  HealthSignals signals(pqxx::connection& conn);

 private:
  std::mutex m_mutex;
  std::optional<std::chrono::steady_clock::time_point> m_read_at;
  HealthSignals m_signals;
  std::optional<double> m_wal_bytes;
};

}  // namespace pgxform
