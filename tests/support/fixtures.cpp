#include "support/fixtures.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>

namespace pgxform_test {

void create_items(TestDatabase& db, int rows, int sleep_ms) {
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.items (id bigint PRIMARY KEY, v int NOT NULL);"
      "INSERT INTO legacy.items SELECT g * 3, g FROM generate_series(1, " +
      std::to_string(rows) +
      ") g;"
      "CREATE TABLE target.items (id bigint NOT NULL, v int NOT NULL);"
      "CREATE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE plpgsql AS $$ DECLARE n bigint; BEGIN"
      "  PERFORM pg_sleep(" +
      std::to_string(sleep_ms / 1000.0) +
      ");"
      "  INSERT INTO target.items SELECT id, v * 10 FROM legacy.items"
      "   WHERE id BETWEEN first_key AND last_key;"
      "  GET DIAGNOSTICS n = ROW_COUNT; RETURN n; END $$;"
      "ANALYZE legacy.items;");
}

void per_row_items_function(TestDatabase& db, double ms_per_row, long long slow_key, int slow_ms) {
  db.exec(
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE plpgsql AS $$ DECLARE n bigint; BEGIN"
      "  INSERT INTO target.items SELECT id, v * 10 FROM legacy.items"
      "   WHERE id BETWEEN first_key AND last_key;"
      "  GET DIAGNOSTICS n = ROW_COUNT;"
      "  PERFORM pg_sleep(n * " +
      std::to_string(ms_per_row / 1000.0) + " + CASE WHEN " + std::to_string(slow_key) +
      " BETWEEN first_key AND last_key THEN " + std::to_string(slow_ms / 1000.0) +
      " ELSE 0 END);"
      "  RETURN n; END $$");
}

void plain_items_function(TestDatabase& db) {
  db.exec(
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS 'WITH i AS (INSERT INTO target.items SELECT id, v * 10 FROM"
      " legacy.items WHERE id BETWEEN first_key AND last_key RETURNING 1)"
      " SELECT count(*) FROM i'");
}

std::string items_jobs_yaml(int batch_size, int parallel, const std::string& settings) {
  return "version: 1\n"
         "lists:\n"
         "  - name: main\n"
         "    jobs:\n"
         "      - name: items\n"
         "        table: legacy.items\n"
         "        key: id\n"
         "        function: xf.items\n"
         "        batch_size: " +
         std::to_string(batch_size) + "\n" +
         (settings.find("target_batch_ms") == std::string::npos ? "        target_batch_ms: 0\n"
                                                                : "") +
         settings + (parallel > 1 ? "        parallel: " + std::to_string(parallel) + "\n" : "");
}

std::string items_job_with(const std::string& fields) {
  return "version: 1\nlists:\n  - name: main\n    jobs:\n      - name: items\n" + fields;
}

CliResult expect_run_refused(TestDatabase& db, const TempDir& dir, const std::string& yaml) {
  const std::string path = dir.write("jobs.yaml", yaml);
  CliResult r = run_cli({"run", "-f", path, "--dsn", db.dsn()});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_FALSE(db.schema_exists("pgxform"));
  CHECK(db.count("SELECT count(*) FROM target.items") == 0);
  return r;
}

void create_verified_tables(TestDatabase& db, int rows) {
  create_items(db, rows);
  db.exec(
      "INSERT INTO target.items SELECT id, v * 10 FROM legacy.items;"
      "CREATE UNIQUE INDEX ON target.items (id);"
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS 'WITH i AS (INSERT INTO target.items SELECT id, v * 10 FROM"
      " legacy.items WHERE id BETWEEN first_key AND last_key ON CONFLICT (id) DO NOTHING"
      " RETURNING 1) SELECT count(*) FROM i';"
      "CREATE TABLE legacy.others (id bigint PRIMARY KEY);"
      "INSERT INTO legacy.others SELECT g FROM generate_series(1, " +
      std::to_string(rows) +
      ") g;"
      "CREATE TABLE target.others (id bigint PRIMARY KEY);"
      "INSERT INTO target.others SELECT id FROM legacy.others;"
      "CREATE FUNCTION xf.others(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS 'WITH i AS (INSERT INTO target.others SELECT id FROM legacy.others"
      " WHERE id BETWEEN first_key AND last_key ON CONFLICT (id) DO NOTHING RETURNING 1)"
      " SELECT count(*) FROM i';"
      "ANALYZE legacy.others; ANALYZE target.items; ANALYZE target.others;");
}

std::string verify_jobs_yaml(int batch_size, const std::string& items_more,
                             const std::string& others_more) {
  const auto job = [&](const std::string& name, const std::string& more) {
    return "      - name: " + name + "\n        table: legacy." + name + "\n        key: id\n" +
           "        function: xf." + name + "\n        batch_size: " + std::to_string(batch_size) +
           "\n        target_batch_ms: 0\n        idempotent: true\n"
           "        verify: >-\n          SELECT l.id FROM legacy." +
           name + " l WHERE l.id BETWEEN $1 AND $2 AND NOT EXISTS (SELECT 1 FROM target." + name +
           " t WHERE t.id = l.id AND t.id BETWEEN $1 AND $2)" + more + "\n";
  };
  return "version: 1\nlists:\n  - name: main\n    jobs:\n" + job("items", items_more) +
         job("others", others_more);
}

