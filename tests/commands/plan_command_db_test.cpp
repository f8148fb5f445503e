// plan against a real PostgreSQL: the stages, each job's estimated rows and batches, and
// nothing written.
#include <catch2/catch.hpp>

#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

TEST_CASE("plan shows stages, estimated rows and batches, and writes nothing") {
  TestDatabase db;
  create_items(db, 1000);
  TempDir dir;
  const long long tables = db.count("SELECT count(*) FROM pg_class WHERE relkind = 'r'");
  const auto path =
      dir.write("jobs.yaml", items_jobs_yaml(300, 2) +
                                 "  - name: after\n    after: [main]\n"
                                 "    jobs: [{name: step, sql: ANALYZE target.items}]\n"
                                 "  - name: free\n    jobs: [{name: other, sql: SELECT 1}]\n");
  auto json = run_with_db(db, path, {"plan", "--json", "--threads", "3"});
  INFO(json.err);
  CHECK(json.exit_code == 0);
  const Json plan = parse_json(json.out);
  CHECK(plan.begin().key() == "threads");
  CHECK(plan["threads"] == 3);
  CHECK(plan["lists"][0] == parse_json(R"({"name": "main", "after": [], "stage": 1, "jobs": [
      {"name": "items", "kind": "batched", "table": "legacy.items", "key": "id",
       "function": "xf.items", "batch_size": 300, "target_batch_ms": 0, "parallel": 2,
       "estimated_rows": 1000,
       "estimated_batches": 4, "changes": null, "refresh_function": null,
       "status": "pending"}]})"));
  CHECK(plan["lists"][1]["name"] == "after");
  CHECK(plan["lists"][1]["after"] == Json::array({"main"}));
  CHECK(plan["lists"][1]["stage"] == 2);
  auto text = run_with_db(db, path, {"plan"});
  CHECK(text.exit_code == 0);
  CHECK_THAT(text.out, Catch::Contains("stage 1: 2 list(s), in parallel") &&
                           Catch::Contains("~1000 rows in ~4 batches of 300, 2 slices") &&
                           Catch::Contains("stage 2: 1 list(s)") &&
                           Catch::Contains("list after (after main)"));
  check_nothing_written(db, tables);
}
