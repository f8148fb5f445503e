// status --watch against a real PostgreSQL that goes away while it is watched (tagged
// [restart]: it stops the server every other test uses, so ctest runs it alone, and only on a
// throwaway server).
#include <catch2/catch.hpp>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

TEST_CASE("a server stopped while status --watch watches ends it with exit 1, not as bad input",
          "[restart]") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10));
  Child watch(with_db(db, path, {"status", "--watch", "0.2"}), dir.path());
  // Once it drew a frame: the command has connected, the server was there.
  wait_until([&] { return lines_with(watch.out(), {"every 0.2 s, at "}) >= 2; });
  TestServer server(db);
  server.stop();
  int code = -1;
  const bool exited = watch.wait_for(30000, code);
  server.start();
  REQUIRE(exited);
  INFO(watch.err());
  CHECK(code == 1);
  CHECK_THAT(watch.err(), !Catch::Contains("cannot connect to PostgreSQL"));
}
