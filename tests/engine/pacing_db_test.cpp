// Pacing (pacing.h) against a real PostgreSQL and a real runner process: every wait between two
// batches reads the control table again within a second, so that a long pause_ms ends as soon
// as it is set to 0 and a pause set during it holds the job; status says that a task sleeps its
// pause_ms.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

TEST_CASE("a long pause_ms sleep ends within seconds of set pause_ms=0, and status says why",
          "[regression]") {
  // Issue 22, item 3: a task slept its whole pause_ms, whatever was set meanwhile.
  TestDatabase db;
  create_items(db, 400, 0);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run_with_db(db, path, {"set", "items", "pause_ms=300000"}).exit_code == 0);
  Child child({"run", "-f", path, "--dsn", db.dsn()}, dir.path());
  // The first batch, then the sleep of five minutes.
  wait_until([&] { return db.count("SELECT count(*) FROM pgxform.batch_log") == 1; });
  wait_until([&] {
    const auto status = parse_json(run_with_db(db, path, {"status", "--json"}).out);
    return job_in(status, "items")["waiting"] == "pause_ms 300000";
  });
  CHECK_THAT(run_with_db(db, path, {"status"}).out, Catch::Contains("pause_ms 300000"));
  REQUIRE(run_with_db(db, path, {"set", "items", "pause_ms=0"}).exit_code == 0);
  // Read again within a second: the run goes on at once and finishes its three other batches.
  int code = -1;
  CHECK(child.wait_for(20000, code));
  CHECK(code == 0);
  INFO(child.err());
  CHECK(missing_items(db) == 0);
  CHECK(job_in(parse_json(run_with_db(db, path, {"status", "--json"}).out), "items")["waiting"]
            .is_null());
}

TEST_CASE("a pause set during a long pause_ms sleep holds the job until resume") {
  TestDatabase db;
  create_items(db, 400, 0);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run_with_db(db, path, {"set", "items", "pause_ms=300000"}).exit_code == 0);
  Child child({"run", "-f", path, "--dsn", db.dsn()}, dir.path());
  wait_until([&] { return db.count("SELECT count(*) FROM pgxform.batch_log") == 1; });
  REQUIRE(run_with_db(db, path, {"pause", "items"}).exit_code == 0);
  REQUIRE(run_with_db(db, path, {"set", "items", "pause_ms=0"}).exit_code == 0);
  wait_until([&] { return child.err().find("items: paused (job items)") != std::string::npos; });
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == 1);
  REQUIRE(run_with_db(db, path, {"resume", "items"}).exit_code == 0);
  int code = -1;
  CHECK(child.wait_for(20000, code));
  CHECK(code == 0);
  CHECK(missing_items(db) == 0);
}
