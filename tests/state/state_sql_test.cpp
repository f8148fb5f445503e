// The state schema's SQL compiled into the binary (state_sql.h, from state/*.sql by
// cmake/embed_sql.cmake), without a database: one file per version, from 1, in order.
#include "state/state_sql.h"

#include <catch2/catch.hpp>
#include <string>

#include "state/state_schema.h"

TEST_CASE("every state file is compiled in, one per version from 1 on, in order") {
  const auto& files = pgxform::state_migrations();
  REQUIRE_FALSE(files.empty());
  for (std::size_t i = 0; i < files.size(); ++i) {
    INFO(files[i].name);
    CHECK(files[i].version == int(i) + 1);
    CHECK(std::string(files[i].sql).find("@schema@") != std::string::npos);
  }
  CHECK(files.back().version == pgxform::newest_state_version());
  CHECK(std::string(files[0].name).rfind("001_", 0) == 0);
}
