// The health throttle (health_throttle.h) against a real PostgreSQL and a real runner: a
// transaction open past max_xact_age_s, and more active sessions than max_active_sessions,
// make the run wait between batches until they end.
#include <catch2/catch.hpp>
#include <chrono>
#include <pqxx/pqxx>
#include <thread>

#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

TEST_CASE("a transaction held open past max_xact_age_s makes the run wait until it ends",
          "[threads]") {
  TestDatabase db;
  create_items(db, 300, 0);
  TempDir dir;
  const auto path =
      dir.write("jobs.yaml", "version: 1\ndefaults: {throttle: {max_xact_age_s: 1}}\n" +
                                 items_jobs_yaml(100).substr(std::string("version: 1\n").size()));
  // An application's transaction, left open: it holds back vacuum on the migration's tables.
  pqxx::connection app(db.dsn());
  pqxx::work open(app);
  open.exec("SELECT txid_current()");
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));

  Child child({"run", "-f", path, "--dsn", db.dsn()}, dir.path());
  wait_until(
      [&] { return child.err().find("items: throttled: max_xact_age_s") != std::string::npos; });
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == 0);
  const auto waiting =
      job_in(parse_json(run_with_db(db, path, {"status", "--json"}).out), "items")["waiting"];
  CHECK_THAT(waiting.get<std::string>(), Catch::StartsWith("throttled: max_xact_age_s "));
  open.abort();
  CHECK(child.wait() == 0);
  INFO(child.err());
  CHECK_THAT(child.err(), Catch::Contains("items: no longer throttled"));
  CHECK(missing_items(db) == 0);
  CHECK(job_in(parse_json(run_with_db(db, path, {"status", "--json"}).out), "items")["waiting"]
            .is_null());
}

TEST_CASE("more active sessions than max_active_sessions make the run wait until they end",
          "[threads]") {
  TestDatabase db;
  create_items(db, 300, 0);
  TempDir dir;
  const auto path = dir.write(
      "jobs.yaml", items_jobs_yaml(100, 1, "        throttle: {max_active_sessions: 1}\n"));
  // Two application sessions busy with a statement, until they are cancelled.
  BusySessions busy(db, 2);
  Child child({"run", "-f", path, "--dsn", db.dsn()}, dir.path());
  wait_until([&] {
    return child.err().find("items: throttled: max_active_sessions") != std::string::npos;
  });
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == 0);
  busy.end();
  CHECK(child.wait() == 0);
  INFO(child.err());
  CHECK(missing_items(db) == 0);
}
