// database: opening connections and writing SQL text safely.
//
// A connection comes from --dsn (a libpq connection string or URI) or, when that is empty,
// from the standard libpq environment (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD,
// PGSERVICE, PGPASSFILE). Each worker thread opens its own: libpqxx connections are never
// shared between threads. Passwords never reach a message: every password found in the DSN
// or the environment is registered as a secret, and redact() (used by the logger and by the
// command line's error output) replaces each with "***".
//
// Identifiers from jobs.yaml are always written quoted (sql_text.h: quote_ident); values are always
// bound parameters, never pasted into SQL text.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <pqxx/pqxx>
#include <set>
#include <string>

#include "base/errors.h"
#include "base/redaction.h"  // redact, for the callers of connect
#include "base/sql_text.h"   // quote_ident

namespace pgxform {

// Could not connect at a command's first contact: the connection string (or the PG*
// environment) reaches no server that lets us in, or the session cannot be set up for a
// reason of the database's setup (retry.h: is_setup_error). An input error, found before
// anything is written; the message is redacted.
class ConnectError : public InputError {
 public:
  explicit ConnectError(const std::string& problem) : InputError({problem}) {}
};

// The settings under which a value's text form is the same in every session: a key is
// recorded and compared in its text form (change_log.h), so that text must not depend on who
// wrote it. pgxform's sessions run with these (connect), and the functions of the capture
// triggers set them for their own run (change_capture.h), whatever the writer's session says:
// a float's shortest exact digits (extra_float_digits 0 would cut 0.30000000000000004 to 0.3),
// ISO dates and times in UTC, intervals and bytea in one style, money without a locale.
struct TextSetting {
  const char* name;
  const char* value;
};
inline constexpr TextSetting k_text_settings[] = {
    {"DateStyle", "ISO, YMD"},   {"TimeZone", "UTC"},     {"IntervalStyle", "postgres"},
    {"extra_float_digits", "3"}, {"bytea_output", "hex"}, {"lc_monetary", "C"}};

// Who asks for a connection, which decides what a failure to open it means.
//   first  a command's first contact: a server that cannot be reached or does not let us in,
//          a database or a role that does not exist, is the user's to fix (ConnectError,
//          exit 2). libpq tells no SQLSTATE of a failed connection; at first contact every
//          such failure is the connection string's or the server's setup.
//   again  a connection once the command has worked (a worker's session, a reconnect, the next
//          frame of status --watch): a server gone away is a lost connection, thrown as
//          libpqxx raised it (pqxx::broken_connection), for the caller's retries (retry.h);
//          an error of the session's set-up likewise, never an input error.
enum class Contact { first, again };

// Opens a connection and prepares its session (k_text_settings, application_name naming the
// runner), so that key values round-trip exactly through their text form, and sets
// pgxform.capture_off so that the capture triggers of catch-up ignore what it writes.
// With Access::read_only, every transaction of the session is read-only
// (default_transaction_read_only), so that a command that promises to write nothing cannot.
enum class Access { read_write, read_only };
std::unique_ptr<pqxx::connection> connect(const std::string& dsn,
                                          Access access = Access::read_write,
                                          Contact contact = Contact::first);

// This runner's identity in the database and in the state: "host:pid". Its sessions' application
// name is k_application_prefix followed by it.
std::string runner_identity();
inline const std::string k_application_prefix = "pgxform ";

// libpqxx 6.4 sends a subtransaction's SAVEPOINT with its first exec(), not with an
// exec_params(): a statement with parameters that fails first thing would abort the whole
// transaction, and the subtransaction's abort() would undo nothing. Call this first.
void start_savepoint(pqxx::subtransaction& sub);

}  // namespace pgxform

namespace pgxform {

// One worker's connection: opened on first use, reopened after it broke, always as
// Contact::again (its command has connected before it: a server that is gone now is a lost
// connection to retry, not bad input). Prepared statements are remembered per connection and
// prepared again after a reconnect. Owned by one thread; only backend_pid() may be read from
// another (to cancel the worker's statement).
class Session {
 public:
  explicit Session(std::string dsn) : m_dsn(std::move(dsn)) {}
  pqxx::connection& conn();
  void reconnect();
  // Takes `conn` (opened on the same DSN) as this session's connection.
  void adopt(std::unique_ptr<pqxx::connection> conn);
  // Prepares statement `name` on this connection unless it is already; `sql` builds its text,
  // called only then (not once per batch).
  void prepare(const std::string& name, const std::function<std::string()>& sql);
  // Creates the temporary objects of `ddl` (built by `ddl`, called only then) on this
  // connection, in a transaction of their own, unless done already. False when they could not
  // be created (no TEMP privilege, no PL/pgSQL): the caller does without, said once, and no
  // other definition is tried until the next connection.
  bool define(const std::string& name, const std::function<std::string()>& ddl);
  int backend_pid() const { return m_backend_pid.load(); }
  // Counts the connections this session opened (or adopted): a session-level lock taken on
  // one is gone once the count moved.
  int generation() const { return m_generation; }
  // Closes the connection (a worker that leaves the pool); the next conn() opens one again.
  void close();
  // The pool asks this session's worker to leave (fewer threads wanted): its task stops after
  // the batch in flight and goes back to the pool. Read without a lock by the worker.
  void request_leave(bool leave) { m_leave.store(leave); }
  bool leave_requested() const { return m_leave.load(); }
  // Whether its worker has a batch or a step in flight now (a transaction of work open), read
  // by the pool's thread to say what a stop waits for; set by the worker around that work.
  void set_busy(bool busy) { m_busy.store(busy); }
  bool busy() const { return m_busy.load(); }

 private:
  std::string m_dsn;
  std::unique_ptr<pqxx::connection> m_conn;
  std::set<std::string> m_prepared;
  std::set<std::string> m_defined;
  bool m_cannot_define = false;  // the first attempt failed: none is tried again
  int m_generation = 0;
  std::atomic<int> m_backend_pid{0};
  std::atomic<bool> m_leave{false};
  std::atomic<bool> m_busy{false};
};

// A batch or a step in flight on `session` for this scope (Session::busy).
class BusySession {
 public:
  explicit BusySession(Session& session) : m_session(session) { m_session.set_busy(true); }
  ~BusySession() { m_session.set_busy(false); }
  BusySession(const BusySession&) = delete;
  BusySession& operator=(const BusySession&) = delete;

 private:
  Session& m_session;
};

}  // namespace pgxform
