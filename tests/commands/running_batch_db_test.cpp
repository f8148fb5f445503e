// explain --running against a real PostgreSQL: a run's batch held on an advisory lock is found
// on the server, its wait and its blocker named, its keys read from the cursor, and each
// statement of its PL/pgSQL function planned with the keys bound; nothing in flight: exit 1.
#include <catch2/catch.hpp>
#include <pqxx/pqxx>
#include <string>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

// xf.items as create_items writes it, but waiting first, above key 1500, for advisory lock 4242,
// which the test holds: its batch stays in flight, without a sleep.
void waiting_items(TestDatabase& db) {
  create_items(db, 3000);
  db.exec(
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE plpgsql AS $$ DECLARE n bigint; BEGIN"
      "  PERFORM pg_advisory_xact_lock(4242) WHERE first_key > 1500;"
      "  INSERT INTO target.items SELECT id, v * 10 FROM legacy.items"
      "   WHERE id BETWEEN first_key AND last_key;"
      "  GET DIAGNOSTICS n = ROW_COUNT; RETURN n; END $$;");
}

}  // namespace

TEST_CASE("explain --running plans the statements of the batch in flight for its keys, bound",
          "[running_batch]") {
  TestDatabase db;
  waiting_items(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(500));
  pqxx::connection holder(db.dsn());
  pqxx::work hold(holder);
  const int holder_pid = hold.exec1("SELECT pg_backend_pid()")[0].as<int>();
  hold.exec("SELECT pg_advisory_xact_lock(4242)");
  // The first batch commits; the second waits for the lock.
  Child run(with_db(db, path, {"run"}), dir.path());
  wait_until([&] {
    return db.count(
               "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
               " AND application_name LIKE 'pgxform %' AND wait_event = 'advisory'") == 1;
  });
  const auto r = run_with_db(db, path, {"explain", "items", "--running"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("explain items --running: the batch in flight for"));
  CHECK_THAT(r.out, Catch::Contains("waiting on Lock:advisory, blocked by backend " +
                                    std::to_string(holder_pid)));
  // After the cursor (key 1500), 500 keys: 1503 to 3000.
  CHECK_THAT(r.out, Catch::Contains("keys [1503, 3000]"));
  CHECK_THAT(r.out, Catch::Contains("SELECT pg_advisory_xact_lock(4242) WHERE $1::bigint > 1500"));
  // The arguments are parameters, bound: the text holds no key.
  CHECK_THAT(r.out, Catch::Contains("WHERE id BETWEEN $1::bigint AND $2::bigint"));
  CHECK_THAT(r.out, Catch::Contains("Insert on items"));
  CHECK_THAT(r.out, Catch::Contains("1503") && Catch::Contains("Index Cond"));
  hold.abort();
  CHECK(run.wait() == 0);
  CHECK(db.count("SELECT count(*) FROM target.items") == 3000);
}

TEST_CASE("explain --running with no batch in flight says so and exits 1", "[running_batch]") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50));
  const auto before = run_with_db(db, path, {"explain", "items", "--running"});
  CHECK(before.exit_code == 1);
  CHECK_THAT(before.out, Catch::Contains("explain items --running: no batch of items is in flight"
                                         " now; nothing to explain"));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  const auto after = run_with_db(db, path, {"explain", "items", "--running"});
  CHECK(after.exit_code == 1);
  CHECK(db.count("SELECT count(*) FROM target.items") == 100);
}
