// The history of applied scripts (script_history.h), against a real PostgreSQL: nothing to read
// before the state schema exists, a V script's row written once, an R script's row replaced
// when it is applied again, and a checksum accepted by repair.
#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "state/schema_name.h"
#include "state/script_history.h"
#include "state/state_schema.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

pgxform::AppliedScript applied(const std::string& script, char type, const std::string& version,
                               const std::string& checksum) {
  pgxform::AppliedScript s;
  s.script = script;
  s.type = type;
  s.version = version;
  s.description = "test";
  s.checksum = checksum;
  s.duration_ms = 12.5;
  return s;
}

}  // namespace

TEST_CASE("applied scripts are recorded once each, an R script's row replaced when reapplied") {
  TestDatabase db;
  const pgxform::StateSchema schema("pgxform");
  pqxx::connection conn(db.dsn());
  {
    pqxx::read_transaction tx(conn);
    CHECK(pgxform::read_script_history(tx, schema).empty());  // no state schema: nothing
  }
  pgxform::ensure_state_schema(conn, schema);
  {
    pqxx::work tx(conn);
    pgxform::record_script(tx, schema, applied("V1__one.sql", 'V', "1", "aaa"));
    pgxform::record_script(tx, schema, applied("R__views.sql", 'R', "", "bbb"));
    tx.commit();
  }
  {
    pqxx::work tx(conn);
    pgxform::record_script(tx, schema, applied("R__views.sql", 'R', "", "ccc"));
    pgxform::update_script_checksum(tx, schema, "V1__one.sql", "ddd");
    tx.commit();
  }
  pqxx::read_transaction tx(conn);
  const auto rows = pgxform::read_script_history(tx, schema);
  REQUIRE(rows.size() == 2);
  for (const auto& row : rows) {
    INFO(row.script);
    CHECK_FALSE(row.applied_at.empty());
    CHECK(row.checksum == (row.script == "V1__one.sql" ? "ddd" : "ccc"));
    CHECK(row.type == (row.script == "V1__one.sql" ? 'V' : 'R'));
  }
}
