// The one way SQL text is written (sql_text.h), without a server: quote_ident always quotes.
#include "base/sql_text.h"

#include <catch2/catch.hpp>
#include <string>

using pgxform::quote_ident;

TEST_CASE("quote_ident always quotes, keeping case and doubling inner double quotes") {
  CHECK(quote_ident("orders") == R"("orders")");
  CHECK(quote_ident("OrderLines") == R"("OrderLines")");
  CHECK(quote_ident("My Schema") == R"("My Schema")");
  CHECK(quote_ident(R"(a"b)") == R"("a""b")");
  CHECK(quote_ident(R"(")") == R"("""")");
  CHECK(quote_ident("") == R"("")");
}
