// The fleet's HTML report (fleet_report.h), from synthetic profiles: the targets compared
// slowest first, each job under its target's name in that order, one chart per job through
// report.h's renderer, and every name escaped for HTML.
#include "output/fleet_report.h"

#include <catch2/catch.hpp>
#include <sstream>

#include "support/test_text.h"

using namespace pgxform;
using pgxform_test::occurrences;

namespace {

// A job of `n` batches of 1000 rows at `ms` each.
JobProfile fleet_job(const std::string& name, std::size_t n, double ms, const std::string& status) {
  JobProfile p;
  p.job = name;
  p.list = "main";
  p.status = status;
  for (std::size_t i = 0; i < n; ++i) {
    BatchSample b;
    b.rows = 1000;
    b.duration_ms = ms;
    b.position = (double(i) + 0.5) / double(n);
    b.started_s = 1.7e9 + double(i);
    p.batches.push_back(b);
    p.batch_numbers.push_back((long long)i + 1);
    p.first_keys.push_back(std::to_string(i * 1000));
  }
  p.figures = analyze_batches(p.batches);
  return p;
}

std::string fleet_report(const std::vector<TargetProfiles>& targets) {
  std::ostringstream out;
  write_fleet_report(out, {"pgxform profile of a fleet", "jobs.yaml", "2026-12-07"}, targets);
  return out.str();
}

}  // namespace

TEST_CASE("the fleet report puts the slowest target and its jobs first", "[fleet_report]") {
  const std::vector<TargetProfiles> targets = {
      {"fast", {fleet_job("items", 20, 10, "done")}, std::nullopt},
      {"down", {}, std::string("cannot connect")},
      {"slow",
       {fleet_job("items", 20, 90, "done"), fleet_job("orders", 5, 50, "done")},
       std::nullopt}};
  const auto sorted = slowest_first(targets);
  CHECK(sorted[0].target == "slow");
  CHECK(sorted[1].target == "fast");
  CHECK(sorted[2].target == "down");
  CHECK(target_seconds(sorted[0]) == Approx(20 * 0.09 + 5 * 0.05));

  const std::string html = fleet_report(targets);
  // The targets' card, then the jobs under their targets' names, the slowest's first.
  const auto card = html.find("<table class=\"targets\">");
  REQUIRE(card != std::string::npos);
  CHECK(html.find("data-target=\"slow\"", card) < html.find("data-target=\"fast\"", card));
  CHECK(html.find("data-target=\"fast\"", card) < html.find("data-target=\"down\"", card));
  CHECK(html.find("id=\"job-slow/items\"") < html.find("id=\"job-slow/orders\""));
  CHECK(html.find("id=\"job-slow/orders\"") < html.find("id=\"job-fast/items\""));
  CHECK(occurrences(html, "<svg class=\"chart\"") == 3);
  CHECK(html.find("cannot connect") != std::string::npos);
}

TEST_CASE("the fleet report escapes target names and messages for HTML", "[fleet_report]") {
  const std::vector<TargetProfiles> targets = {
      {"<script>alert(1)</script>&co", {fleet_job("items", 3, 10, "done")}, std::nullopt},
      {"b\"&<", {}, std::string("<script>x</script> & more")}};
  const std::string html = fleet_report(targets);
  CHECK(html.find("<script>alert") == std::string::npos);
  CHECK(html.find("<script>x") == std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt;&amp;co") != std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt;&amp;co/items") != std::string::npos);
  CHECK(html.find("data-target=\"b&quot;&amp;&lt;\"") != std::string::npos);
  CHECK(html.find("&lt;script&gt;x&lt;/script&gt; &amp; more") != std::string::npos);
}
