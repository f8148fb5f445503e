#include "support/fixtures.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <pqxx/pqxx>
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

long long missing_items(TestDatabase& db) {
  return db.count(
      "SELECT count(*) FROM legacy.items l WHERE NOT EXISTS"
      " (SELECT 1 FROM target.items t WHERE t.id = l.id AND t.v = l.v * 10)");
}

long long duplicate_items(TestDatabase& db) {
  return db.count(
      "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM target.items GROUP BY id) x");
}

}  // namespace pgxform_test
