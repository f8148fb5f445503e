// The log statement (batch_log.h), without a database: the counters it binds are those of
// k_counter_fields, in their order, after the job ($1).
#include "state/batch_log.h"

#include <catch2/catch.hpp>
#include <iterator>
#include <string>

#include "analysis/block_counters.h"
#include "state/schema_name.h"

TEST_CASE("the log statement writes the plan's counters as $2 to $9, in the order of the fields") {
  const std::string sql = pgxform::log_sql(pgxform::StateSchema("pgxform"));
  CHECK(sql.find("INSERT INTO \"pgxform\".batch_log") != std::string::npos);
  CHECK(sql.find("@") == std::string::npos);
  std::size_t at = sql.find("fn_version,");
  REQUIRE(at != std::string::npos);
  for (const auto& field : pgxform::k_counter_fields) {
    const std::size_t next = sql.find(field.column, at);
    INFO(field.column);
    REQUIRE(next != std::string::npos);
    at = next;
  }
  const std::string values =
      "$2::bigint, $3::bigint, $4::bigint, $5::bigint, $6::bigint, $7::bigint, $8::bigint,";
  CHECK(sql.find(values) != std::string::npos);
  CHECK(std::size(pgxform::k_counter_fields) == 8);
}
