// setting_limits: one limit per setting, the same for the jobs file, the command line and the
// control table (pure).
#include "base/setting_limits.h"

#include <catch2/catch.hpp>
#include <limits>

#include "base/errors.h"
#include "commands/control_command.h"
#include "plan/jobs_file.h"

using pgxform::out_of_range;

TEST_CASE("a value out of its setting's limit is named with the bound it passed") {
  CHECK(*out_of_range(pgxform::k_batch_size, std::numeric_limits<long long>::max()) ==
        "batch_size 9223372036854775807 > 1000000000");
  CHECK(*out_of_range(pgxform::k_threads, 10000) == "threads 10000 > 1024");
  CHECK(*out_of_range(pgxform::k_pause_ms, -1) == "pause_ms -1 < 0");
  CHECK(*out_of_range(pgxform::k_batch_size, 0) == "batch_size 0 < 1");
  CHECK_FALSE(out_of_range(pgxform::k_batch_size, 1000000000));
  CHECK_FALSE(out_of_range(pgxform::k_target_batch_ms, 0));
  CHECK_FALSE(out_of_range(pgxform::k_threads, 1024));
}

TEST_CASE("the jobs file and pgxform set refuse the same values of each setting") {
  const auto file_with = [](const std::string& setting) {
    return pgxform::parse_jobs_text(
        "version: 1\nlists:\n  - name: l\n    jobs:\n"
        "      - {name: items, table: legacy.items, key: id, function: xf.items, " +
            setting + "}\n",
        "jobs.yaml");
  };
  const pgxform::JobsFile file = file_with("batch_size: 10");
  const auto set = [&](const std::string& argument) {
    pgxform::ControlOptions o;
    o.action = pgxform::ControlAction::set;
    o.arguments = {"items", argument};
    return pgxform::parse_control_request(file, o);
  };
  for (const auto& [key, limit] : {std::pair{"batch_size", pgxform::k_batch_size},
                                   std::pair{"target_batch_ms", pgxform::k_target_batch_ms}}) {
    const std::string at = std::to_string(limit.max), past = std::to_string(limit.max + 1);
    INFO(key);
    CHECK_NOTHROW(file_with(std::string(key) + ": " + at));
    CHECK_THROWS_AS(file_with(std::string(key) + ": " + past), pgxform::JobsFileError);
    CHECK_NOTHROW(set(std::string(key) + "=" + at));
    CHECK_THROWS_WITH(set(std::string(key) + "=" + past),
                      Catch::Contains("from " + std::to_string(limit.min) + " to " + at));
  }
  CHECK_NOTHROW(set("pause_ms=3600000"));
  CHECK_THROWS_AS(set("pause_ms=3600001"), pgxform::UsageError);
  CHECK_THROWS_AS(set("batch_size=9223372036854775807"), pgxform::UsageError);
}
