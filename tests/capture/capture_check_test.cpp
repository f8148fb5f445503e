// capture_check: what `changes: logical` needs from the server and the role, as one problem each
// naming its fix — computed from the facts without a database (change_capture_db_test.cpp and
// logical_capture_db_test.cpp run the checks against a real server).
#include "capture/capture_check.h"

#include <catch2/catch.hpp>

using Catch::Matchers::Contains;
using pgxform::ServerFacts;

namespace {

ServerFacts good() {
  ServerFacts facts;
  facts.version_num = 150004;
  facts.wal_level = "logical";
  facts.replication = true;
  facts.role = "migrator";
  facts.slots_used = 2;
  facts.max_slots = 10;
  facts.can_create = true;
  facts.database = "shop";
  return facts;
}

const std::string k_where = "jobs.yaml:7: job 'items'";

}  // namespace

TEST_CASE("a server and role fit for changes: logical have no problem") {
  CHECK(pgxform::logical_server_problems(good(), k_where).empty());
}

TEST_CASE("wal_level replica is refused with the ALTER SYSTEM line and the restart") {
  ServerFacts facts = good();
  facts.wal_level = "replica";
  const auto problems = pgxform::logical_server_problems(facts, k_where);
  REQUIRE(problems.size() == 1);
  CHECK_THAT(problems[0], Contains("jobs.yaml:7: job 'items': changes: logical needs wal_level = "
                                   "logical, and the server runs with replica: ALTER SYSTEM SET "
                                   "wal_level = logical; then restart PostgreSQL"));
}

TEST_CASE("a role without REPLICATION, a full slot table and no CREATE are each named with a fix") {
  ServerFacts facts = good();
  facts.replication = false;
  facts.slots_used = 10;
  facts.can_create = false;
  const auto problems = pgxform::logical_server_problems(facts, k_where);
  REQUIRE(problems.size() == 3);
  CHECK_THAT(problems[0], Contains("ALTER ROLE migrator REPLICATION"));
  CHECK_THAT(problems[1], Contains("all 10 the server allows are in use (max_replication_slots)") &&
                              Contains("ALTER SYSTEM SET max_replication_slots = 11"));
  CHECK_THAT(problems[2], Contains("GRANT CREATE ON DATABASE shop TO migrator"));
  // The schema's own slot and publication need no free place and no CREATE.
  facts.slot_exists = true;
  facts.publication_exists = true;
  CHECK(pgxform::logical_server_problems(facts, k_where).size() == 1);
}

TEST_CASE("a server older than PostgreSQL 14 is refused for changes: logical") {
  ServerFacts facts = good();
  facts.version_num = 130011;
  const auto problems = pgxform::logical_server_problems(facts, k_where);
  REQUIRE(problems.size() == 1);
  CHECK_THAT(problems[0],
             Contains("needs PostgreSQL 14 or later") && Contains("use changes: trigger"));
}
