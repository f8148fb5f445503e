// The health throttle (health_throttle.h) against a real PostgreSQL and a real runner: a
// transaction open past max_xact_age_s, and more active sessions than max_active_sessions,
// make the run wait between batches until they end.
// The throttle (health_throttle.h) as a role of docs/security.md sees the database: a limit
// whose signal the role cannot see is refused by validate and run, naming the grant, and
// throttles once granted; a signal whose query fails while the run goes on fails the job,
// naming the throttle, the signal and the grant. Against a real PostgreSQL and runner.
#include <catch2/catch.hpp>
#include <chrono>
#include <pqxx/pqxx>
#include <thread>

#include "engine/health_throttle.h"
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

namespace {

CliResult as_role(const TestRole& role, const std::string& path, const std::string& command) {
  return run_cli({command, "-f", path, "--dsn", role.dsn()});
}

}  // namespace

TEST_CASE("a throttle limit whose signal is unreadable fails its job, and no other") {
  pgxform::HealthSignals s;
  s.unreadable["max_wal_mb_per_s"] = {"42501", "ERROR:  permission denied for function"};
  pgxform::ThrottleLimits limits;
  limits.max_active_sessions = 5;
  CHECK_FALSE(pgxform::throttle_reason(s, limits));
  limits.max_wal_mb_per_s = 100;
  try {
    pgxform::throttle_reason(s, limits);
    FAIL("no error");
  } catch (const pgxform::ThrottleSignalError& e) {
    CHECK(e.sqlstate() == "42501");
    CHECK_THAT(e.what(), Catch::StartsWith("throttle max_wal_mb_per_s: its signal could not be "
                                           "read (SQLSTATE 42501): ERROR:  permission denied") &&
                             Catch::Contains("EXECUTE on pg_catalog.pg_current_wal_lsn()"));
  }
}

TEST_CASE(
    "validate and run refuse a throttle that the role cannot see through, naming the grant, and "
    "with pg_monitor the same run is throttled") {
  TestDatabase db;
  create_items(db, 300, 0);
  TestRole migrator(db, "migrator");
  grant_items(db, migrator);
  TempDir dir;
  const auto path =
      dir.write("jobs.yaml", items_jobs_yaml(100, 1,
                                             "        throttle: {max_active_sessions: 1,"
                                             " max_xact_age_s: 600}\n"));
  const auto validate = as_role(migrator, path, "validate");
  INFO(validate.out << validate.err);
  CHECK(validate.exit_code == 2);
  for (const char* signal : {"max_active_sessions", "max_xact_age_s"})
    CHECK_THAT(validate.err, Catch::Contains(std::string("jobs.yaml:5: throttle ") + signal +
                                             " of job 'items': role " + migrator.name() +
                                             " cannot see what it measures"));
  CHECK_THAT(validate.err, Catch::Contains("GRANT pg_monitor, or pg_read_all_stats, TO the role"));
  const auto run = as_role(migrator, path, "run");
  INFO(run.err);
  CHECK(run.exit_code == 2);
  CHECK_THAT(run.err, Catch::Contains("throttle max_active_sessions of job 'items'") &&
                          Catch::Contains("no job was started"));
  CHECK(db.scalar("SELECT to_regclass('pgxform.job_state') IS NULL") == "t");

  // Granted what it needs, the role sees the other role's busy sessions and waits for them.
  db.exec("GRANT pg_monitor TO " + migrator.name());
  CHECK(as_role(migrator, path, "validate").exit_code == 0);
  BusySessions busy(db, 2);
  Child child({"run", "-f", path, "--dsn", migrator.dsn()}, dir.path());
  wait_until([&] {
    return child.err().find("items: throttled: max_active_sessions") != std::string::npos;
  });
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == 0);
  busy.end();
  CHECK(child.wait() == 0);
  INFO(child.err());
  CHECK(missing_items(db) == 0);
}

TEST_CASE(
    "a throttle signal whose query fails while the run goes on fails the job, naming the "
    "throttle, its signal and the grant") {
  TestDatabase db;
  create_items(db, 1000, 100);
  TestRole migrator(db, "migrator");
  grant_items(db, migrator);
  TempDir dir;
  const auto path = dir.write(
      "jobs.yaml", items_jobs_yaml(20, 1, "        throttle: {max_wal_mb_per_s: 100000}\n"));
  REQUIRE(as_role(migrator, path, "validate").exit_code == 0);
  Child child({"run", "-f", path, "--dsn", migrator.dsn()}, dir.path());
  wait_until([&] {
    return db.count("SELECT coalesce(max(batches_done), 0) FROM pgxform.job_state") >= 1;
  });
  // A DBA takes back what the signal needs while the job runs.
  db.exec("REVOKE EXECUTE ON FUNCTION pg_catalog.pg_current_wal_lsn() FROM PUBLIC");
  const int code = child.wait();
  INFO(child.err());
  CHECK(code == 1);
  CHECK(db.count("SELECT count(*) FROM legacy.items") >
        db.count("SELECT count(*) FROM target.items"));
  CHECK_THAT(child.err(), Catch::Contains("throttle max_wal_mb_per_s: its signal could not be "
                                          "read (SQLSTATE 42501)") &&
                              Catch::Contains("GRANT EXECUTE ON FUNCTION "
                                              "pg_catalog.pg_current_wal_lsn() TO the role"));
  CHECK(db.scalar("SELECT sqlstate FROM pgxform.job_state WHERE job = 'items'") == "42501");
  CHECK_THAT(db.scalar("SELECT error FROM pgxform.job_state WHERE job = 'items'"),
             Catch::StartsWith("throttle max_wal_mb_per_s"));
}
