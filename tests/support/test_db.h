// test_db: what the database tests stand on — a fresh database per test (from the PG*
// environment that pg_virtualenv or the caller set), pgxform run in-process through run_cli
// or as a real child process (for SIGKILL and SIGINT), and jobs files in a temporary folder.
#pragma once

#include <functional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace pgxform_test {

class TestDatabase {
 public:
  TestDatabase();
  // On another server than the PG* environment's: `server` a conninfo ("port=5449") that the
  // environment completes (a fleet's second cluster).
  explicit TestDatabase(std::string server);
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  const std::string& name() const { return m_name; }
  std::string dsn() const { return (m_server.empty() ? "" : m_server + " ") + "dbname=" + m_name; }
  void exec(const std::string& sql);
  // The first column of the first row, as text ("" for NULL).
  std::string scalar(const std::string& sql);
  long long count(const std::string& sql) { return std::stoll(scalar(sql)); }
  bool schema_exists(const std::string& schema);

 private:
  std::string m_name;
  std::string m_server;
};

// The conninfo of a second server for the fleet tests (PGXFORM_TEST_SERVER2, e.g. "port=5449");
// empty when none is set: those tests are skipped.
std::string second_server();

// A temporary folder, removed at the end.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return m_path; }
  std::string write(const std::string& name, const std::string& text) const;

 private:
  std::string m_path;
};

struct CliResult {
  int exit_code;
  std::string out;  // what the command printed (status, help)
  std::string err;  // stderr: messages and log lines
};

// pgxform in this process: argv[0] is supplied.
CliResult run_cli(const std::vector<std::string>& args);

// pgxform as a child process, its stderr and stdout sent to files in `dir`.
class Child {
 public:
  // `in_child` runs in the child process between fork and exec (limits, another user).
  Child(const std::vector<std::string>& args, const std::string& dir,
        const std::function<void()>& in_child = {});
  ~Child();
  int pid() const { return m_pid; }
  void kill(int signal);
  // Waits for the exit; returns the exit code, or 128+signal when a signal ended it.
  int wait();
  // Waits up to `ms`; true when it exited.
  bool wait_for(int ms, int& code);
  std::string err() const;
  std::string out() const;

 private:
  int m_pid;
  std::string m_err_path;
  std::string m_out_path;
  bool m_reaped = false;
};

std::string binary();
std::string source_dir();

}  // namespace pgxform_test
