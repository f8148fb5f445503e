// connection_budget: the connections the server would still accept from a session's role into
// its database, against a real PostgreSQL.
#include <catch2/catch.hpp>
#include <memory>
#include <pqxx/pqxx>
#include <vector>

#include "database/connection_budget.h"
#include "database/database.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

int free_for(pqxx::connection& conn) {
  pqxx::read_transaction tx(conn);
  return pgxform::free_connections(tx);
}

}  // namespace

TEST_CASE("a role's connections free are its CONNECTION LIMIT less its sessions") {
  TestDatabase db;
  const TestRole role(db, "budget", "CONNECTION LIMIT 7");
  auto first = pgxform::connect(role.dsn());
  CHECK(free_for(*first) == 6);
  std::vector<std::unique_ptr<pqxx::connection>> more;
  for (int i = 0; i < 3; ++i) more.push_back(pgxform::connect(role.dsn()));
  CHECK(free_for(*first) == 3);
  more.clear();
  // The server forgets a closed session a moment later.
  wait_until([&] { return free_for(*first) == 6; });
}

TEST_CASE(
    "a database's CONNECTION LIMIT counts its sessions, also those of roles this one may not "
    "inspect") {
  TestDatabase db;
  const TestRole role(db, "dbbudget", "");
  db.exec("ALTER DATABASE " + db.name() + " CONNECTION LIMIT 5");
  auto conn = pgxform::connect(role.dsn());
  // This session alone, once the test's own closed sessions are gone: 4 more.
  wait_until([&] { return free_for(*conn) == 4; });
  auto other = pgxform::connect(db.dsn());
  CHECK(free_for(*conn) == 3);
}

TEST_CASE("without limits of role or database, what max_connections leaves beyond the reserved") {
  TestDatabase db;
  auto conn = pgxform::connect(db.dsn());
  pqxx::read_transaction tx(*conn);
  const int by_hand = tx.exec1(
                            "SELECT current_setting('max_connections')::int"
                            " - current_setting('superuser_reserved_connections')::int"
                            " - (SELECT count(*) FROM pg_stat_activity"
                            "    WHERE backend_type = 'client backend')")[0]
                          .as<int>();
  const int free = pgxform::free_connections(tx);
  // Other tests open and close sessions meanwhile: the same figure, give or take.
  CHECK(free >= 0);
  CHECK(std::abs(free - by_hand) <= 20);
  CHECK(free < tx.exec1("SHOW max_connections")[0].as<int>());
}
