// block_counters: reading the top plan node's buffer counters from EXPLAIN's JSON (pure).
#include "analysis/block_counters.h"

#include <catch2/catch.hpp>
#include <string>

namespace {

// The shape PostgreSQL 15 prints for EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY OFF,
// FORMAT JSON): the top node, a child with counters of its own, then the planning's.
const char* const k_plan = R"([
  {
    "Plan": {
      "Node Type": "CTE Scan",
      "Actual Rows": 1,
      "Shared Hit Blocks": 2128,
      "Shared Read Blocks": 2,
      "Shared Dirtied Blocks": 11,
      "Shared Written Blocks": 10,
      "Local Hit Blocks": 7,
      "Local Read Blocks": 0,
      "Local Dirtied Blocks": 0,
      "Local Written Blocks": 0,
      "Temp Read Blocks": 31,
      "Temp Written Blocks": 32,
      "Plans": [
        {
          "Node Type": "Result",
          "Shared Hit Blocks": 5,
          "Shared Read Blocks": 1,
          "Shared Dirtied Blocks": 0,
          "Shared Written Blocks": 0,
          "Local Hit Blocks": 0,
          "Local Read Blocks": 0,
          "Temp Read Blocks": 0,
          "Temp Written Blocks": 0
        }
      ]
    },
    "Planning": {
      "Shared Hit Blocks": 3,
      "Shared Read Blocks": 0,
      "Temp Read Blocks": 0,
      "Temp Written Blocks": 0
    },
    "Triggers": [
    ]
  }
])";

}  // namespace

TEST_CASE("the counters are the top plan node's, not a child's or the planning's") {
  const auto c = pgxform::top_node_counters(k_plan);
  REQUIRE(c);
  CHECK(c->shared_hit == 2128);
  CHECK(c->shared_read == 2);
  CHECK(c->shared_dirtied == 11);
  CHECK(c->shared_written == 10);
  CHECK(c->local_hit == 7);
  CHECK(c->local_read == 0);
  CHECK(c->temp_read == 31);
  CHECK(c->temp_written == 32);
  CHECK(c->touched() == 2128 + 2 + 7);
}

TEST_CASE("a plan without buffer counters has none, rather than zeros") {
  CHECK_FALSE(pgxform::top_node_counters(R"([{"Plan": {"Node Type": "Result"}}])"));
  CHECK_FALSE(pgxform::top_node_counters(""));
  // One counter missing, or not a number: none at all.
  std::string partial = k_plan;
  partial.replace(partial.find("\"Temp Written Blocks\": 32"), 25, "\"Temp Written Blocks\": x");
  CHECK_FALSE(pgxform::top_node_counters(partial));
}

TEST_CASE("counters add up field by field") {
  pgxform::BlockCounters a{1, 2, 3, 4, 5, 6, 7, 8}, b{10, 20, 30, 40, 50, 60, 70, 80};
  a += b;
  CHECK(a.shared_hit == 11);
  CHECK(a.shared_read == 22);
  CHECK(a.shared_dirtied == 33);
  CHECK(a.shared_written == 44);
  CHECK(a.local_hit == 55);
  CHECK(a.local_read == 66);
  CHECK(a.temp_read == 77);
  CHECK(a.temp_written == 88);
}
