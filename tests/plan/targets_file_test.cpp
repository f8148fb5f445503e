// Tests of targets_file: what a valid targets.yaml becomes, and that every bad input is one
// TargetsFileError naming the file and the line. Every YAML text starts right after `R"(`,
// so its first line is line 1 of the file.
#include "plan/targets_file.h"

#include <catch2/catch.hpp>
#include <string>

#include "base/redaction.h"

using Catch::Matchers::Contains;
using pgxform::parse_targets_text;
using pgxform::TargetRow;
using pgxform::TargetsFile;
using pgxform::TargetsFileError;

namespace {

std::string targets_error(const std::string& text) {
  try {
    parse_targets_text(text, "targets.yaml");
  } catch (const TargetsFileError& e) {
    return e.problems().front();
  }
  return "";
}

}  // namespace

TEST_CASE("a targets file lists named targets by connection string or service, in order",
          "[targets_file]") {
  const TargetsFile file = parse_targets_text(R"(targets:
  - {name: s1, dsn: "host=db1 dbname=shard1"}
  - name: s2
    service: shard2
    max_threads: 3
    host: db2
max_threads_per_host: 4
)",
                                              "targets.yaml");
  REQUIRE(file.targets.size() == 2);
  CHECK(file.targets[0].name == "s1");
  CHECK(file.targets[0].dsn == "host=db1 dbname=shard1");
  CHECK(file.targets[0].line == 2);
  CHECK_FALSE(file.targets[0].max_threads);
  CHECK(file.targets[1].dsn == "service=shard2");
  CHECK(file.targets[1].max_threads == 3);
  CHECK(file.targets[1].host == "db2");
  CHECK(file.max_threads_per_host == 4);
  CHECK_FALSE(file.query);
}

TEST_CASE("a targets_query is read with its connection string, sql and line", "[targets_file]") {
  const TargetsFile file = parse_targets_text(R"(targets_query:
  dsn: "dbname=coordinator"
  sql: SELECT name, dsn FROM shards
)",
                                              "targets.yaml");
  REQUIRE(file.query);
  CHECK(file.query->dsn == "dbname=coordinator");
  CHECK(file.query->sql == "SELECT name, dsn FROM shards");
  CHECK(file.query->line == 1);  // its key's line
  CHECK(file.targets.empty());
}

TEST_CASE("an unknown key in a targets file is refused at its line", "[targets_file]") {
  CHECK_THAT(targets_error("targets:\n  - name: s1\n    dsn: dbname=a\n    thread: 2\n"),
             Contains("targets.yaml:4: unknown field 'thread' in target 1"));
  CHECK_THAT(targets_error("target:\n  - {name: s1, dsn: dbname=a}\n"),
             Contains("targets.yaml:1: unknown field 'target'"));
}

TEST_CASE("a duplicate target name is refused at the line of its second entry", "[targets_file]") {
  CHECK_THAT(
      targets_error("targets:\n  - {name: s1, dsn: dbname=a}\n  - {name: s1, dsn: dbname=b}\n"),
      Contains("targets.yaml:3: target 2: the name 's1' appears twice"));
}

TEST_CASE(
    "a password in a target's connection string is refused with the passfile hint and "
    "never shown",
    "[targets_file]") {
  for (const std::string dsn :
       {"host=db1 password=Sekr3tPw dbname=a", "postgresql://app:Sekr3tPw@db1/a",
        "postgresql://db1/a?password=Sekr3tPw"}) {
    const std::string error = targets_error("targets:\n  - name: s1\n    dsn: \"" + dsn + "\"\n");
    CHECK_THAT(error, Contains("targets.yaml:2:"));
    CHECK_THAT(error, Contains("passfile"));
    CHECK_THAT(pgxform::redact(error), !Contains("Sekr3tPw"));
    CHECK_THAT(error, !Contains("Sekr3tPw"));
  }
  CHECK_THAT(targets_error("targets_query:\n  dsn: \"password=Sekr3tPw\"\n  sql: SELECT 1\n"),
             Contains("passfile"));
  pgxform::clear_secrets();
}

TEST_CASE("a target needs a name and exactly one of dsn and service", "[targets_file]") {
  CHECK_THAT(targets_error("targets:\n  - {dsn: dbname=a}\n"),
             Contains("targets.yaml:2: missing required field 'name'"));
  CHECK_THAT(targets_error("targets:\n  - {name: s1}\n"),
             Contains("needs either 'dsn' or 'service'"));
  CHECK_THAT(targets_error("targets:\n  - {name: s1, dsn: dbname=a, service: b}\n"),
             Contains("needs either 'dsn' or 'service'"));
  CHECK_THAT(targets_error("targets:\n  - {name: \"s 1\", dsn: dbname=a}\n"),
             Contains("may hold only letters"));
  CHECK_THAT(targets_error("targets:\n  - {name: s1, dsn: dbname=a, max_threads: 0}\n"),
             Contains("'max_threads' must be a number of threads from 1 to"));
  CHECK_THAT(targets_error("targets: []\n"), Contains("names no target"));
  CHECK_THAT(targets_error("targets: [\n"), Contains("YAML error"));
}

TEST_CASE("the rows of a targets_query are checked as the file's entries are", "[targets_file]") {
  TargetsFile file = parse_targets_text(
      "targets:\n  - {name: s1, dsn: dbname=a}\ntargets_query:\n  sql: SELECT 1\n", "t.yaml");
  pgxform::add_queried_targets(file, {TargetRow{"s2", "dbname=b", "2", std::nullopt}});
  REQUIRE(file.targets.size() == 2);
  CHECK(file.targets[1].max_threads == 2);
  CHECK(file.targets[1].line == 3);
  try {
    pgxform::add_queried_targets(file, {TargetRow{"s1", "dbname=c", std::nullopt, std::nullopt}});
    FAIL("a duplicate name was taken");
  } catch (const TargetsFileError& e) {
    CHECK_THAT(e.problems().front(), Contains("t.yaml:3: targets_query row 1: the name 's1'"));
  }
  CHECK_THROWS_AS(pgxform::add_queried_targets(
                      file, {TargetRow{"s9", "password=x dbname=c", std::nullopt, std::nullopt}}),
                  TargetsFileError);
  pgxform::clear_secrets();
}

TEST_CASE("an unknown target name is refused naming the nearest", "[targets_file]") {
  const TargetsFile file = parse_targets_text(
      "targets:\n  - {name: shard1, dsn: dbname=a}\n  - {name: shard2, dsn: dbname=b}\n", "t.yaml");
  CHECK(pgxform::find_target(file, "shard2").dsn == "dbname=b");
  try {
    pgxform::find_target(file, "shard3x");
    FAIL("an unknown target was found");
  } catch (const TargetsFileError& e) {
    CHECK_THAT(e.problems().front(), Contains("no target named 'shard3x'"));
  }
}
