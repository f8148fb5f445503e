// Catch-up with real live writers (docs/catch-up.md): changes that arrive through a logical
// replication subscription (a publisher database on the same server replicating into the
// legacy table), and pgbench's own TPC-B writer running beside `run` and `catch-up --follow`.
// After the final catch-up the target equals a from-scratch transform of the current source.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "support/fixtures.h"
#include "support/prerequisite.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

// legacy.orders(id bigint PRIMARY KEY, status text, total numeric) and, with `transform`, its
// target and the functions of the job `orders`.
void create_orders(TestDatabase& db, bool transform) {
  db.exec(
      "CREATE SCHEMA legacy;"
      "CREATE TABLE legacy.orders (id bigint PRIMARY KEY, status text, total numeric)");
  if (!transform) return;
  db.exec(
      "CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE target.orders (id bigint PRIMARY KEY, status text, total_cents bigint);"
      "CREATE VIEW target.expected_orders AS SELECT id, upper(status) AS status,"
      " (total * 100)::bigint AS total_cents FROM legacy.orders;"
      "CREATE FUNCTION xf.orders(lo bigint, hi bigint) RETURNS bigint LANGUAGE sql AS $$"
      " INSERT INTO target.orders SELECT * FROM target.expected_orders WHERE id BETWEEN lo"
      " AND hi ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, total_cents ="
      " EXCLUDED.total_cents; SELECT 0::bigint $$;"
      "CREATE FUNCTION xf.orders_refresh(keys bigint[]) RETURNS void LANGUAGE sql AS $$"
      " DELETE FROM target.orders t WHERE t.id = ANY (keys) AND NOT EXISTS"
      " (SELECT 1 FROM legacy.orders s WHERE s.id = t.id);"
      " INSERT INTO target.orders SELECT * FROM target.expected_orders WHERE id = ANY (keys)"
      " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, total_cents ="
      " EXCLUDED.total_cents $$");
}

std::string orders_yaml(const std::string& mode) {
  return R"(version: 1
lists:
  - name: main
    jobs:
      - name: orders
        table: legacy.orders
        key: id
        function: xf.orders
        batch_size: 200
        target_batch_ms: 0
        changes: )" +
         mode + R"(
        refresh_function: xf.orders_refresh
)";
}

// A subscription in `subscriber` to the publication `pub` of `publisher`, on a slot created
// beforehand (on one server, CREATE SUBSCRIPTION may not create its own slot: it would wait
// for itself). Dropped, slot and all, when the test ends, whatever happened.
class Subscription {
 public:
  Subscription(TestDatabase& publisher, TestDatabase& subscriber)
      : m_publisher(publisher), m_subscriber(subscriber), m_name("sub_" + subscriber.name()) {
    publisher.exec("SELECT pg_create_logical_replication_slot('" + m_name + "', 'pgoutput')");
    pqxx::connection conn(subscriber.dsn());
    pqxx::nontransaction tx(conn);
    std::string source = "dbname=" + publisher.name();
    // The apply worker connects as a libpq client of its own: it needs what the test's
    // environment gives libpq, the password of a password-protected server (pg_virtualenv's)
    // too, written as a quoted conninfo value.
    for (const auto& [key, var] : {std::pair<std::string, const char*>{"host", "PGHOST"},
                                   {"port", "PGPORT"},
                                   {"user", "PGUSER"},
                                   {"password", "PGPASSWORD"}})
      if (const std::string value = env_or(var, ""); !value.empty())
        source += " " + key + "=" + conninfo_value(value);
    tx.exec("CREATE SUBSCRIPTION " + tx.quote_name(m_name) + " CONNECTION " + tx.quote(source) +
            " PUBLICATION pub WITH (create_slot = false, slot_name = " + tx.quote(m_name) + ")");
  }
  ~Subscription() {
    try {
      pqxx::connection conn(m_subscriber.dsn());
      pqxx::nontransaction tx(conn);
      tx.exec("ALTER SUBSCRIPTION " + tx.quote_name(m_name) + " DISABLE");
      tx.exec("ALTER SUBSCRIPTION " + tx.quote_name(m_name) + " SET (slot_name = NONE)");
      tx.exec("DROP SUBSCRIPTION " + tx.quote_name(m_name));
      // The walsender may take a moment to let the slot go.
      for (int i = 0; i < 100; ++i) {
        if (m_publisher.count("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" +
                              m_name + "' AND NOT active") == 1)
          break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      m_publisher.exec("SELECT pg_drop_replication_slot('" + m_name + "')");
    } catch (const std::exception& e) {
      WARN("could not drop the subscription " << m_name << ": " << e.what());
    }
  }

 private:
  TestDatabase& m_publisher;
  TestDatabase& m_subscriber;
  std::string m_name;
};

long long order_differences(TestDatabase& db) {
  return db.count(
      "SELECT (SELECT count(*) FROM (SELECT * FROM target.expected_orders EXCEPT ALL"
      " SELECT * FROM target.orders) a) + (SELECT count(*) FROM (SELECT * FROM target.orders"
      " EXCEPT ALL SELECT * FROM target.expected_orders) b)");
}

CliResult run_pgxform(TestDatabase& db, const std::string& path, std::vector<std::string> args) {
  return run_cli(with_db(db, path, std::move(args)));
}

}  // namespace

