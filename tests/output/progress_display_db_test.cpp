// run's progress lines on a pipe (progress_display.h) against a real PostgreSQL and a real
// runner process: one line per running job every interval, none before the first interval is
// up, and no terminal escape. (The live block on a terminal: tests/cli/live_display_test.sh.)
#include <catch2/catch.hpp>
#include <cstdlib>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

TEST_CASE("on a pipe, run prints one progress line per running job every interval",
          "[live][threads]") {
  TestDatabase db;
  create_items(db, 2000, 50);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  Child child({"run", "-f", path, "--dsn", db.dsn()}, dir.path(), progress_every(200));
  REQUIRE(child.wait() == 0);
  const std::string err = child.err();
  INFO(err);
  // 20 batches of at least 50 ms: at least a second of work, five intervals or more.
  CHECK(lines_with(err, {" batches this run, last key "}) >= 3);
  CHECK(lines_with(err, {" %, ETA "}) >= 1);
  CHECK(err.find('\x1b') == std::string::npos);  // no terminal escape on a pipe
  CHECK_THAT(err, Catch::Contains("items: done, 2000 rows in 20 batches this run"));
}

TEST_CASE("on a pipe, a short run prints no progress line before its 10 s are up",
          "[live][threads]") {
  TestDatabase db;
  create_items(db, 300, 0);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  Child child({"run", "-f", path, "--dsn", db.dsn()}, dir.path(),
              [] { unsetenv("PGXFORM_PROGRESS_INTERVAL_MS"); });
  REQUIRE(child.wait() == 0);
  INFO(child.err());
  CHECK(lines_with(child.err(), {" batches this run, last key "}) == 0);
  CHECK(lines_with(child.err(), {"items: done, 300 rows in 3 batches this run"}) == 1);
}