std::string items_skip_yaml(Bisect bisect) {
  return "version: 1\n"
         "defaults: {on_error: skip, bisect: " +
         std::string(bisect == Bisect::on ? "true" : "false") +
         "}\n"
         "lists:\n"
         "  - name: main\n"
         "    jobs:\n"
         "      - {name: items, table: legacy.items, key: id, function: xf.items, batch_size: 100, "
         "target_batch_ms: 0,"
         " idempotent: false,\n"
         "         verify: 'SELECT l.id FROM legacy.items l WHERE l.id BETWEEN $1 AND $2 AND NOT"
         " EXISTS (SELECT 1 FROM target.items t WHERE t.id = l.id)'}\n";
}

void poisoned_items_function(TestDatabase& db, long long poisoned_key) {
  db.exec(
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS 'WITH i AS (INSERT INTO target.items SELECT id, v * 10 / CASE WHEN"
      " id = " +
      std::to_string(poisoned_key) +
      " THEN 0 ELSE 1 END FROM legacy.items WHERE id BETWEEN first_key AND last_key"
      " RETURNING 1) SELECT count(*) FROM i'");
}

void wait_until(const std::function<bool()>& condition) {
  auto met = [&] {
    try {
      return condition();
    } catch (const std::exception&) {
      return false;
    }
  };
  for (int i = 0; i < 3000 && !met(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(met());
}

std::vector<std::string> with_db(TestDatabase& db, const std::string& path,
                                 std::vector<std::string> args) {
  args.insert(args.end(), {"-f", path, "--dsn", db.dsn()});
  return args;
}

std::string conninfo_value(const std::string& value) {
  std::string quoted = "'";
  for (const char c : value) {
    if (c == '\\' || c == '\'') quoted += '\\';
    quoted += c;
  }
  return quoted + "'";
}

TestRole::TestRole(TestDatabase& db, const std::string& suffix, const std::string& options)
    : m_db(db), m_name(db.name() + "_" + suffix) {
  db.exec("CREATE ROLE " + m_name + " LOGIN PASSWORD 'Role-pw-1' " + options);
}

TestRole::~TestRole() {
  try {
    m_db.exec("DROP OWNED BY " + m_name + "; DROP ROLE " + m_name);
  } catch (const std::exception& e) {
    WARN("could not drop role " << m_name << ": " << e.what());
  }
}

std::string TestRole::dsn() const {
  return m_db.dsn() + " user=" + m_name + " password=Role-pw-1";
}

void grant_items(TestDatabase& db, const TestRole& role) {
  db.exec("GRANT USAGE ON SCHEMA legacy, target, xf TO " + role.name() +
          "; GRANT SELECT ON legacy.items TO " + role.name() +
          "; GRANT SELECT, INSERT ON target.items TO " + role.name() +
          "; CREATE SCHEMA pgxform AUTHORIZATION " + role.name());
}

BusySessions::BusySessions(TestDatabase& db, int count) : m_db(db) {
  for (int i = 0; i < count; ++i)
    m_threads.emplace_back([&db] {
      try {
        pqxx::connection c(db.dsn());
        pqxx::nontransaction(c).exec("SELECT pg_sleep(60)");
      } catch (const std::exception&) {
        // cancelled: what end() does
      }
    });
  wait_until([&] {
    return db.count(
               "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
               " AND query = 'SELECT pg_sleep(60)' AND state = 'active'") == count;
  });
}

void BusySessions::end() {
  if (m_threads.empty()) return;
  m_db.exec(
      "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
      " AND query = 'SELECT pg_sleep(60)'");
  for (auto& t : m_threads) t.join();
  m_threads.clear();
}

CliResult run_with_db(TestDatabase& db, const std::string& path, std::vector<std::string> args) {
  return run_cli(with_db(db, path, std::move(args)));
}

std::string items_and_counting_step_yaml(TestDatabase& db) {
  db.exec("CREATE TABLE target.step_runs (at timestamptz DEFAULT now())");
  return items_jobs_yaml(100) +
         "      - name: count-step\n"
         "        sql: INSERT INTO target.step_runs DEFAULT VALUES\n";
}

TestServer::TestServer(TestDatabase& db)
    : m_data(db.scalar("SHOW data_directory")),
      m_bin("/usr/lib/postgresql/" +
            std::to_string(std::stoi(db.scalar("SHOW server_version_num")) / 10000) + "/bin/") {}

void TestServer::pg_ctl(const std::string& arguments) {
  struct stat info {};
  REQUIRE(stat(m_data.c_str(), &info) == 0);
  const passwd* owner = getpwuid(info.st_uid);
  REQUIRE(owner != nullptr);
  std::string command = m_bin + "pg_ctl " + arguments + " -s -w -t 120 -D '" + m_data + "'";
  if (geteuid() != info.st_uid)
    command = "runuser -u " + std::string(owner->pw_name) + " -- " + command;
  INFO(command);
  REQUIRE(std::system((command + " >/dev/null").c_str()) == 0);
}

void TestServer::restart(const std::string& mode) {
  pg_ctl("restart -m " + mode);
}

void TestServer::stop() {
  // `postgres "-D" "..." "-p" "5443" ...`: its options, quoted for the shell pg_ctl starts it
  // with, and gone with the server once it stopped.
  std::ifstream opts(m_data + "/postmaster.opts");
  REQUIRE(opts);
  std::string line;
  std::getline(opts, line);
  const auto space = line.find(' ');
  m_options = space == std::string::npos ? "" : line.substr(space + 1);
  pg_ctl("stop -m fast");
}

void TestServer::start() {
  pg_ctl("start -o '" + m_options + "'");
}

long long missing_items(TestDatabase& db) {
  return db.count(
      "SELECT count(*) FROM legacy.items l WHERE NOT EXISTS"
      " (SELECT 1 FROM target.items t WHERE t.id = l.id AND t.v = l.v * 10)");
}

long long duplicate_items(TestDatabase& db) {
  return db.count(
      "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM target.items GROUP BY id) x");
}

void create_two_lists(TestDatabase& db, int rows, int sleep_ms) {
  create_items(db, rows, sleep_ms);
  db.exec(
      "CREATE TABLE target.steps (name text);"
      "CREATE TABLE legacy.others (id int PRIMARY KEY, v int NOT NULL);"
      "INSERT INTO legacy.others SELECT g * 7, g FROM generate_series(1, " +
      std::to_string(rows / 2) +
      ") g;"
      "CREATE TABLE target.others (id int, v int);"
      "CREATE FUNCTION xf.others(a int, b int) RETURNS void LANGUAGE sql AS"
      " 'INSERT INTO target.others SELECT * FROM legacy.others WHERE id BETWEEN a AND b;"
      "  SELECT pg_sleep(" +
      std::to_string(sleep_ms / 1000.0) +
      ")';"
      "ANALYZE legacy.others;");
}

std::string two_lists_yaml(int parallel, const std::string& items_sizing) {
  return "version: 1\n"
         "lists:\n"
         "  - name: main\n"
         "    jobs:\n"
         "      - {name: items, table: legacy.items, key: id, function: xf.items, " +
         items_sizing + ", parallel: " + std::to_string(parallel) +
         "}\n"
         "      - {name: after-items, sql: INSERT INTO target.steps VALUES ('after-items')}\n"
         "  - name: other\n"
         "    jobs:\n"
         "      - {name: others, table: legacy.others, key: id, function: xf.others,"
         " batch_size: 40, target_batch_ms: 0}\n";
}

std::vector<std::string> two_lists_run_args(TestDatabase& db, const std::string& path) {
  return {"run", "-q", "-f", path, "--dsn", db.dsn(), "--threads", "3"};
}

void check_two_lists_done_once(TestDatabase& db, int rows) {
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.count("SELECT count(*) FROM target.others") == rows / 2);
  CHECK(db.count("SELECT count(DISTINCT id) FROM target.others") == rows / 2);
  CHECK(db.count("SELECT count(*) FROM target.steps") == 1);
  // The state agrees with the target: every committed batch has its log row and counters.
  CHECK(db.count("SELECT sum(rows) FROM pgxform.batch_log WHERE job = 'items'") == rows);
  CHECK(db.count("SELECT rows_done FROM pgxform.job_state WHERE job = 'items'") == rows);
  CHECK(db.count("SELECT count(*) FROM pgxform.job_state WHERE status <> 'done'") == 0);
}

bool batch_in_flight(TestDatabase& db) {
  return db.count(std::string("SELECT count(*) FROM ") + k_batches_in_flight) > 0;
}

void check_nothing_written(TestDatabase& db, long long tables_before) {
  CHECK_FALSE(db.schema_exists("pgxform"));
  CHECK(db.count("SELECT count(*) FROM target.items") == 0);
  CHECK(db.count("SELECT count(*) FROM pg_class WHERE relkind = 'r'") == tables_before);
}

void check_log_matches_counters(TestDatabase& db) {
  CHECK(db.count("SELECT rows_done FROM pgxform.job_state") ==
        db.count("SELECT coalesce(sum(rows), 0) FROM pgxform.batch_log"));
  CHECK(db.count("SELECT batches_done FROM pgxform.job_state") ==
        db.count("SELECT count(*) FROM pgxform.batch_log"));
}

Json job_status_json(TestDatabase& db, const std::string& path, const std::string& job) {
  return job_in(parse_json(run_with_db(db, path, {"status", "--json"}).out), job);
}

std::function<void()> progress_every(int ms) {
  return [ms] { setenv("PGXFORM_PROGRESS_INTERVAL_MS", std::to_string(ms).c_str(), 1); };
}

long long lines_with(const std::string& text, const std::vector<std::string>& parts) {
  long long n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (std::all_of(parts.begin(), parts.end(),
                    [&](const auto& p) { return line.find(p) != std::string::npos; }))
      ++n;
  return n;
}

}  // namespace pgxform_test
