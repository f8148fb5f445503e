#include "support/test_db.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "base/stop_signal.h"
#include "cli/cli.h"

namespace fs = std::filesystem;

namespace pgxform_test {

namespace {

std::atomic<int> g_counter{0};

// Maintenance connection: PG* environment with dbname postgres.
pqxx::connection admin(const std::string& server = "") {
  return pqxx::connection((server.empty() ? "" : server + " ") + "dbname=postgres");
}

}  // namespace

TestDatabase::TestDatabase() : TestDatabase(std::string()) {}

TestDatabase::TestDatabase(std::string server)
    : m_name("pgxform_test_" + std::to_string(getpid()) + "_" + std::to_string(++g_counter)),
      m_server(std::move(server)) {
  auto conn = admin(m_server);
  pqxx::nontransaction tx(conn);
  tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(m_name));
  tx.exec("CREATE DATABASE " + tx.quote_name(m_name));
}

TestDatabase::~TestDatabase() {
  try {
    auto conn = admin(m_server);
    pqxx::nontransaction tx(conn);
    // A logical replication slot (changes: logical) keeps its database from being dropped: its
    // sessions go first (one may still be reading the slot), then the slots.
    for (int i = 0; i < 100; ++i) {
      tx.exec_params(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
          " WHERE datname = $1 AND pid <> pg_backend_pid()",
          m_name);
      tx.exec_params(
          "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
          " WHERE database = $1 AND NOT active",
          m_name);
      if (tx.exec_params1("SELECT count(*) FROM pg_replication_slots WHERE database = $1",
                          m_name)[0]
              .as<int>() == 0)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(m_name) + " WITH (FORCE)");
  } catch (const std::exception& e) {
    std::cerr << "could not drop " << m_name << ": " << e.what() << "\n";
  }
}

std::string second_server() {
  const char* server = std::getenv("PGXFORM_TEST_SERVER2");
  return server ? server : "";
}

void TestDatabase::exec(const std::string& sql) {
  pqxx::connection conn(dsn());
  pqxx::nontransaction tx(conn);
  tx.exec(sql);
}

std::string TestDatabase::scalar(const std::string& sql) {
  pqxx::connection conn(dsn());
  pqxx::nontransaction tx(conn);
  const auto r = tx.exec(sql);
  if (r.empty() || r[0][0].is_null()) return "";
  return r[0][0].as<std::string>();
}

bool TestDatabase::schema_exists(const std::string& schema) {
  pqxx::connection conn(dsn());
  pqxx::nontransaction tx(conn);
  return tx.exec_params1("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema)[0]
             .as<int>() > 0;
}

TempDir::TempDir() {
  std::string templ = (fs::temp_directory_path() / "pgxform_test_XXXXXX").string();
  if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  m_path = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(m_path, ec);
}

std::string TempDir::write(const std::string& name, const std::string& text) const {
  const std::string p = m_path + "/" + name;
  std::ofstream(p) << text;
  return p;
}

CliResult run_cli(const std::vector<std::string>& args) {
  std::vector<const char*> argv{"pgxform"};
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  // run_cli sets up its own logger on stderr; capture stderr by swapping the stream buffer of
  // std::cerr and by pointing the log at `err` once it exists. Both are restored afterwards.
  std::streambuf* old = std::cerr.rdbuf(err.rdbuf());
  pgxform::reset_stop();
  int code = pgxform::run_cli(int(argv.size()), argv.data(), out);
  std::cerr.rdbuf(old);
  return {code, out.str(), err.str()};
}

Child::Child(const std::vector<std::string>& args, const std::string& dir,
             const std::function<void()>& in_child) {
  static std::atomic<int> n{0};
  m_err_path = dir + "/child_" + std::to_string(++n) + ".err";
  m_out_path = dir + "/child_" + std::to_string(n) + ".out";
  std::vector<std::string> all{binary()};
  all.insert(all.end(), args.begin(), args.end());
  // Whatever this process buffered must not be written again by the child.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  m_pid = fork();
  if (m_pid < 0) throw std::runtime_error("fork failed");
  if (m_pid == 0) {
    // No allocation until exec: another thread of the test (a writer) may have held the
    // allocator's lock at the fork, and the child would wait for it forever (seen under ASan).
    const int e = ::open(m_err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int o = ::open(m_out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (e >= 0) ::dup2(e, STDERR_FILENO), ::close(e);
    if (o >= 0) ::dup2(o, STDOUT_FILENO), ::close(o);
    if (in_child) in_child();
    execv(argv[0], argv.data());
    _exit(127);
  }
}

Child::~Child() {
  if (!m_reaped) {
    ::kill(m_pid, SIGKILL);
    int status;
    waitpid(m_pid, &status, 0);
  }
}

void Child::kill(int signal) {
  ::kill(m_pid, signal);
}

int Child::wait() {
  int status = 0;
  waitpid(m_pid, &status, 0);
  m_reaped = true;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool Child::wait_for(int ms, int& code) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    if (waitpid(m_pid, &status, WNOHANG) == m_pid) {
      m_reaped = true;
      code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::string Child::err() const {
  std::ifstream in(m_err_path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Child::out() const {
  std::ifstream in(m_out_path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string binary() {
  return PGXFORM_BINARY;
}
std::string source_dir() {
  return PGXFORM_SOURCE_DIR;
}

}  // namespace pgxform_test
