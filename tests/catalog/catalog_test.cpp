// The parts of catalog.h that need no server: a job's table name quoted as SQL text.
#include "catalog/catalog.h"

#include <catch2/catch.hpp>
#include <string>

using pgxform::QualifiedName;
using pgxform::quote_qualified;

TEST_CASE("quote_qualified quotes schema and name, or the name alone without a schema") {
  CHECK(quote_qualified(QualifiedName{"legacy", "orders"}) == R"("legacy"."orders")");
  CHECK(quote_qualified(QualifiedName{"My Schema", R"(F"n)"}) == R"("My Schema"."F""n")");
  CHECK(quote_qualified(QualifiedName{"", "orders"}) == R"("orders")");
}
