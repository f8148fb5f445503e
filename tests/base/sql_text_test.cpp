// The one way SQL text is written (sql_text.h), without a server: quote_ident always quotes,
// and fill_sql fills a statement written out whole.
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

TEST_CASE("fill_sql replaces each placeholder, and never reads again what it inserted") {
  using pgxform::fill_sql;
  CHECK(fill_sql("SELECT @a@ FROM @t@ WHERE @a@ > 0", {{"@a@", "x"}, {"@t@", "\"s\".\"t\""}}) ==
        "SELECT x FROM \"s\".\"t\" WHERE x > 0");
  // A name that holds a placeholder's spelling stays as it is.
  CHECK(fill_sql("SELECT * FROM @t@ WHERE @k@ IS NULL",
                 {{"@t@", "\"odd@k@name\""}, {"@k@", "\"id\""}}) ==
        "SELECT * FROM \"odd@k@name\" WHERE \"id\" IS NULL");
  // '@' that makes no placeholder (jsonb's operators, an address) is SQL text.
  CHECK(fill_sql("SELECT j @> '{}' AND 'a@b.c' <> '' FROM @t@", {{"@t@", "t"}}) ==
        "SELECT j @> '{}' AND 'a@b.c' <> '' FROM t");
}

TEST_CASE("fill_sql refuses a placeholder without its part, and a part without its placeholder") {
  using pgxform::fill_sql;
  CHECK_THROWS_WITH(fill_sql("SELECT @a@, @b@", {{"@a@", "1"}}),
                    Catch::Contains("no part for @b@"));
  CHECK_THROWS_WITH(fill_sql("SELECT @a@", {{"@a@", "1"}, {"@c@", "2"}}),
                    Catch::Contains("no @c@"));
}
