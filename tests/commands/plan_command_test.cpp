// plan, computed and rendered from plain structs (no database): stages of lists by `after:`,
// estimates, the text and the --json object.
#include "commands/plan_command.h"

#include <catch2/catch.hpp>
#include <sstream>

#include "support/test_json.h"

using pgxform::JobsFile;
using pgxform_test::Json;
using pgxform_test::parse_json;

namespace {

const JobsFile k_plan_file = pgxform::parse_jobs_text(R"(version: 1
lists:
  - name: reports
    after: [logistics]
    jobs:
      - {name: summary, sql: SELECT 1}
  - name: orders
    jobs:
      - {name: customers, table: legacy.customers, key: id, function: xf.customers,
         batch_size: 300, target_batch_ms: 0, parallel: 2}
  - name: logistics
    after: [orders]
    jobs:
      - {name: events, table: legacy.events, key: event_id, function: xf.events}
  - name: audit
    after: [orders, reports]
    jobs:
      - {name: check, sql: SELECT 2}
)",
                                                      "jobs.yaml");

}  // namespace

TEST_CASE("a list's stage is one more than the latest list it is after, whatever the file order") {
  const auto stages = pgxform::list_stages(k_plan_file);
  CHECK(stages.at("orders") == 1);
  CHECK(stages.at("logistics") == 2);
  CHECK(stages.at("reports") == 3);
  CHECK(stages.at("audit") == 4);
}

TEST_CASE("stages of a chain of 40,000 lists are found without recursion") {
  JobsFile file;
  file.path = "chain.yaml";
  for (int i = 0; i < 40000; ++i) {
    pgxform::JobList list;
    list.name = "l" + std::to_string(i);
    if (i > 0) list.after.push_back("l" + std::to_string(i - 1));
    file.lists.push_back(list);
  }
  CHECK(pgxform::list_stages(file).at("l39999") == 40000);
}

TEST_CASE("the plan estimates batches from the rows, and knows nothing it was not told") {
  const auto plan =
      pgxform::compute_plan(k_plan_file, 3, {{"customers", "running"}}, {{"customers", 1000}});
  CHECK(plan.threads == 3);
  CHECK(plan.stages == 4);
  REQUIRE(plan.lists.size() == 4);
  const auto& customers = plan.lists[1].jobs.at(0);
  CHECK(customers.job->name == "customers");
  CHECK(customers.status == "running");
  CHECK(*customers.rows == 1000);
  CHECK(*customers.batches == 4);  // 1000 rows in batches of 300
  const auto& events = plan.lists[2].jobs.at(0);
  CHECK(events.status == "pending");
  CHECK_FALSE(events.rows);
  CHECK_FALSE(events.batches);
}

TEST_CASE("plan --json and the plan's text show the same lists, jobs and stages") {
  const auto plan = pgxform::compute_plan(k_plan_file, 2, {}, {{"customers", 1000}});
  std::ostringstream json, text;
  pgxform::print_plan_json(json, plan);
  pgxform::print_plan_text(text, plan);
  const Json doc = parse_json(json.str());
  CHECK(doc["threads"] == 2);
  REQUIRE(doc["lists"].size() == 4);
  CHECK(doc["lists"][0] == parse_json(R"({"name": "reports", "after": ["logistics"], "stage": 3,
      "jobs": [{"name": "summary", "kind": "step", "sql": "SELECT 1", "status": "pending"}]})"));
  CHECK(doc["lists"][1]["jobs"][0] == parse_json(R"({"name": "customers", "kind": "batched",
      "table": "legacy.customers", "key": "id", "function": "xf.customers", "batch_size": 300,
      "target_batch_ms": 0, "parallel": 2, "estimated_rows": 1000, "estimated_batches": 4,
      "changes": null, "refresh_function": null, "status": "pending"})"));
  CHECK(doc["lists"][2]["jobs"][0]["estimated_rows"].is_null());
  // Time-sized batches (the default): their number is not known before the run.
  const auto timed = pgxform::compute_plan(k_plan_file, 2, {}, {{"events", 5000}});
  std::ostringstream timed_json, timed_text;
  pgxform::print_plan_json(timed_json, timed);
  pgxform::print_plan_text(timed_text, timed);
  const Json events = parse_json(timed_json.str())["lists"][2]["jobs"][0];
  CHECK(events["target_batch_ms"] == 500);
  CHECK(events["estimated_rows"] == 5000);
  CHECK(events["estimated_batches"].is_null());
  CHECK_THAT(timed_text.str(), Catch::Contains("~5000 rows in ~? batches of 10000 at first, then "
                                               "sized to last 500 ms [pending]"));
  INFO(text.str());
  CHECK(text.str().rfind("plan for jobs.yaml: 4 lists on 2 threads\nstage 1: 1 list(s)\n", 0) == 0);
  CHECK(text.str().find("    customers: xf.customers over legacy.customers by id, ~1000 rows in "
                        "~4 batches of 300, 2 slices at once [pending]") != std::string::npos);
  CHECK(text.str().find("  list audit (after orders, reports): its jobs in order\n    check: "
                        "one-shot step `SELECT 2` [pending]") != std::string::npos);
  CHECK(text.str().find("~? rows in ~? batches") != std::string::npos);
}

TEST_CASE("the largest batch size a file allows cannot overflow the plan's arithmetic") {
  const JobsFile file = pgxform::parse_jobs_text(
      "version: 1\nlists:\n  - name: l\n    jobs:\n"
      "      - {name: j, table: t, key: id, function: f, batch_size: 1000000000, target_batch_ms: "
      "0}\n",
      "jobs.yaml");
  const auto plan = pgxform::compute_plan(file, 1, {}, {{"j", 9.2e18}});
  CHECK(*plan.lists[0].jobs[0].batches == 9200000000);
  CHECK(*pgxform::compute_plan(file, 1, {}, {{"j", 5}}).lists[0].jobs[0].batches == 1);
}
