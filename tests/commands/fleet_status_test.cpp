// Tests of fleet_status's pure part: the line per target and the totals, the table's escaping
// of target names and reasons, and the JSON's shape.
#include "commands/fleet_status.h"

#include <catch2/catch.hpp>
#include <sstream>

using Catch::Matchers::Contains;
using namespace pgxform;

namespace {

StatusRow job(const std::string& name, const std::string& status, long long rows,
              std::optional<double> rate = std::nullopt, std::optional<double> eta = std::nullopt) {
  StatusRow row;
  row.state.job = name;
  row.state.list = "main";
  row.state.status = status;
  row.state.rows_done = rows;
  row.rows_per_s = rate;
  row.eta_s = eta;
  if (status == "failed") row.state.error = "division by zero";
  return row;
}

std::vector<TargetStatus> three_targets() {
  TargetStatus a{"s1", std::nullopt, {}};
  a.report.jobs = {job("items", "done", 500), job("orders", "running", 100, 50.0, 30.0)};
  TargetStatus b{"s2", std::nullopt, {}};
  b.report.jobs = {job("items", "failed", 20), job("orders", "running", 10, 25.0, 90.0)};
  TargetStatus c{"s3\x1b[31m", std::string("cannot connect\x1b[2J"), {}};
  return {a, b, c};
}

}  // namespace

TEST_CASE("a fleet's status has a line per target and the totals, the ETA the slowest",
          "[fleet_status]") {
  const auto lines = fleet_status_lines(three_targets());
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].jobs == 2);
  CHECK(lines[0].done == 1);
  CHECK(lines[0].running == 1);
  CHECK(lines[0].rows == 600);
  CHECK(lines[0].eta_s == 30.0);
  CHECK(lines[1].failed == 1);
  CHECK_THAT(lines[1].note, Contains("items: division by zero"));
  CHECK(lines[2].unknown);
  const auto& fleet = lines[3];
  CHECK(fleet.target == "fleet");
  CHECK(fleet.jobs == 4);
  CHECK(fleet.done == 1);
  CHECK(fleet.failed == 1);
  CHECK(fleet.rows == 630);
  CHECK(fleet.rows_per_s == 75.0);
  CHECK(fleet.eta_s == 90.0);
  CHECK(fleet.note == "3 targets, 1 with a failed job, 1 unreachable");
}

TEST_CASE("the fleet's status table escapes target names and reasons", "[fleet_status]") {
  std::ostringstream out;
  print_fleet_status_table(out, fleet_status_lines(three_targets()));
  CHECK_THAT(out.str(), Contains("TARGET"));
  CHECK_THAT(out.str(), !Contains("\x1b"));
  CHECK_THAT(out.str(), Contains("s3\\x1b[31m"));
}

TEST_CASE("the fleet's status JSON has targets, fleet and jobs each with its target",
          "[fleet_status]") {
  const Json j = fleet_status_json(three_targets());
  REQUIRE(j["targets"].size() == 3);
  CHECK(j["targets"][0]["target"] == "s1");
  CHECK(j["targets"][0]["rows_done"] == 600);
  CHECK(j["targets"][0]["error"].is_null());
  CHECK_THAT(j["targets"][2]["error"].get<std::string>(), Contains("unreachable"));
  CHECK(j["fleet"]["jobs"] == 4);
  REQUIRE(j["jobs"].size() == 4);
  for (const auto& one : j["jobs"]) CHECK(one.begin().key() == "target");
  CHECK(j["jobs"][2]["target"] == "s2");
  CHECK(j["jobs"][2]["job"] == "items");
  CHECK(j["jobs"][2]["status"] == "failed");
}
