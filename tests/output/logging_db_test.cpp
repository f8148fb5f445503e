// The logger as a real run uses it: on a pipe each line stamped with an ISO 8601 time and its
// offset; under --log-format json every line, the last word of a failing command too, one JSON
// object, the DSN's password hidden.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("log lines written to a pipe carry an ISO 8601 timestamp with its offset") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const auto r = run_cli(with_db(db, dir.write("jobs.yaml", items_jobs_yaml(50)), {"run"}));
  REQUIRE(r.exit_code == 0);
  const std::regex stamped(
      R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2} (debug|info|warning|error) .*)");
  std::istringstream lines(r.err);
  int checked = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("    ", 0) == 0) continue;  // the later lines of a message of several
    INFO(line);
    CHECK(std::regex_match(line, stamped));
    ++checked;
  }
  CHECK(checked >= 3);  // running ..., items: done ..., all 1 jobs done ...
}

TEST_CASE("a run with --log-format json writes every line as a JSON object, passwords hidden",
          "[live][threads]") {
  TestDatabase db;
  create_items(db, 300, 0);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  // The server's own password where it asks for one (pg_virtualenv's, in PGPASSWORD); else a
  // server that lets the socket in without one, and this one is only there to be hidden.
  const char* server_password = std::getenv("PGPASSWORD");
  const std::string secret = server_password && *server_password ? server_password : "s3cr3t-live";
  const std::string dsn = db.dsn() + " password=" + conninfo_value(secret);
  Child child({"run", "-f", path, "--dsn", dsn, "--log-format", "json"}, dir.path(),
              progress_every(1));
  REQUIRE(child.wait() == 0);
  // A failing command's last word is JSON too, with the password of its DSN hidden.
  Child failing(
      {"run", "-f", path, "--dsn", dsn + " dbname=no_such_db_live", "--log-format", "json"},
      dir.path());
  CHECK(failing.wait() != 0);
  for (const std::string& err : {child.err(), failing.err()}) {
    INFO(err);
    CHECK(err.find(secret) == std::string::npos);
    REQUIRE_FALSE(lines_of(err).empty());
    for (const auto& line : lines_of(err)) {
      const Json j = parse_json(line);
      CHECK(j.at("time").is_string());
      CHECK(j.at("level").is_string());
      CHECK(j.at("message").is_string());
    }
  }
  CHECK_THAT(child.err(), Catch::Contains(R"("message":"items: done, 300 rows in 3 batches)"));
  CHECK_THAT(failing.err(), Catch::Contains(R"("level":"error")"));
}
