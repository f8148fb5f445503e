// The statement that sets a range aside (failed_ranges.h), without a database: the cursor's
// move past the range and the range's record, in one statement, whole.
#include "state/failed_ranges.h"

#include <catch2/catch.hpp>
#include <regex>
#include <string>

#include "state/schema_name.h"
#include "state/task_cursor.h"

namespace {

// `sql` on one line: every run of blanks as one space, none after '(' or before ')'.
std::string one_line(const std::string& sql) {
  std::string out = std::regex_replace(sql, std::regex(R"(\s+)"), " ");
  out = std::regex_replace(out, std::regex(R"(\( )"), "(");
  out = std::regex_replace(out, std::regex(R"( \))"), ")");
  return out.substr(out.find_first_not_of(' '), out.find_last_not_of(' ') + 1);
}

}  // namespace

TEST_CASE("setting a range aside moves the cursor and records the range in one statement") {
  const pgxform::StateSchema schema("pgxform");
  const std::string skip = one_line(pgxform::cursor_skip_sql(schema, pgxform::Slicing::slice));
  CHECK(one_line(pgxform::set_aside_sql(schema, pgxform::Slicing::slice)) ==
        "WITH c AS (" + skip +
            "), f AS (INSERT INTO \"pgxform\".failed_batches (job, slice, first_key, last_key,"
            " sqlstate, error) SELECT $3, $4, $2::text, $5, $6::text, $7::text FROM c RETURNING 1)"
            " SELECT (SELECT pg_catalog.count(*) FROM c) AS moved,"
            " (SELECT pg_catalog.count(*) FROM f) AS recorded");
  CHECK(skip.rfind("UPDATE \"pgxform\".job_slice c SET last_key = $5::text", 0) == 0);
}