TEST_CASE("changes that arrive through logical replication are all in the target after catch-up",
          "[catch-up][replication]") {
  // Captured by the triggers (the replica one fires in the apply worker), and by a slot of the
  // subscriber's database, which decodes what the apply worker writes like any other change.
  const std::string mode = GENERATE(as<std::string>{}, "trigger", "logical");
  INFO("changes: " << mode);
  TestDatabase publisher;
  TestDatabase db;
  if (!prerequisite(db.scalar("SHOW wal_level") == "logical",
                    "this server runs with wal_level " + db.scalar("SHOW wal_level") +
                        ", logical replication needs logical"))
    return;
  create_orders(publisher, false);
  publisher.exec(
      "INSERT INTO legacy.orders SELECT g, 'new', g * 1.5"
      " FROM generate_series(1, 2000) g;"
      "CREATE PUBLICATION pub FOR TABLE legacy.orders");
  create_orders(db, true);
  Subscription subscription(publisher, db);
  // The bulk copy through replication, then the main pass while the publisher stays live.
  wait_until([&] { return db.count("SELECT count(*) FROM legacy.orders") == 2000; });
  TempDir dir;
  const auto path = dir.write("jobs.yaml", orders_yaml(mode));
  REQUIRE(run_pgxform(db, path, {"run"}).exit_code == 0);
  REQUIRE(order_differences(db) == 0);
  publisher.exec(
      "UPDATE legacy.orders SET status = 'paid' WHERE id % 3 = 0;"
      "DELETE FROM legacy.orders WHERE id % 10 = 0;"
      "INSERT INTO legacy.orders SELECT g, 'late', 1 FROM generate_series(2001, 2100) g;"
      "UPDATE legacy.orders SET total = total + 1 WHERE id BETWEEN 500 AND 520;"
      "UPDATE legacy.orders SET status = 'last' WHERE id = 1");
  // Applied in commit order: once the last change is here, all are.
  wait_until([&] { return db.scalar("SELECT status FROM legacy.orders WHERE id = 1") == "last"; });
  // The apply worker's changes were captured, and the target is behind (catch-up --until reads
  // the slot into the log and refreshes nothing).
  REQUIRE(run_pgxform(db, path, {"catch-up", "--until", "100000"}).exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.change_log") > 0);
  CHECK(order_differences(db) > 0);
  // Keys 2001..2100 are above the cursor: the next run reads them; catch-up refreshes the rest.
  REQUIRE(run_pgxform(db, path, {"run"}).exit_code == 0);
  const auto caught_up = run_pgxform(db, path, {"catch-up"});
  INFO(caught_up.err);
  REQUIRE(caught_up.exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.change_log") == 0);
  CHECK(order_differences(db) == 0);
}

TEST_CASE("pgbench's TPC-B writer beside run and catch-up --follow: the target matches the source",
          "[catch-up][pgbench]") {
  const std::string mode = GENERATE(as<std::string>{}, "trigger", "logical");
  INFO("changes: " << mode);
  TestDatabase db;
  TempDir dir;
  const std::string log = dir.path() + "/pgbench.log";
  REQUIRE(std::system(("pgbench -i -s 1 -q " + db.name() + " > " + log + " 2>&1").c_str()) == 0);
  db.exec(
      "CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE target.accounts (aid int PRIMARY KEY, bid int, balance bigint);"
      "CREATE VIEW target.expected AS SELECT aid, bid, abalance::bigint AS balance"
      " FROM public.pgbench_accounts;"
      // A little slower than a plain copy, so that pgbench writes during the main pass.
      "CREATE FUNCTION xf.accounts(lo int, hi int) RETURNS bigint LANGUAGE sql AS $$"
      " SELECT pg_sleep(0.05); INSERT INTO target.accounts SELECT * FROM target.expected"
      " WHERE aid BETWEEN lo AND hi ON CONFLICT (aid) DO UPDATE SET bid = EXCLUDED.bid,"
      " balance = EXCLUDED.balance; SELECT 0::bigint $$;"
      "CREATE FUNCTION xf.accounts_refresh(keys int[]) RETURNS void LANGUAGE sql AS $$"
      " DELETE FROM target.accounts t WHERE t.aid = ANY (keys) AND NOT EXISTS"
      " (SELECT 1 FROM public.pgbench_accounts s WHERE s.aid = t.aid);"
      " INSERT INTO target.accounts SELECT * FROM target.expected WHERE aid = ANY (keys)"
      " ON CONFLICT (aid) DO UPDATE SET bid = EXCLUDED.bid, balance = EXCLUDED.balance $$");
  const auto path = dir.write("jobs.yaml", R"(version: 1
lists:
  - name: bank
    jobs:
      - name: accounts
        table: public.pgbench_accounts
        key: aid
        function: xf.accounts
        batch_size: 5000
        target_batch_ms: 0
        changes: )" + mode + R"(
        refresh_function: xf.accounts_refresh
)");
  REQUIRE(run_pgxform(db, path, {"capture"}).exit_code == 0);
  std::atomic<int> pgbench_exit{-1};
  std::thread writer([&] {
    pgbench_exit =
        std::system(("pgbench -c 2 -T 4 -n " + db.name() + " >> " + log + " 2>&1").c_str());
  });
  Child follow(with_db(db, path, {"catch-up", "--follow"}), dir.path());
  const auto run = run_pgxform(db, path, {"run"});
  writer.join();
  follow.kill(SIGTERM);
  INFO(follow.err());
  CHECK(follow.wait() == 0);
  REQUIRE(pgbench_exit == 0);
  REQUIRE(run.exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM pgbench_history") > 0);
  // Writes stopped: the final catch-up, then the target is the source's transform exactly.
  REQUIRE(run_pgxform(db, path, {"catch-up"}).exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.change_log") == 0);
  CHECK(db.count("SELECT (SELECT count(*) FROM (SELECT * FROM target.expected EXCEPT ALL"
                 " SELECT * FROM target.accounts) a) + (SELECT count(*) FROM (SELECT * FROM"
                 " target.accounts EXCEPT ALL SELECT * FROM target.expected) b)") == 0);
  CHECK(db.count("SELECT count(*) FROM target.accounts") == 100000);
}
