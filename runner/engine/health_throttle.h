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
//
// A throttle is never blind without saying so. What a signal needs of the role:
//   max_replica_lag_s, max_active_sessions, max_xact_age_s  membership of pg_read_all_stats
//       (pg_monitor has it; a superuser has it all): without, pg_stat_activity hides the state
//       and xact_start of other roles' sessions, and pg_stat_replication the replay lag, as
//       NULL, so that the limit would never be reached;
//   max_wal_mb_per_s  EXECUTE on pg_catalog.pg_current_wal_lsn(), on a primary.
// throttle_blind_spots() tells the preflight of run and validate which limits of the jobs the
// role cannot see through (a problem: exit 2). Each signal is read by a query of its own; one
// that fails at run time (a grant revoked meanwhile) is recorded as unreadable, and
// throttle_reason() fails the job whose limit needs it with ThrottleSignalError, naming the
// signal, the server's error and the grant.
#pragma once

#include <chrono>
#include <map>
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

// A signal whose query failed: the SQLSTATE and the server's message.
struct SignalFailure {
  std::string sqlstate;
  std::string message;
};

struct HealthSignals {
  std::optional<double> replica_lag_s;  // none without a standby
  long long active_sessions = 0;
  std::optional<double> xact_age_s;                 // none when no other transaction is open
  std::optional<double> wal_mb_per_s;               // none before the second reading
  std::map<std::string, SignalFailure> unreadable;  // by signal name
};

// A limit of the job whose signal could not be read: the job fails rather than run blind. A
// pqxx::sql_error carrying the server's SQLSTATE, so that the job's row records it.
class ThrottleSignalError : public pqxx::sql_error {
 public:
  ThrottleSignalError(const std::string& signal, const SignalFailure& why);
};

// The first signal over its limit, as status and the log say it: "max_xact_age_s 12 > 10";
// none when every signal is within its limit. Throws ThrottleSignalError when a limit's signal
// is unreadable.
std::optional<std::string> throttle_reason(const HealthSignals& signals,
                                           const ThrottleLimits& limits);

// What signal `signal` needs of the role (see above), as a message says it.
std::string signal_needs(const std::string& signal);

// The throttle limits of `jobs` (names in `file`; steps have none) that the connected role
// cannot see through, one problem per signal naming the file, the jobs and the grant. Reads
// the role's memberships and privileges only.
std::vector<std::string> throttle_blind_spots(pqxx::transaction_base& tx, const JobsFile& file,
                                              const std::vector<std::string>& jobs);

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
