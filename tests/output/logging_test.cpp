// The logger (logging.h), without a database: --log-format json writes one JSON object per
// line with its time, level and message, passwords redacted; a writer takes the lines over.
#include "output/logging.h"

#include <spdlog/spdlog.h>

#include <catch2/catch.hpp>
#include <vector>

#include "database/database.h"
#include "support/test_json.h"

namespace {

// The lines the logger writes while `log` runs, in `format`.
std::vector<std::string> logged(pgxform::LogFormat format, const std::function<void()>& log) {
  std::vector<std::string> lines;
  pgxform::setup_logging(pgxform::Verbosity::normal, format);
  pgxform::set_log_writer([&](const std::string& line) { lines.push_back(line); });
  log();
  pgxform::set_log_writer({});
  pgxform::setup_logging(pgxform::Verbosity::normal);
  return lines;
}

}  // namespace

TEST_CASE("log format json writes one object per line with time, level and message") {
  const auto lines = logged(pgxform::LogFormat::json, [] {
    spdlog::info("items: done, {} rows", 3000);
    spdlog::warn("a key with a \"quote\" and an \x1b escape");
  });
  REQUIRE(lines.size() == 2);
  for (const auto& line : lines) {
    CHECK(line.back() == '\n');
    CHECK(line.find('\n') == line.size() - 1);
    CHECK(line.find('\x1b') == std::string::npos);
  }
  const auto first = pgxform_test::parse_json(lines[0]);
  CHECK(first.at("level") == "info");
  CHECK(first.at("message") == "items: done, 3000 rows");
  const std::string time = first.at("time");
  // 2026-12-02T08:22:55.123+00:00
  CHECK(time.size() == 29);
  CHECK(time[10] == 'T');
  CHECK(time[19] == '.');
  CHECK(time[26] == ':');
  const auto second = pgxform_test::parse_json(lines[1]);
  CHECK(second.at("level") == "warning");
  CHECK(second.at("message") == "a key with a \"quote\" and an \x1b escape");
}

TEST_CASE("a password never reaches a JSON log line") {
  pgxform::register_secrets_from("postgresql://alice:s3cr3t-pw@db.example/shop");
  const auto lines = logged(pgxform::LogFormat::json, [] {
    spdlog::error("could not connect to postgresql://alice:s3cr3t-pw@db.example/shop");
  });
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("s3cr3t-pw") == std::string::npos);
  CHECK(pgxform_test::parse_json(lines[0]).at("level") == "error");
}

TEST_CASE("a text log line goes to the writer as it would to stderr") {
  const auto lines =
      logged(pgxform::LogFormat::text, [] { spdlog::info("items: paused (job items)"); });
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Catch::EndsWith("info items: paused (job items)\n"));
}
