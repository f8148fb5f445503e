#include "database.h"

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

}  // namespace

void register_secrets_from(const std::string& dsn) {
  if (const char* env = std::getenv("PGPASSWORD")) add_secret(env);
  // key=value form: password=secret or password='se cret'.
  static const std::regex kv(R"(password\s*=\s*('((?:[^'\\]|\\.)*)'|([^\s]+)))");
  for (std::sregex_iterator it(dsn.begin(), dsn.end(), kv), end; it != end; ++it)
    add_secret((*it)[2].matched ? (*it)[2].str() : (*it)[3].str());
  // URI form: postgresql://user:secret@host/db and ?password=secret.
  static const std::regex uri(R"(^postgres(?:ql)?://[^:/@]*:([^@/]*)@)");
  std::smatch m;
  if (std::regex_search(dsn, m, uri)) add_secret(m[1].str());
  static const std::regex query(R"([?&]password=([^&]*))");
  for (std::sregex_iterator it(dsn.begin(), dsn.end(), query), end; it != end; ++it)
    add_secret((*it)[1].str());
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
    tx.exec_params(
        "SELECT set_config('DateStyle', 'ISO, YMD', false), set_config('TimeZone', 'UTC', false),"
        " set_config('application_name', $1, false), set_config('extra_float_digits', '3', false)",
        "pgxform " + runner_identity());
    if (access == Access::read_only) tx.exec("SET default_transaction_read_only = on");
    return conn;
  } catch (const std::exception& e) {
    throw ConnectError("cannot connect to PostgreSQL: " + redact(e.what()));
  }
}

std::string quote_ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace pgxform

namespace pgxform {

pqxx::connection& Session::conn() {
  if (!m_conn) {
    m_conn = connect(m_dsn);
    m_prepared.clear();
    m_backend_pid = m_conn->backendpid();
  }
  return *m_conn;
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

}  // namespace pgxform
