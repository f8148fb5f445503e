#include "support/fixtures.h"

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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

void items_function_then(TestDatabase& db, const std::string& then) {
  db.exec(
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE plpgsql AS $$ DECLARE n bigint; BEGIN"
      "  INSERT INTO target.items SELECT id, v * 10 FROM legacy.items"
      "   WHERE id BETWEEN first_key AND last_key;"
      "  GET DIAGNOSTICS n = ROW_COUNT; " +
      then + "; RETURN n; END $$");
}

void per_row_items_function(TestDatabase& db, double ms_per_row, long long slow_key, int slow_ms) {
  items_function_then(db, "PERFORM pg_sleep(n * " + std::to_string(ms_per_row / 1000.0) +
                              " + CASE WHEN " + std::to_string(slow_key) +
                              " BETWEEN first_key AND last_key THEN " +
                              std::to_string(slow_ms / 1000.0) + " ELSE 0 END)");
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

void state_back_to_version_9(TestDatabase& db) {
  db.exec(
      "ALTER TABLE pgxform.change_log DROP COLUMN via;"
      "CREATE INDEX change_log_job_id ON pgxform.change_log (job, id);"
      "ALTER TABLE pgxform.failed_batches DROP COLUMN catch_up;"
      "ALTER TABLE pgxform.job_state DROP COLUMN catch_up_waiting;"
      "ALTER TABLE pgxform.job_state DROP COLUMN table_schema, DROP COLUMN table_name,"
      " DROP COLUMN key_column, DROP COLUMN key_type, DROP COLUMN function_schema,"
      " DROP COLUMN function_name;"
      "DROP TABLE pgxform.runner_pool;"
      "DROP TABLE pgxform.capture_slot, pgxform.capture_table;"
      "ALTER TABLE pgxform.job_state DROP COLUMN capture_lost;"
      "DROP FUNCTION pgxform.key_reads_as(text, regtype);"
      "DELETE FROM pgxform.schema_version WHERE version >= 10");
}

void wait_until(const std::function<bool()>& condition,
                const std::function<std::string()>& explain) {
  auto met = [&] {
    try {
      return condition();
    } catch (const std::exception&) {
      return false;
    }
  };
  for (int i = 0; i < 3000 && !met(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (met()) return;
  INFO((explain ? explain() : std::string()));
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
    m_db.exec("DROP OWNED BY " + m_name + " CASCADE; DROP ROLE " + m_name);
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

std::string with_capture(std::string yaml, const std::string& mode) {
  for (const std::string from : {"changes: trigger", "mode: trigger"})
    for (auto at = yaml.find(from); at != std::string::npos; at = yaml.find(from, at + 1))
      yaml.replace(at, from.size(), from.substr(0, from.find(':') + 2) + mode);
  return yaml;
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

long long batches_committed(TestDatabase& db) {
  try {
    return db.count("SELECT coalesce(sum(batches_done), 0) FROM pgxform.job_state");
  } catch (const std::exception&) {
    return 0;  // the state schema does not exist yet
  }
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

namespace pgxform_test {

SlotPeople::SlotPeople(int rows, int batch_size, int sleep_ms, const std::string& top_level) {
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.people (id bigint PRIMARY KEY, name text NOT NULL, score int);"
      "INSERT INTO legacy.people SELECT g, 'person ' || g, g % 100 FROM generate_series(1, " +
      std::to_string(rows) +
      ") g;"
      "CREATE TABLE target.people (id bigint, display text, doubled int);"
      "CREATE TABLE target.refreshed (id bigint);"
      "CREATE VIEW target.expected AS SELECT id, upper(name) AS display, score * 2 AS doubled"
      " FROM legacy.people;"
      "CREATE FUNCTION xf.people(lo bigint, hi bigint) RETURNS bigint LANGUAGE plpgsql AS $$"
      " DECLARE n bigint; BEGIN PERFORM pg_sleep(" +
      std::to_string(sleep_ms / 1000.0) +
      "); INSERT INTO target.people SELECT * FROM target.expected WHERE id BETWEEN lo AND hi;"
      " GET DIAGNOSTICS n = ROW_COUNT; RETURN n; END $$;"
      "CREATE FUNCTION xf.people_refresh(keys bigint[]) RETURNS bigint LANGUAGE sql AS $$"
      " INSERT INTO target.refreshed SELECT unnest(keys);"
      " DELETE FROM target.people t WHERE t.id = ANY (keys);"
      " INSERT INTO target.people SELECT * FROM target.expected WHERE id = ANY (keys);"
      " SELECT pg_catalog.cardinality(keys)::bigint $$;");
  path = dir.write("jobs.yaml", "version: 1\n" + top_level +
                                    "lists:\n  - name: main\n    jobs:\n"
                                    "      - {name: people, table: legacy.people, key: id,"
                                    " function: xf.people, batch_size: " +
                                    std::to_string(batch_size) +
                                    ", target_batch_ms: 0, changes: logical,"
                                    " refresh_function: xf.people_refresh}\n");
}

CliResult SlotPeople::pgxform(std::vector<std::string> args) {
  return run_with_db(db, path, std::move(args));
}

std::vector<std::string> SlotPeople::command(std::vector<std::string> args) {
  return with_db(db, path, std::move(args));
}

long long SlotPeople::differences() {
  return db.count(
      "SELECT (SELECT count(*) FROM (SELECT * FROM target.expected EXCEPT ALL"
      " SELECT * FROM target.people) a) + (SELECT count(*) FROM (SELECT * FROM target.people"
      " EXCEPT ALL SELECT * FROM target.expected) b)");
}

long long SlotPeople::logged() {
  return db.count("SELECT count(*) FROM pgxform.change_log");
}

void SlotPeople::count_changes() {
  db.exec(
      "CREATE TABLE target.changes (id bigint);"
      "CREATE FUNCTION target.count_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
      " INSERT INTO target.changes SELECT key::bigint FROM new_rows; RETURN NULL; END $$;"
      "CREATE TRIGGER count_change AFTER INSERT ON pgxform.change_log"
      " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
      " EXECUTE FUNCTION target.count_change()");
}

long long SlotPeople::refreshed_too_often() {
  return db.count(
      "SELECT count(*) FROM (SELECT id, count(*) AS n FROM target.refreshed GROUP BY id) r"
      " WHERE r.n > (SELECT count(*) FROM target.changes c WHERE c.id = r.id)");
}

long long SlotPeople::slots() {
  return db.count("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()");
}

long long SlotPeople::publications() {
  return db.count("SELECT count(*) FROM pg_publication");
}

Shop::Shop(int orders, int lines_per_order, int batch_size, int lines_sleep_ms) {
  const std::string n = std::to_string(orders), per = std::to_string(lines_per_order);
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.orders (id bigint PRIMARY KEY, status text NOT NULL, customer text);"
      "CREATE TABLE legacy.order_lines (id bigint PRIMARY KEY, order_id bigint NOT NULL"
      " REFERENCES legacy.orders ON DELETE CASCADE, qty int NOT NULL);"
      "CREATE INDEX ON legacy.order_lines (order_id);"
      "INSERT INTO legacy.orders SELECT g, 'new', 'customer ' || (g % 7) FROM generate_series(1, " +
      n +
      ") g;"
      "INSERT INTO legacy.order_lines SELECT g, (g - 1) / " +
      per + " + 1, g % 5 + 1 FROM generate_series(1, " + n + " * " + per +
      ") g;"
      "CREATE SEQUENCE legacy.order_seq START " +
      std::to_string(orders + 1) +
      ";"
      "CREATE SEQUENCE legacy.line_seq START " +
      std::to_string(orders * lines_per_order + 1) +
      ";"
      "CREATE TABLE target.orders (id bigint, status text, customer text);"
      "CREATE TABLE target.lines (id bigint, order_id bigint, qty int, status text);"
      "CREATE TABLE target.refreshed (job text, id bigint);"
      "CREATE VIEW target.expected_orders AS SELECT id, upper(status) AS status, customer"
      " FROM legacy.orders;"
      "CREATE VIEW target.expected_lines AS SELECT l.id, l.order_id, l.qty,"
      " upper(o.status) AS status FROM legacy.order_lines l JOIN legacy.orders o"
      " ON o.id = l.order_id;"
      "CREATE FUNCTION xf.orders(lo bigint, hi bigint) RETURNS bigint LANGUAGE sql AS $$"
      " WITH i AS (INSERT INTO target.orders SELECT * FROM target.expected_orders"
      " WHERE id BETWEEN lo AND hi RETURNING 1) SELECT count(*) FROM i $$;"
      "CREATE FUNCTION xf.orders_refresh(keys bigint[]) RETURNS bigint LANGUAGE sql AS $$"
      " INSERT INTO target.refreshed SELECT 'orders', unnest(keys);"
      " DELETE FROM target.orders t WHERE t.id = ANY (keys);"
      " INSERT INTO target.orders SELECT * FROM target.expected_orders WHERE id = ANY (keys);"
      " SELECT pg_catalog.cardinality(keys)::bigint $$;"
      // The sleep after the read: the batch holds what it read while the orders change.
      "CREATE FUNCTION xf.lines(lo bigint, hi bigint) RETURNS bigint LANGUAGE plpgsql AS $$"
      " DECLARE n bigint; BEGIN INSERT INTO target.lines SELECT * FROM target.expected_lines"
      " WHERE id BETWEEN lo AND hi; GET DIAGNOSTICS n = ROW_COUNT; PERFORM pg_sleep(" +
      std::to_string(lines_sleep_ms / 1000.0) +
      "); RETURN n; END $$;"
      "CREATE FUNCTION xf.lines_refresh(keys bigint[]) RETURNS bigint LANGUAGE sql AS $$"
      " INSERT INTO target.refreshed SELECT 'lines', unnest(keys);"
      " DELETE FROM target.lines t WHERE t.id = ANY (keys);"
      " INSERT INTO target.lines SELECT * FROM target.expected_lines WHERE id = ANY (keys);"
      " SELECT pg_catalog.cardinality(keys)::bigint $$;"
      "ANALYZE legacy.orders; ANALYZE legacy.order_lines;");
  path = dir.write("jobs.yaml", yaml(batch_size));
}

std::string Shop::yaml(int batch_size, int lines_parallel) {
  const std::string size = std::to_string(batch_size);
  return "version: 1\n"
         "lists:\n"
         "  - name: sales\n"
         "    jobs:\n"
         "      - name: orders\n"
         "        table: legacy.orders\n"
         "        key: id\n"
         "        function: xf.orders\n"
         "        batch_size: " +
         size +
         "\n"
         "        target_batch_ms: 0\n"
         "        changes: trigger\n"
         "        refresh_function: xf.orders_refresh\n"
         "  - name: details\n"
         "    jobs:\n"
         "      - name: lines\n"
         "        table: legacy.order_lines\n"
         "        key: id\n"
         "        function: xf.lines\n"
         "        batch_size: " +
         size +
         "\n"
         "        target_batch_ms: 0\n"
         "        changes:\n"
         "          mode: trigger\n"
         "          also:\n"
         "            - {table: legacy.orders, column: id, match: order_id}\n"
         "        refresh_function: xf.lines_refresh\n" +
         (lines_parallel > 1 ? "        parallel: " + std::to_string(lines_parallel) + "\n"
                             : std::string());
}

CliResult Shop::pgxform(std::vector<std::string> args) {
  return run_with_db(db, path, std::move(args));
}

std::vector<std::string> Shop::command(std::vector<std::string> args) {
  return with_db(db, path, std::move(args));
}

long long Shop::differences() {
  return db.count(
      "SELECT (SELECT count(*) FROM (SELECT * FROM target.expected_orders EXCEPT ALL"
      " SELECT * FROM target.orders) a) + (SELECT count(*) FROM (SELECT * FROM target.orders"
      " EXCEPT ALL SELECT * FROM target.expected_orders) b)"
      " + (SELECT count(*) FROM (SELECT * FROM target.expected_lines EXCEPT ALL"
      " SELECT * FROM target.lines) c) + (SELECT count(*) FROM (SELECT * FROM target.lines"
      " EXCEPT ALL SELECT * FROM target.expected_lines) d)");
}

long long Shop::pending() {
  return db.count("SELECT count(*) FROM pgxform.change_log");
}

void Shop::count_changes() {
  db.exec(
      "CREATE TABLE target.changes (job text, id bigint);"
      "CREATE FUNCTION target.count_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
      " INSERT INTO target.changes SELECT job, key::bigint FROM new_rows WHERE via = 0;"
      " RETURN NULL; END $$;"
      "CREATE TRIGGER count_change AFTER INSERT ON pgxform.change_log"
      " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
      " EXECUTE FUNCTION target.count_change()");
}

long long Shop::refreshed_too_often() {
  return db.count(
      "SELECT count(*) FROM (SELECT job, id, count(*) AS n FROM target.refreshed"
      " GROUP BY job, id) r WHERE r.n > (SELECT count(*) FROM target.changes c"
      " WHERE c.job = r.job AND c.id = r.id)");
}

void Shop::change(std::mt19937& rng) {
  pqxx::connection conn(db.dsn());
  change(conn, rng);
}

void Shop::check_exact_beside_run_and_follow() {
  const auto captured = pgxform({"capture"});
  INFO(captured.err);
  REQUIRE(captured.exit_code == 0);
  count_changes();
  std::atomic<bool> writing{true};
  std::atomic<long long> changes{0};
  std::thread writer([&] {
    pqxx::connection conn(db.dsn());
    std::mt19937 rng(Catch::rngSeed());
    while (writing) {
      change(conn, rng);
      ++changes;
    }
  });
  Child follow(command({"catch-up", "--follow"}), dir.path());
  const auto run = pgxform({"run", "--threads", "2"});
  const long long after_run = changes;
  wait_until([&] { return changes > after_run + 100; });
  writing = false;
  writer.join();
  follow.kill(SIGINT);
  INFO(follow.err());
  CHECK(follow.wait() == 0);
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  const auto last = pgxform({"catch-up"});
  INFO(last.err);
  REQUIRE(last.exit_code == 0);
  CHECK(pending() == 0);
  CHECK(differences() == 0);
  CHECK(refreshed_too_often() == 0);
  CHECK(db.count("SELECT count(*) FROM target.refreshed WHERE job = 'lines'") > 0);
}

void Shop::change(pqxx::connection& conn, std::mt19937& rng) {
  // A row picked at a random place of its table's key range (the first at or after it).
  const auto pick = [&](const std::string& table) {
    const std::string at = std::to_string(std::uniform_real_distribution<double>(0, 1)(rng));
    return "(SELECT p.id FROM " + table + " p WHERE p.id >= (SELECT max(m.id) FROM " + table +
           " m) * " + at + " ORDER BY p.id LIMIT 1)";
  };
  // The first key missing from a table's range: a gap below its cursor, or a deleted key.
  const auto gap = [&](const std::string& table) {
    return "(SELECT g FROM generate_series(1, (SELECT max(m.id) FROM " + table +
           " m)) g WHERE NOT EXISTS (SELECT 1 FROM " + table +
           " x WHERE x.id = g) ORDER BY g LIMIT 1)";
  };
  static const char* const k_status[] = {"paid", "shipped", "cancelled", "returned"};
  const std::string status = k_status[std::uniform_int_distribution<int>(0, 3)(rng)];
  const std::string orders = "legacy.orders", lines = "legacy.order_lines";
  std::string sql;
  switch (std::uniform_int_distribution<int>(0, 9)(rng)) {
    case 0:
      sql = "UPDATE legacy.orders SET status = '" + status + "' WHERE id = " + pick(orders);
      break;
    case 1:
      sql = "UPDATE legacy.order_lines SET qty = qty + 1 WHERE id = " + pick(lines);
      break;
    case 2:
      sql =
          "UPDATE legacy.order_lines SET order_id = " + pick(orders) + " WHERE id = " + pick(lines);
      break;
    case 3:
      sql =
          "WITH o AS (INSERT INTO legacy.orders VALUES (nextval('legacy.order_seq'), 'new',"
          " 'late') RETURNING id) INSERT INTO legacy.order_lines SELECT"
          " nextval('legacy.line_seq'), o.id, 2 FROM o, generate_series(1, 2)";
      break;
    case 4:
      sql = "INSERT INTO legacy.order_lines SELECT nextval('legacy.line_seq'), " + pick(orders) +
            ", 3";
      break;
    case 5:
      sql = "INSERT INTO legacy.order_lines SELECT " + gap(lines) + ", " + pick(orders) +
            ", 4 WHERE " + gap(lines) + " IS NOT NULL";
      break;
    case 6:
      sql = "DELETE FROM legacy.order_lines WHERE id = " + pick(lines);
      break;
    case 7:
      sql = "DELETE FROM legacy.orders WHERE id = " + pick(orders);
      break;
    case 8:
      sql = "INSERT INTO legacy.orders SELECT " + gap(orders) + ", 'again', 'back' WHERE " +
            gap(orders) + " IS NOT NULL";
      break;
    default:
      sql =
          "UPDATE legacy.order_lines SET id = nextval('legacy.line_seq') WHERE id = " + pick(lines);
  }
  // A statement that finds no row (an empty table, a key gone meanwhile) changes nothing; one
  // that breaks a constraint (a line moved to no order) is rolled back, as the application's.
  try {
    pqxx::work tx(conn);
    tx.exec(sql);
    tx.commit();
  } catch (const pqxx::integrity_constraint_violation&) {
  }
}

}  // namespace pgxform_test
