// explain's pure parts: a statement rewritten with the batch's bounds for planning on its own,
// and the report's text (no database).
#include "explain_command.h"

#include <catch2/catch.hpp>
#include <sstream>

using pgxform::ExplainReport;

TEST_CASE("a function's statement is planned alone with its arguments replaced by the bounds") {
  const std::vector<std::string> names{"first_key", "last_key"};
  CHECK(pgxform::with_bounds(
            "SELECT * FROM t WHERE t.id BETWEEN first_key AND Last_Key AND t.first_key_x = 1",
            names, "'3'::bigint", "'9'::bigint") ==
        "SELECT * FROM t WHERE t.id BETWEEN '3'::bigint AND '9'::bigint AND t.first_key_x = 1");
  // Positional arguments; names inside quotes and qualified columns stay.
  CHECK(pgxform::with_bounds("SELECT $1, '$1 first_key', \"first_key\", x.first_key, $2", names,
                             "1",
                             "2") == "SELECT 1, '$1 first_key', \"first_key\", x.first_key, 2");
}

TEST_CASE("explain's report says why a batch failed, and when nothing inside was explained") {
  ExplainReport report;
  auto& b = report.batch;
  b.job = "items";
  b.table_sql = R"("legacy"."items")";
  b.function_sql = R"("xf"."items")";
  b.described = "the job's first batch";
  b.lo = "3";
  b.hi = "300";
  b.rows = 100;
  b.error = "(SQLSTATE 22012): ERROR:  division by zero\n";
  std::ostringstream failed;
  pgxform::print_explained(failed, report);
  CHECK(failed.str() ==
        "explain items: the job's first batch\n"
        "  keys [3, 300], 100 rows of \"legacy\".\"items\", in a transaction that is rolled back\n"
        "the function failed (SQLSTATE 22012): ERROR:  division by zero\n"
        "nothing was written: the transaction was rolled back.\n");

  b.error.reset();
  b.took_ms = 12.34;
  std::ostringstream empty;
  pgxform::print_explained(empty, report);
  INFO(empty.str());
  CHECK(empty.str().find("  \"xf\".\"items\" ran in 12.3 ms\n") != std::string::npos);
  CHECK(empty.str().find("no statement inside the function was explained") != std::string::npos);
  CHECK(empty.str().find("findings:\n  none: no statement reads much more") != std::string::npos);
}
