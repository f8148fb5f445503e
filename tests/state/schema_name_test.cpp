// The state schema's name (schema_name.h), without a database: as written, quoted for SQL
// text, and its tables qualified with it.
#include "state/schema_name.h"

#include <catch2/catch.hpp>

TEST_CASE("the state schema's name is always quoted, and its tables are qualified with it") {
  const pgxform::StateSchema plain("pgxform");
  CHECK(plain.name == "pgxform");
  CHECK(plain.sql == "\"pgxform\"");
  CHECK(plain.table("job_state") == "\"pgxform\".job_state");
  const pgxform::StateSchema odd("Mig \"2\"");
  CHECK(odd.name == "Mig \"2\"");
  CHECK(odd.sql == "\"Mig \"\"2\"\"\"");
}
