#include "database/database.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <set>
#include <vector>

#include "base/redaction.h"
#include "database/retry.h"

namespace pgxform {

std::string runner_identity() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host) + ":" + std::to_string(getpid());
}

namespace {

// The session's settings (see connect in the header), on a connection just opened.
void prepare_session(pqxx::connection& conn, Access access) {
  pqxx::nontransaction tx(conn);
  // Text travels as UTF-8 both ways, whatever the database's encoding.
  tx.exec_params(
      "SELECT pg_catalog.set_config('client_encoding', 'UTF8', false),"
      " pg_catalog.set_config('application_name', $1, false),"
      // What pgxform writes itself is never captured for catch-up (change_capture.h): a
      // batch or a refresh function that touches a leading table would feed its own log.
      " pg_catalog.set_config('pgxform.capture_off', 'on', false)",
      k_application_prefix + runner_identity());
  // The text settings in one round trip: names and values as two bound text[] literals.
  std::string names = "{", values = "{";
  for (const TextSetting& setting : k_text_settings) {
    names += std::string(names.size() > 1 ? "," : "") + "\"" + setting.name + "\"";
    values += std::string(values.size() > 1 ? "," : "") + "\"" + setting.value + "\"";
  }
  tx.exec_params(
      "SELECT pg_catalog.set_config(s.name, s.value, false)"
      " FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[]))"
      " AS s(name, value)",
      names + "}", values + "}");
  if (access == Access::read_only) tx.exec("SET default_transaction_read_only = on");
}

}  // namespace

std::unique_ptr<pqxx::connection> connect(const std::string& dsn, Access access, Contact contact) {
  register_secrets_from(dsn);
  std::unique_ptr<pqxx::connection> conn;
  try {
    conn = std::make_unique<pqxx::connection>(dsn);
  } catch (const pqxx::broken_connection& e) {
    if (contact == Contact::again) throw;
    throw ConnectError("cannot connect to PostgreSQL: " + redact(e.what()));
  }
  // libpqxx 6 would silently reopen a broken connection, without its advisory locks and
  // session settings. A broken connection must stay broken, so that the runner notices,
  // reconnects itself and takes its claims again.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // deprecated in 6.4, gone in 7
  conn->inhibit_reactivation(true);
#pragma GCC diagnostic pop
  try {
    prepare_session(*conn, access);
  } catch (const pqxx::sql_error& e) {
    const Failure failure = classify(e);
    if (contact == Contact::again || !is_setup_error(failure.sqlstate)) throw;
    throw ConnectError("cannot set up the session (SQLSTATE " + failure.sqlstate +
                       "): " + failure.message);
  }
  return conn;
}

void start_savepoint(pqxx::subtransaction& sub) {
  sub.exec("SELECT 1");
}

}  // namespace pgxform

namespace pgxform {

pqxx::connection& Session::conn() {
  if (!m_conn) {
    m_conn = connect(m_dsn, Access::read_write, Contact::again);
    ++m_generation;
    m_prepared.clear();
    m_defined.clear();
    m_cannot_define = false;
    m_backend_pid = m_conn->backendpid();
  }
  return *m_conn;
}

void Session::adopt(std::unique_ptr<pqxx::connection> conn) {
  m_conn = std::move(conn);
  ++m_generation;
  m_prepared.clear();
  m_defined.clear();
  m_cannot_define = false;
  m_backend_pid = m_conn ? m_conn->backendpid() : 0;
}

void Session::close() {
  m_backend_pid = 0;
  m_conn.reset();
}

void Session::reconnect() {
  m_backend_pid = 0;
  m_conn.reset();
  conn();
}

void Session::prepare(const std::string& name, const std::function<std::string()>& sql) {
  pqxx::connection& c = conn();  // first: a new connection forgets what was prepared
  if (m_prepared.count(name)) return;
  c.prepare(name, sql());
  m_prepared.insert(name);
}

bool Session::define(const std::string& name, const std::function<std::string()>& ddl) {
  pqxx::connection& c = conn();
  if (m_cannot_define) return false;
  if (m_defined.count(name)) return true;
  try {
    pqxx::work tx(c);
    tx.exec(ddl());
    tx.commit();
  } catch (const pqxx::sql_error& e) {
    std::string why = redact(e.what());
    why.erase(why.find_last_not_of(" \n") + 1);
    // Said once per runner: every connection of the role meets the same refusal.
    static std::atomic<bool> said{false};
    if (!said.exchange(true))
      spdlog::info("cannot create the temporary batch function ({}); each batch is planned anew",
                   why);
    m_cannot_define = true;
    return false;
  }
  m_defined.insert(name);
  return true;
}

}  // namespace pgxform
