// explain --running's pure part: the statements of a function body that can be planned alone.
// Against a real PostgreSQL: running_batch_db_test.cpp.
#include "commands/running_batch.h"

#include <catch2/catch.hpp>

using pgxform::function_statements;

TEST_CASE("a SQL function's statements are all planned, each without its semicolon",
          "[running_batch]") {
  const auto s = function_statements("sql",
                                     " INSERT INTO t SELECT * FROM s WHERE id BETWEEN lo AND hi;\n"
                                     " SELECT count(*) FROM s WHERE id BETWEEN lo AND hi ");
  REQUIRE(s.size() == 2);
  CHECK(s[0] == "INSERT INTO t SELECT * FROM s WHERE id BETWEEN lo AND hi");
  CHECK(s[1] == "SELECT count(*) FROM s WHERE id BETWEEN lo AND hi");
}

TEST_CASE("a PL/pgSQL function's SQL statements are planned, PERFORM as SELECT, the rest left out",
          "[running_batch]") {
  const auto s = function_statements("plpgsql",
                                     " DECLARE n bigint; BEGIN  PERFORM pg_sleep(0.1);"
                                     "  INSERT INTO t SELECT id FROM s WHERE id BETWEEN lo AND hi;"
                                     "  GET DIAGNOSTICS n = ROW_COUNT;"
                                     "  with x AS (SELECT 1) SELECT * FROM x;"
                                     "  RETURN n; END ");
  REQUIRE(s.size() == 3);
  CHECK(s[0] == "SELECT pg_sleep(0.1)");
  CHECK(s[1] == "INSERT INTO t SELECT id FROM s WHERE id BETWEEN lo AND hi");
  CHECK(s[2] == "with x AS (SELECT 1) SELECT * FROM x");
}

TEST_CASE("a function in another language has no statement to plan", "[running_batch]") {
  CHECK(function_statements("c", "pgxform_items").empty());
}
