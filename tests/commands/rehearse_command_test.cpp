// rehearse rendered from plain structs (no database): the --json object.
#include "commands/rehearse_command.h"

#include <catch2/catch.hpp>
#include <sstream>

#include "support/test_json.h"

using pgxform_test::Json;
using pgxform_test::parse_json;

TEST_CASE("rehearse --json carries whole rows and batches, and nulls for a failed job") {
  pgxform::Rehearsal r;
  r.threads = 2;
  r.commit_ms = 0.5;
  r.run.seconds = 12.3456;
  r.run.critical_path = {"main"};
  r.run.list_finish = {{"main", 12.3456}};
  pgxform::JobRehearsal ok;
  ok.job = "items";
  ok.rows = 200000;
  ok.batches = 40;
  ok.projected_ms = 12345.6;
  ok.growth = 1.1;
  ok.samples.push_back({0.05, std::nullopt, 3, 15000, 30, 0, 0.002});
  ok.samples.push_back({0.95, std::string("190003"), 3, 15000, 33, 0, 0.0022});
  pgxform::JobRehearsal failed;
  failed.job = "broken";
  failed.rows = 10;
  failed.error = "SQLSTATE 22012: division by zero";
  r.jobs = {ok, failed};
  std::ostringstream out;
  pgxform::print_rehearsal_json(out, r);
  const Json doc = parse_json(out.str());
  CHECK(doc["threads"] == 2);
  CHECK(doc["seconds"] == 12.346);
  CHECK(doc["fk_check_ms"].is_null());
  CHECK(doc["critical_path"] == Json::array({"main"}));
  CHECK(doc["lists"][0] == parse_json(R"({"list": "main", "finish_seconds": 12.346})"));
  const Json& items = doc["jobs"][0];
  CHECK(items["rows"].is_number_integer());
  CHECK(items["rows"] == 200000);
  CHECK(items["batches"] == 40);
  CHECK(items["projected_seconds"] == 12.346);
  CHECK(items["trend"] == "flat");
  CHECK(items["samples"][0]["after"].is_null());
  CHECK(items["samples"][1]["after"] == "190003");
  CHECK(items["error"].is_null());
  const Json& broken = doc["jobs"][1];
  CHECK(broken["projected_seconds"].is_null());
  CHECK(broken["trend"].is_null());
  CHECK(broken["error"] == "SQLSTATE 22012: division by zero");

  std::ostringstream table;
  pgxform::print_rehearsal_table(table, r, 3);
  INFO(table.str());
  CHECK(table.str().rfind("rehearse: 3 sample batches per job", 0) == 0);
  CHECK(table.str().find("error: broken: a sample batch failed: SQLSTATE 22012") !=
        std::string::npos);
  CHECK(table.str().find("whole run on 2 threads: 12.3 s (critical path: main)") !=
        std::string::npos);
}
