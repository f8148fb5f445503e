// retry: which failures are worth another try, decided by SQLSTATE or libpqxx's exception
// type, never by message text; and how long to wait before the next one.
//
// transient       serialization failure 40001, deadlock 40P01, lock_not_available 55P03,
//                 too many connections 53300, cannot_connect_now 57P03: try the batch again.
// connection_lost the connection broke (08xxx, admin/crash shutdown 57P01/57P02, or libpqxx's
//                 broken_connection): reconnect, then try again.
// in_doubt        COMMIT was sent and no answer came: whether the batch committed is decided by
//                 reading the job's cursor, never by redoing the batch blindly.
// cancelled       57014: the statement was cancelled (by the runner's second signal, or by a
//                 statement_timeout, which is a permanent error of that batch).
// permanent       everything else: the batch fails as it is.
// A failure to open a connection at a command's first contact is an input error instead
// (database.h: ConnectError), and so is, wherever it is raised, an error is_setup_error()
// calls the user's to fix.
#pragma once

#include <chrono>
#include <exception>
#include <string>
#include <thread>

namespace pgxform {

enum class FailureKind { transient, connection_lost, in_doubt, cancelled, permanent };

struct Failure {
  FailureKind kind = FailureKind::permanent;
  std::string sqlstate;  // empty when the error had none
  std::string message;   // redacted
};

Failure classify(const std::exception& error);
// The error's text without the lines of its CONTEXT that speak of pgxform's own wrapper (the
// temporary function each batch calls, see batch_sql.h, and its statement): what is left
// points at the DBA's function, as the statement alone would.
std::string without_own_context(const std::string& message);
FailureKind classify_sqlstate(const std::string& sqlstate);

// Whether an error with `sqlstate` is the user's to fix in the jobs file, the scripts or the
// database's setup, rather than a failure while working: a syntax or access rule (class 42: a
// missing table or function, no privilege), authorization (class 28), a database or a schema
// that does not exist (3D000, 3F000). The callers that report an error as bad input (exit 2)
// decide by this, never by message text; a lost server, a timeout (57014), a lock wait
// (55P03) or a serialization failure (40001) is never bad input.
bool is_setup_error(const std::string& sqlstate);

// Exponential backoff with full jitter: a random wait in [base*2^attempt/2, base*2^attempt],
// capped at 30 s. `attempt` counts from 0.
std::chrono::milliseconds backoff_delay(int attempt, std::chrono::milliseconds base);

// A lost connection (or an in-doubt COMMIT) is not the batch's fault: its task is reconnected
// and claimed again this many times before it fails, waiting reconnect_delay(attempt) before
// each — long enough together (a few minutes) for a server restart or a failover.
constexpr int k_reconnect_attempts = 60;
std::chrono::milliseconds reconnect_delay(int attempt);

// Runs `step` again while it fails with a transient error (a deadlock, a serialization
// failure, a lock not available), `attempts` times in all, with backoff from 100 ms; any other
// failure, and the last one, is thrown. For the steps outside batches that must not fail
// because another runner was busy at the same moment (a run's setup).
template <typename Step>
void retry_transient(const Step& step, int attempts = 5) {
  for (int attempt = 0;; ++attempt) {
    try {
      step();
      return;
    } catch (const std::exception& e) {
      if (attempt + 1 >= attempts || classify(e).kind != FailureKind::transient) throw;
      std::this_thread::sleep_for(backoff_delay(attempt, std::chrono::milliseconds(100)));
    }
  }
}

}  // namespace pgxform
