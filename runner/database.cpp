#include "database.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <regex>
#include <set>
#include <vector>

namespace pgxform {

namespace {

std::mutex g_secrets_mutex;
std::set<std::string>& secrets() {
  static std::set<std::string> s;
  return s;
}

void add_secret(const std::string& secret) {
  if (secret.empty()) return;
  std::lock_guard<std::mutex> lock(g_secrets_mutex);
  secrets().insert(secret);
}

// A password as written, and the pieces a message may quote of it when it does not parse (a
// URI password with an unencoded '/' ends its host part early, and libpq then quotes what
// it found there). Pieces shorter than 3 characters are too common to hide and tell little.
void add_secret_with_pieces(const std::string& secret) {
  add_secret(secret);
  std::string piece;
  for (const char c : secret + "/") {
    if (std::string_view("/?#@:&=").find(c) == std::string_view::npos) {
      piece += c;
      continue;
    }
    if (piece.size() >= 3) add_secret(piece);
    piece.clear();
  }
}

// What libpq itself reads as the password, decoded (percent-encoding, quotes, escapes).
void add_parsed_password(const std::string& dsn) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (error) PQfreemem(error);
  if (!options) return;
  for (const PQconninfoOption* o = options; o->keyword; ++o)
    if (std::string_view(o->keyword) == "password" && o->val) add_secret(o->val);
  PQconninfoFree(options);
}

}  // namespace

void register_secrets_from(const std::string& dsn) {
  if (const char* env = std::getenv("PGPASSWORD")) add_secret(env);
  add_parsed_password(dsn);
  // And as written, whether libpq could parse it or not: a message quotes the raw text.
  static const std::regex scheme(R"(^\s*postgres(?:ql)?://)");
  if (std::regex_search(dsn, scheme)) {
    // URI form, leading spaces too: postgresql://user:secret@host/db, the secret running to
    // the LAST '@' (an unencoded '@' or '/' in it included); and ?password=secret.
    static const std::regex uri(R"(postgres(?:ql)?://[^:/@\s]*:(.*)@)");
    std::smatch m;
    if (std::regex_search(dsn, m, uri)) add_secret_with_pieces(m[1].str());
    static const std::regex query(R"([?&]password=([^&\s]*))");
    for (std::sregex_iterator it(dsn.begin(), dsn.end(), query), end; it != end; ++it)
      add_secret_with_pieces((*it)[1].str());
    return;
  }
  // key=value form: password=secret or password='se cret' (its quote closed or not).
  static const std::regex kv(R"(password\s*=\s*('((?:[^'\\]|\\.)*)'?|([^\s]+)))");
  for (std::sregex_iterator it(dsn.begin(), dsn.end(), kv), end; it != end; ++it)
    add_secret_with_pieces((*it)[2].matched ? (*it)[2].str() : (*it)[3].str());
}

std::string redact(std::string text) {
  std::lock_guard<std::mutex> lock(g_secrets_mutex);
  // Longest first, so that a secret that begins with a shorter one is hidden whole.
  std::vector<std::string> ordered(secrets().begin(), secrets().end());
  std::sort(ordered.begin(), ordered.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const auto& secret : ordered) {
    for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 3))
      text.replace(pos, secret.size(), "***");
  }
  return text;
}

std::string runner_identity() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host) + ":" + std::to_string(getpid());
}

std::unique_ptr<pqxx::connection> connect(const std::string& dsn, Access access) {
  register_secrets_from(dsn);
  try {
    auto conn = std::make_unique<pqxx::connection>(dsn);
    // libpqxx 6 would silently reopen a broken connection, without its advisory locks and
    // session settings. A broken connection must stay broken, so that the runner notices,
    // reconnects itself and takes its claims again.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // deprecated in 6.4, gone in 7
    conn->inhibit_reactivation(true);
#pragma GCC diagnostic pop
    pqxx::nontransaction tx(*conn);
    // Text travels as UTF-8 both ways, whatever the database's encoding.
    tx.exec_params(
        "SELECT pg_catalog.set_config('client_encoding', 'UTF8', false),"
        " pg_catalog.set_config('DateStyle', 'ISO, YMD', false),"
        " pg_catalog.set_config('TimeZone', 'UTC', false),"
        " pg_catalog.set_config('application_name', $1, false),"
        " pg_catalog.set_config('extra_float_digits', '3', false),"
        // What pgxform writes itself is never captured for catch-up (change_capture.h): a
        // batch or a refresh function that touches a leading table would feed its own log.
        " pg_catalog.set_config('pgxform.capture_off', 'on', false)",
        k_application_prefix + runner_identity());
    if (access == Access::read_only) tx.exec("SET default_transaction_read_only = on");
    return conn;
  } catch (const std::exception& e) {
    throw ConnectError("cannot connect to PostgreSQL: " + redact(e.what()));
  }
}

void start_savepoint(pqxx::subtransaction& sub) {
  sub.exec("SELECT 1");
}

}  // namespace pgxform

namespace pgxform {

pqxx::connection& Session::conn() {
  if (!m_conn) {
    m_conn = connect(m_dsn);
    m_prepared.clear();
    m_defined.clear();
    m_cannot_define = false;
    m_backend_pid = m_conn->backendpid();
  }
  return *m_conn;
}

void Session::adopt(std::unique_ptr<pqxx::connection> conn) {
  m_conn = std::move(conn);
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
