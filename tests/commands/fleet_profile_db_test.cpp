// profile over a fleet (fleet_profile.h) against real PostgreSQL: two targets (the second on
// the second server when PGXFORM_TEST_SERVER2 names one), each target's profile under its
// heading, and one HTML report comparing them.
#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "support/fixtures.h"
#include "support/test_db.h"

using Catch::Matchers::Contains;
using namespace pgxform_test;

namespace {

// Two targets t1 and t2 of 300 rows each.
struct ProfiledFleet {
  TestDatabase first;
  std::unique_ptr<TestDatabase> second = second_server().empty()
                                             ? std::make_unique<TestDatabase>()
                                             : std::make_unique<TestDatabase>(second_server());
  TempDir dir;
  std::string jobs, targets;
  ProfiledFleet() {
    create_items(first, 300, 0);
    create_items(*second, 300, 0);
    jobs = dir.write("jobs.yaml", items_jobs_yaml(50));
    targets =
        dir.write("targets.yaml", "targets:\n  - name: t1\n    dsn: \"" + first.dsn() +
                                      "\"\n  - name: t2\n    dsn: \"" + second->dsn() + "\"\n");
  }
};

}  // namespace

TEST_CASE("profile --targets --html writes one report comparing the targets", "[fleet_profile]") {
  ProfiledFleet fleet;
  REQUIRE(run_cli({"run", "-q", "-f", fleet.jobs, "--targets", fleet.targets, "--threads", "2"})
              .exit_code == 0);
  const std::string path = fleet.dir.path() + "/fleet.html";
  const CliResult r =
      run_cli({"profile", "-f", fleet.jobs, "--targets", fleet.targets, "--html", path});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Contains("== target t1"));
  CHECK_THAT(r.out, Contains("== target t2"));
  std::ifstream in(path);
  REQUIRE(in);
  const std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK_THAT(html, Contains("<table class=\"targets\">"));
  CHECK_THAT(html, Contains("data-target=\"t1\""));
  CHECK_THAT(html, Contains("data-target=\"t2\""));
  CHECK_THAT(html, Contains("id=\"job-t1/items\""));
  CHECK_THAT(html, Contains("id=\"job-t2/items\""));
  // --target: only that one.
  const CliResult one = run_cli(
      {"profile", "-f", fleet.jobs, "--targets", fleet.targets, "--target", "t2", "--html", path});
  CHECK(one.exit_code == 0);
  std::ifstream again(path);
  const std::string html2((std::istreambuf_iterator<char>(again)),
                          std::istreambuf_iterator<char>());
  CHECK_THAT(html2, !Contains("data-target=\"t1\""));
  CHECK_THAT(html2, Contains("id=\"job-t2/items\""));
}

TEST_CASE("a target profile cannot read is listed in the fleet report with why, and exit 1",
          "[fleet_profile]") {
  ProfiledFleet fleet;
  REQUIRE(run_cli({"run", "-q", "-f", fleet.jobs, "--targets", fleet.targets}).exit_code == 0);
  const std::string targets = fleet.dir.write(
      "targets3.yaml", "targets:\n  - name: t1\n    dsn: \"" + fleet.first.dsn() +
                           "\"\n  - name: t3\n    dsn: \"dbname=pgxform_test_no_such_database\"\n");
  const std::string path = fleet.dir.path() + "/fleet.html";
  const CliResult r = run_cli({"profile", "-f", fleet.jobs, "--targets", targets, "--html", path});
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("t3: "));
  std::ifstream in(path);
  REQUIRE(in);
  const std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK_THAT(html, Contains("id=\"job-t1/items\""));
  CHECK_THAT(html, Contains("data-target=\"t3\""));
  CHECK_THAT(html, Contains("pgxform_test_no_such_database"));
}
