// status --targets --watch's frames (fleet_watch.h), without a database: the fleet's totals
// line, the busiest targets most rows left first, the failed ones, names escaped for the
// terminal, redrawn in place on a terminal and one JSON line each with --json.
#include "commands/fleet_watch.h"

#include <catch2/catch.hpp>

#include "support/test_json.h"

using Catch::Matchers::Contains;
using namespace pgxform;

namespace {

StatusRow watched_job(const std::string& status, long long rows, std::optional<double> percent,
                      std::optional<double> rate = std::nullopt,
                      std::optional<double> eta = std::nullopt) {
  StatusRow row;
  row.state.job = "items";
  row.state.list = "main";
  row.state.status = status;
  row.state.rows_done = rows;
  row.percent = percent;
  row.rows_per_s = rate;
  row.eta_s = eta;
  if (status == "failed") row.state.error = "division by zero";
  return row;
}

TargetStatus watched_target(const std::string& name, std::vector<StatusRow> jobs) {
  TargetStatus t{name, std::nullopt, {}};
  t.report.jobs = std::move(jobs);
  return t;
}

// s1 done; s2 running with 300 rows left; s3 running with 900 left; s4 pending (none told);
// a failed one, and one that could not be read.
std::vector<TargetStatus> watched_fleet() {
  return {watched_target("s1", {watched_job("done", 500, 100)}),
          watched_target("s2", {watched_job("running", 100, 25, 50.0, 6.0)}),
          watched_target("s3", {watched_job("running", 100, 10, 30.0, 30.0)}),
          watched_target("s4", {watched_job("pending", 0, std::nullopt)}),
          watched_target("s5", {watched_job("failed", 20, 50)}),
          {"s6", std::string("s6: cannot connect"), {}}};
}

StatusOptions fleet_watch_options(StatusFormat format) {
  StatusOptions o;
  o.format = format;
  o.watch_seconds = 2;
  return o;
}

}  // namespace

TEST_CASE("a fleet's targets count as done, running, failed or waiting", "[fleet_status]") {
  auto lines = fleet_status_lines(watched_fleet());
  lines.pop_back();
  const FleetCounts counts = fleet_counts(lines);
  CHECK(counts.done == 1);
  CHECK(counts.running == 2);
  CHECK(counts.failed == 2);
  CHECK(counts.waiting == 1);
}

TEST_CASE("the busiest targets are those neither done nor failed, most rows left first",
          "[fleet_status]") {
  auto lines = fleet_status_lines(watched_fleet());
  lines.pop_back();
  const auto busiest = busiest_targets(lines, 3);
  REQUIRE(busiest.size() == 3);
  CHECK(busiest[0].target == "s3");
  CHECK(busiest[0].rows_left == Approx(900));
  CHECK(busiest[1].target == "s2");
  CHECK(busiest[1].rows_left == Approx(300));
  // s4 cannot tell, after those that can; s5 failed: among the failed, not the busiest.
  CHECK(busiest[2].target == "s4");
  CHECK(busiest_targets(lines, 10).size() == 3);
}

TEST_CASE("a fleet watch frame shows the totals line, the busiest targets and the failed ones",
          "[fleet_status]") {
  const std::string frame = fleet_watch_frame(fleet_watch_options(StatusFormat::table),
                                              watched_fleet(), "16:20:01", WatchScreen::redraw);
  CHECK(frame.rfind("\x1b[H\x1b[J", 0) == 0);
  CHECK_THAT(frame, Contains("every 2 s, at 16:20:01 (Ctrl-C to stop)\n\n"
                             "fleet: 6 targets: 1 done, 2 running, 2 failed, 1 waiting; 720 rows, "
                             "80 rows/s, ETA 30s\n"));
  const auto busiest = frame.find("busiest targets (most rows left first):");
  REQUIRE(busiest != std::string::npos);
  CHECK(frame.find("\ns3 ", busiest) < frame.find("\ns2 ", busiest));
  const auto failed = frame.find("failed targets:");
  REQUIRE(failed != std::string::npos);
  CHECK_THAT(frame.substr(failed), Contains("unreachable: s6: cannot connect"));
  CHECK_THAT(frame.substr(failed), Contains("items: division by zero"));
}

TEST_CASE("a fleet watch frame escapes target names and reasons for the terminal",
          "[fleet_status]") {
  std::vector<TargetStatus> targets = {
      watched_target("s\x1b[2J1", {watched_job("running", 10, 50, 5.0, 2.0)}),
      {"s2\x1b]0;x\x07", std::string("no\x1b[31m route"), {}}};
  const std::string frame = fleet_watch_frame(fleet_watch_options(StatusFormat::table), targets,
                                              "16:20:01", WatchScreen::append);
  // No escape but none at all: off a terminal the frame holds no ESC whatever the names hold.
  CHECK(frame.find('\x1b') == std::string::npos);
  CHECK(frame.find('\x07') == std::string::npos);
  CHECK(frame.substr(frame.size() - 2) == "\n\n");
}

TEST_CASE("a fleet watch frame with --json is the fleet's status JSON on one line",
          "[fleet_status]") {
  const std::string frame = fleet_watch_frame(fleet_watch_options(StatusFormat::json),
                                              watched_fleet(), "16:20:01", WatchScreen::redraw);
  CHECK(frame.find('\n') == frame.size() - 1);
  CHECK(frame.find('\x1b') == std::string::npos);
  const auto doc = pgxform_test::parse_json(frame);
  CHECK(doc.at("targets").size() == 6);
  CHECK(doc.at("fleet").at("running") == 2);
  CHECK(doc.at("jobs").at(0).at("target") == "s1");
}
