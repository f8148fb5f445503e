// Tests of jobs_file: what a valid jobs.yaml becomes, and that every bad input is one
// JobsFileError pointing at the right line. Every YAML text starts right after `R"(`, so its
// first line is line 1 of the file.
#include "plan/jobs_file.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include "fuzz/fuzz_targets.h"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using pgxform::JobsFile;
using pgxform::JobsFileError;
using pgxform::parse_jobs_file;
using pgxform::parse_jobs_text;
using pgxform::parse_qualified_name;
using pgxform::steering_flaw;

namespace {

const char* const k_example = R"(version: 1
defaults: {batch_size: 10000}
lists:
  - name: orders
    jobs:
      - name: customers
        table: legacy.customers
        key: id
        function: xf.customers
        batch_size: 5000
      - name: orders
        table: legacy.orders
        key: id
        function: xf.orders
  - name: logistics
    after: [orders]
    jobs:
      - name: events
        table: legacy.events
        key: event_id
        function: xf.events
      - name: analyze-events
        sql: ANALYZE fulfil.events
)";

// The error that parsing `text` as "jobs.yaml" raises; fails the test when there is none.
// Any other exception type propagates and fails the test too.
JobsFileError error_of(const std::string& text) {
  try {
    parse_jobs_text(text, "jobs.yaml");
  } catch (const JobsFileError& e) {
    return e;
  }
  FAIL("the jobs file was accepted");
  throw std::logic_error("unreachable");
}

std::string message(const JobsFileError& e) {
  return e.what();
}

}  // namespace

// --- A valid file ---------------------------------------------------------------------------

TEST_CASE("a valid file parses into its lists and jobs in the order written") {
  const JobsFile file = parse_jobs_text(k_example, "jobs.yaml");
  CHECK(file.path == "jobs.yaml");
  REQUIRE(file.lists.size() == 2);

  const auto& orders = file.lists[0];
  CHECK(orders.name == "orders");
  CHECK(orders.line == 4);
  CHECK(orders.after.empty());
  REQUIRE(orders.jobs.size() == 2);
  CHECK(orders.jobs[0].name == "customers");
  CHECK(orders.jobs[1].name == "orders");

  const auto& logistics = file.lists[1];
  CHECK(logistics.name == "logistics");
  CHECK(logistics.line == 15);
  CHECK(logistics.after == std::vector<std::string>{"orders"});
  REQUIRE(logistics.jobs.size() == 2);
  CHECK(logistics.jobs[0].name == "events");
  CHECK(logistics.jobs[1].name == "analyze-events");
}

TEST_CASE("a batched job carries its table, key, function, list and line") {
  const JobsFile file = parse_jobs_text(k_example, "jobs.yaml");
  const auto& job = file.lists[1].jobs[0];
  CHECK(job.name == "events");
  CHECK(job.list == "logistics");
  CHECK(job.line == 18);
  CHECK(job.table.schema == "legacy");
  CHECK(job.table.name == "events");
  CHECK(job.key == "event_id");
  CHECK(job.function.schema == "xf");
  CHECK(job.function.name == "events");
  CHECK(job.sql.empty());
  CHECK_FALSE(job.is_step());
}

TEST_CASE("a job's batch_size comes from defaults unless the job sets its own") {
  const JobsFile file = parse_jobs_text(R"(version: 1
defaults: {batch_size: 250}
lists:
  - name: a
    jobs:
      - name: own
        table: t
        key: id
        function: f
        batch_size: 5000
      - name: inherited
        table: t
        key: id
        function: f
)",
                                        "jobs.yaml");
  CHECK(file.default_batch_size == 250);
  CHECK(file.find_job("own")->batch_size == 5000);
  CHECK(file.find_job("inherited")->batch_size == 250);
}

TEST_CASE("without defaults, batch_size is 10000, threads 4 and state_schema pgxform") {
  const JobsFile file = parse_jobs_text(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        table: t
        key: id
        function: f
)",
                                        "jobs.yaml");
  CHECK(file.default_batch_size == 10000);
  CHECK(file.default_threads == 4);
  CHECK(file.state_schema == "pgxform");
  CHECK(file.find_job("x")->batch_size == 10000);
}

TEST_CASE("defaults.threads and state_schema override their defaults") {
  const JobsFile file = parse_jobs_text(R"(version: 1
defaults:
  threads: 8
state_schema: migration_state
lists:
  - name: a
    jobs:
      - name: x
        sql: SELECT 1
)",
                                        "jobs.yaml");
  CHECK(file.default_threads == 8);
  CHECK(file.state_schema == "migration_state");
}

TEST_CASE("parallel is 1 unless the job sets it") {
  const JobsFile file = parse_jobs_text(R"(version: 1
lists:
  - name: a
    jobs:
      - name: single
        table: t
        key: id
        function: f
      - name: sliced
        table: t
        key: id
        function: f
        parallel: 3
)",
                                        "jobs.yaml");
  CHECK(file.find_job("single")->parallel == 1);
  CHECK(file.find_job("sliced")->parallel == 3);
}

TEST_CASE("parallel: auto is read per job and from defaults, and a job's own parallel wins") {
  const JobsFile file = parse_jobs_text(R"(version: 1
defaults:
  parallel: auto
lists:
  - name: a
    jobs:
      - {name: inherits, table: t, key: id, function: f}
      - {name: ordered, table: t, key: id, function: f, parallel: 1}
      - {name: fixed, table: t, key: id, function: f, parallel: 3}
      - {name: step, sql: 'SELECT 1'}
)",
                                        "jobs.yaml");
  CHECK(file.find_job("inherits")->parallel_auto);
  CHECK_FALSE(file.find_job("ordered")->parallel_auto);
  CHECK(file.find_job("ordered")->parallel == 1);
  CHECK_FALSE(file.find_job("fixed")->parallel_auto);
  CHECK(file.find_job("fixed")->parallel == 3);
  CHECK_FALSE(file.find_job("step")->parallel_auto);
  CHECK_FALSE(parse_jobs_text("version: 1\nlists:\n  - name: a\n    jobs:\n"
                              "      - {name: x, table: t, key: id, function: f}\n",
                              "jobs.yaml")
                  .find_job("x")
                  ->parallel_auto);
}

TEST_CASE("a job with sql is a one-shot step with no table, key or function") {
  const JobsFile file = parse_jobs_text(k_example, "jobs.yaml");
  const auto* step = file.find_job("analyze-events");
  REQUIRE(step != nullptr);
  CHECK(step->is_step());
  CHECK(step->sql == "ANALYZE fulfil.events");
  CHECK(step->list == "logistics");
  CHECK(step->line == 22);
  CHECK(step->table.text().empty());
  CHECK(step->key.empty());
  CHECK(step->function.text().empty());
}

TEST_CASE("find_job and find_list find by name and return null for unknown names") {
  const JobsFile file = parse_jobs_text(k_example, "jobs.yaml");
  REQUIRE(file.find_list("logistics") != nullptr);
  CHECK(file.find_list("logistics")->line == 15);
  REQUIRE(file.find_job("orders") != nullptr);
  CHECK(file.find_job("orders")->list == "orders");
  CHECK(file.find_job("orders")->line == 11);
  CHECK(file.find_list("events") == nullptr);
  CHECK(file.find_job("logistics") == nullptr);
}

TEST_CASE("qualified, unqualified and quoted names split into schema and name") {
  const JobsFile file = parse_jobs_text(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        table: orders
        key: id
        function: '"My Schema"."Fn"'
)",
                                        "jobs.yaml");
  const auto* job = file.find_job("x");
  REQUIRE(job != nullptr);
  CHECK(job->table.schema.empty());
  CHECK(job->table.name == "orders");
  CHECK(job->table.text() == "orders");
  CHECK(job->function.schema == "My Schema");
  CHECK(job->function.name == "Fn");
}

TEST_CASE("parse_qualified_name keeps dots and doubled quotes inside quotes") {
  auto dotted = parse_qualified_name(R"("a.b".c)");
  CHECK(dotted.schema == "a.b");
  CHECK(dotted.name == "c");
  auto doubled = parse_qualified_name(R"(s."we""ird")");
  CHECK(doubled.schema == "s");
  CHECK(doubled.name == "we\"ird");
  CHECK(parse_qualified_name("legacy.orders").text() == "legacy.orders");
}

TEST_CASE("parse_qualified_name rejects empty parts, three parts and unterminated quotes") {
  CHECK_THROWS_AS(parse_qualified_name(""), std::invalid_argument);
  CHECK_THROWS_AS(parse_qualified_name("a."), std::invalid_argument);
  CHECK_THROWS_AS(parse_qualified_name(".a"), std::invalid_argument);
  CHECK_THROWS_AS(parse_qualified_name("a.b.c"), std::invalid_argument);
  CHECK_THROWS_AS(parse_qualified_name(R"("a.b)"), std::invalid_argument);
}

TEST_CASE("a table name with three parts is an error on its line") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        table: db.legacy.orders
        key: id
        function: f
)");
  CHECK(e.line() == 6);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:6: ") && Contains("'table' in job 'x'") &&
                             Contains("db.legacy.orders"));
}

// --- Syntax and unknown fields --------------------------------------------------------------

TEST_CASE("bad indentation is a YAML syntax error on its line") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
       sql: SELECT 1
)");
  CHECK(e.file() == "jobs.yaml");
  CHECK(e.line() == 6);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:6: YAML syntax error"));
}

TEST_CASE("an unclosed bracket is a YAML syntax error where the parser finds the flow broken") {
  // A flow sequence may span lines, so `[b` is not an error by itself: yaml-cpp finds the
  // sequence broken at the block key `jobs:` on the next line, and reports that line.
  auto e = error_of(R"(version: 1
lists:
  - name: a
    after: [b
    jobs:
      - name: x
        sql: SELECT 1
)");
  CHECK(e.line() == 5);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:5: YAML syntax error") && Contains("flow"));
}

TEST_CASE("an empty file is an error naming the file") {
  auto e = error_of("");
  CHECK(e.line() == 0);
  CHECK_THAT(message(e), StartsWith("jobs.yaml: ") && Contains("mapping"));
}

TEST_CASE("an unknown top-level field is an error on its line") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        sql: SELECT 1
threads: 4
)");
  CHECK(e.line() == 7);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:7: ") && Contains("unknown field 'threads'") &&
                             Contains("the jobs file"));
}

TEST_CASE("an unknown field in defaults is an error on its line") {
  auto e = error_of(R"(version: 1
defaults:
  batch_size: 100
  thread: 4
lists:
  - name: a
    jobs:
      - name: x
        sql: SELECT 1
)");
  CHECK(e.line() == 4);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:4: ") && Contains("unknown field 'thread'") &&
                             Contains("defaults"));
}

TEST_CASE("an unknown field in a list is an error naming the list and its line") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    depends: [b]
    jobs:
      - name: x
        sql: SELECT 1
)");
  CHECK(e.line() == 4);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:4: ") && Contains("unknown field 'depends'") &&
                             Contains("list 'a'"));
}

TEST_CASE("an unknown field such as batchsize is an error naming its line") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        table: t
        key: id
        function: f
        batchsize: 5000
)");
  CHECK(e.line() == 9);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:9: ") && Contains("unknown field 'batchsize'") &&
                             Contains("job 'x'") && Contains("batch_size"));
}

// --- Required structure ---------------------------------------------------------------------

TEST_CASE("a file without version is an error") {
  auto e = error_of(R"(lists:
  - name: a
    jobs:
      - name: x
        sql: SELECT 1
)");
  CHECK(e.line() == 1);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:1: ") && Contains("'version'"));
}

TEST_CASE("a version other than 1 is an error on the version's line") {
  auto e = error_of(R"(lists:
  - name: a
    jobs:
      - name: x
        sql: SELECT 1
version: 2
)");
  CHECK(e.line() == 6);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:6: ") && Contains("unsupported version '2'"));
}

TEST_CASE("a file without lists is an error") {
  auto e = error_of(R"(version: 1
defaults: {batch_size: 5}
)");
  CHECK(e.line() == 1);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:1: ") && Contains("missing") && Contains("'lists'"));
}

TEST_CASE("an empty lists is an error on its line") {
  auto e = error_of(R"(version: 1
lists: []
)");
  CHECK(e.line() == 2);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:2: ") && Contains("'lists' must be a non-empty"));
}

TEST_CASE("a list without a name is an error on the list's line") {
  auto e = error_of(R"(version: 1
lists:
  - after: []
    jobs:
      - name: x
        sql: SELECT 1
)");
  CHECK(e.line() == 3);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:3: ") && Contains("missing") && Contains("'name'") &&
                             Contains("a list"));
}

TEST_CASE("a list without jobs is an error naming the list") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
  - name: b
    jobs:
      - name: x
        sql: SELECT 1
)");
  CHECK(e.line() == 3);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:3: ") && Contains("'jobs'") && Contains("list 'a'"));
}

TEST_CASE("a job without a name is an error on the job's line") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - table: t
        key: id
        function: f
)");
  CHECK(e.line() == 5);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:5: ") && Contains("missing") && Contains("'name'") &&
                             Contains("list 'a'"));
}

TEST_CASE("a job with both function and sql is an error naming the job") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        table: t
        key: id
        function: f
        sql: SELECT 1
)");
  CHECK(e.line() == 5);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:5: ") && Contains("job 'x'") &&
                             Contains("exactly one of 'function'") && Contains("'sql'"));
}

TEST_CASE("a job with neither function nor sql is an error naming the job") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        table: t
        key: id
)");
  CHECK(e.line() == 5);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:5: ") && Contains("job 'x'") &&
                             Contains("exactly one of 'function'") && Contains("'sql'"));
}

TEST_CASE("a one-shot step with a batching field is an error on that field's line") {
  const std::string field =
      GENERATE(as<std::string>{}, "table: t", "key: id", "batch_size: 10", "parallel: 2");
  CAPTURE(field);
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        sql: SELECT 1
        )" + field + "\n");
  const std::string name = field.substr(0, field.find(':'));
  CHECK(e.line() == 7);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:7: ") && Contains("'" + name + "'") &&
                             Contains("one-shot step job 'x'"));
}

TEST_CASE("a batched job without a table is an error naming the job") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        key: id
        function: f
)");
  CHECK(e.line() == 5);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:5: ") && Contains("missing") &&
                             Contains("'table'") && Contains("job 'x'"));
}

TEST_CASE("a batched job without a key is an error naming the job") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        table: t
        function: f
)");
  CHECK(e.line() == 5);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:5: ") && Contains("missing") && Contains("'key'") &&
                             Contains("job 'x'"));
}

TEST_CASE("an empty key is an error on the line of the key") {
  // The value of `key:` is a null node; the line to report is the one where `key:` is written.
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        table: t
        key:
        function: f
)");
  CHECK(e.line() == 7);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:7: ") && Contains("'key'") && Contains("job 'x'"));
}

// --- Names and the `after:` graph -----------------------------------------------------------

TEST_CASE("a job name used twice in one list is an error naming the job and both lines") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        sql: SELECT 1
      - name: x
        sql: SELECT 2
)");
  CHECK(e.line() == 7);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:7: ") && Contains("duplicate job name 'x'") &&
                             Contains("first at line 5"));
}

TEST_CASE("a job name used in two lists is an error naming the job and both lines") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        sql: SELECT 1
  - name: b
    jobs:
      - name: x
        sql: SELECT 2
)");
  CHECK(e.line() == 9);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:9: ") && Contains("duplicate job name 'x'") &&
                             Contains("first at line 5"));
}

TEST_CASE("a list name used twice is an error on the second list's line") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        sql: SELECT 1
  - name: a
    jobs:
      - name: y
        sql: SELECT 2
)");
  CHECK(e.line() == 7);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:7: ") && Contains("duplicate list name 'a'"));
}

TEST_CASE("after naming an unknown list is an error naming both lists") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    after: [nowhere]
    jobs:
      - name: x
        sql: SELECT 1
)");
  CHECK(e.line() == 3);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:3: ") && Contains("list 'a'") &&
                             Contains("unknown list 'nowhere'"));
}

TEST_CASE("a list after itself is an error naming it") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    after: [a]
    jobs:
      - name: x
        sql: SELECT 1
)");
  CHECK(e.line() == 3);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:3: ") && Contains("list 'a' is after itself"));
}

TEST_CASE("two lists after each other are a cycle spelled out in the error") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    after: [b]
    jobs:
      - name: x
        sql: SELECT 1
  - name: b
    after: [a]
    jobs:
      - name: y
        sql: SELECT 2
)");
  CHECK(e.line() == 3);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:3: ") && Contains("cycle: a -> b -> a"));
}

TEST_CASE("three lists after each other in a ring are a cycle spelled out in the error") {
  auto e = error_of(R"(version: 1
lists:
  - name: free
    jobs:
      - name: w
        sql: SELECT 0
  - name: a
    after: [b]
    jobs:
      - name: x
        sql: SELECT 1
  - name: b
    after: [c]
    jobs:
      - name: y
        sql: SELECT 2
  - name: c
    after: [a, free]
    jobs:
      - name: z
        sql: SELECT 3
)");
  CHECK(e.line() == 7);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:7: ") && Contains("cycle: a -> b -> c -> a"));
}

TEST_CASE("a chain of after without a cycle is accepted") {
  const JobsFile file = parse_jobs_text(R"(version: 1
lists:
  - name: c
    after: [b, a]
    jobs:
      - name: z
        sql: SELECT 3
  - name: b
    after: [a]
    jobs:
      - name: y
        sql: SELECT 2
  - name: a
    jobs:
      - name: x
        sql: SELECT 1
)",
                                        "jobs.yaml");
  CHECK(file.find_list("c")->after == std::vector<std::string>{"b", "a"});
}

// --- Numbers --------------------------------------------------------------------------------

TEST_CASE("a batch_size that is not a positive integer is an error on its line") {
  const std::string value =
      GENERATE(as<std::string>{}, "0", "-5", "1.5", "abc", "\"abc\"", "10k", "0x10", "[1]");
  CAPTURE(value);
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        table: t
        key: id
        function: f
        batch_size: )" +
                    value + "\n");
  CHECK(e.line() == 9);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:9: ") && Contains("batch_size of job 'x'") &&
                             Contains("positive integer"));
}

TEST_CASE("a defaults.batch_size that is not a positive integer is an error on its line") {
  auto e = error_of(R"(version: 1
defaults:
  batch_size: 0
lists:
  - name: a
    jobs:
      - name: x
        sql: SELECT 1
)");
  CHECK(e.line() == 3);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:3: ") && Contains("defaults.batch_size") &&
                             Contains("positive integer"));
}

TEST_CASE("defaults.threads 0 is an error on its line") {
  auto e = error_of(R"(version: 1
defaults: {threads: 0}
lists:
  - name: a
    jobs:
      - name: x
        sql: SELECT 1
)");
  CHECK(e.line() == 2);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:2: ") && Contains("defaults.threads") &&
                             Contains("positive integer"));
}

TEST_CASE("parallel 0 is an error on its line") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        table: t
        key: id
        function: f
        parallel: 0
)");
  CHECK(e.line() == 9);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:9: ") && Contains("parallel of job 'x'") &&
                             Contains("positive integer"));
}

TEST_CASE("a parallel too large for an int is an error, not a wrapped-around number") {
  // 4294967296 is 2^32: truncated to int it would become 0 slices.
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        table: t
        key: id
        function: f
        parallel: 4294967296
)");
  CHECK(e.line() == 9);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:9: ") && Contains("parallel of job 'x'"));
}

TEST_CASE("a field written twice in a job is an error on the second line") {
  // YAML forbids duplicate keys; taking one of the two silently would hide a mistake.
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        table: t
        key: id
        function: f
        batch_size: 1000
        batch_size: 50
)");
  CHECK(e.line() == 10);
  CHECK_THAT(message(e), StartsWith("jobs.yaml:10: ") && Contains("batch_size"));
}

// --- Reading from disk ----------------------------------------------------------------------

TEST_CASE("a jobs file that does not exist is an error naming its path") {
  const std::string path = "/nonexistent-pgxform-dir/jobs.yaml";
  try {
    parse_jobs_file(path);
    FAIL("a missing file was accepted");
  } catch (const JobsFileError& e) {
    CHECK(e.file() == path);
    CHECK(e.line() == 0);
    CHECK_THAT(message(e), StartsWith(path + ": ") && Contains("cannot read"));
  }
}

TEST_CASE("parse_jobs_file reads the file and names its path in errors") {
  const std::string path = "/tmp/pgxform_jobs_file_test_" + std::to_string(::getpid()) + ".yaml";
  {
    std::ofstream out(path);
    out << k_example;
  }
  const JobsFile file = parse_jobs_file(path);
  CHECK(file.path == path);
  CHECK(file.lists.size() == 2);

  {
    std::ofstream out(path);
    out << "version: 1\nlists:\n  - name: a\n    jobz: []\n";
  }
  try {
    parse_jobs_file(path);
    FAIL("a bad file was accepted");
  } catch (const JobsFileError& e) {
    CHECK(e.line() == 4);
    CHECK_THAT(message(e), StartsWith(path + ":4: ") && Contains("unknown field 'jobz'"));
  }
  std::remove(path.c_str());
}

// --- Hardening: what may not reach the database ----------------------------------------------

TEST_CASE("a NUL byte in any field is refused at its line, before anything is written") {
  // Two jobs that libpq would both see as "items": YAML's \0 escape makes the NUL.
  const auto e = error_of(R"(version: 1
lists:
  - name: l
    jobs:
      - {name: "items\0a", table: legacy.items, key: id, function: xf.items}
)");
  CHECK(e.line() == 5);
  CHECK_THAT(message(e), Contains("'name'") && Contains("a NUL byte"));
  for (const char* field :
       {"table: \"legacy.it\\0ems\"", "key: \"i\\0d\"", "function: \"xf.i\\0tems\""}) {
    std::string text = std::string(R"(version: 1
lists:
  - name: l
    jobs:
      - name: items
        table: legacy.items
        key: id
        function: xf.items
)");
    const std::string name = std::string(field).substr(0, std::string(field).find(':'));
    const auto at = text.find("        " + name + ":");
    text.replace(at, text.find('\n', at) - at, std::string("        ") + field);
    INFO(text);
    CHECK_THAT(message(error_of(text)), Contains("a NUL byte"));
  }
  CHECK_THAT(message(error_of("version: 1\nlists:\n  - name: l\n    jobs:\n"
                              "      - {name: s, sql: \"SELECT 1\\0; DROP TABLE x\"}\n")),
             Contains("a NUL byte"));
}

TEST_CASE(
    "bytes that are not UTF-8 are refused at their line, and a name holds no control character") {
  const auto latin1 = error_of(
      "version: 1\nlists:\n  - name: l\n    jobs:\n"
      "      - {name: caf\xe9, table: t, key: id, function: f}\n");
  CHECK(latin1.line() == 5);
  CHECK_THAT(message(latin1), Contains("not UTF-8"));
  const auto escape = error_of(
      "version: 1\nlists:\n  - name: l\n    jobs:\n"
      "      - {name: \"evil\\e[2J\", table: t, key: id, function: f}\n");
  CHECK(escape.line() == 5);
  CHECK_THAT(message(escape), Contains("a control character"));
  CHECK_THAT(message(error_of("version: 1\nlists:\n  - name: \"l\\r\\n12:00:00 info forged\"\n"
                              "    jobs: [{name: s, sql: SELECT 1}]\n")),
             Contains("a control character"));
}

TEST_CASE("a job or list named with '=' is refused at its line: pause and set could not name it") {
  const auto job = error_of(
      "version: 1\nlists:\n  - name: l\n    jobs:\n"
      "      - {name: s, sql: SELECT 1}\n"
      "      - name: k=v\n        sql: SELECT 1\n");
  CHECK(job.line() == 6);
  CHECK_THAT(message(job), Contains("the name of job 'k=v' holds '='") &&
                               Contains("pgxform pause and set read NAME=VALUE as a setting"));
  const auto list = error_of(
      "version: 1\nlists:\n  - name: l\n    jobs: [{name: s, sql: SELECT 1}]\n"
      "  - name: batch_size=5\n    jobs: [{name: t, sql: SELECT 1}]\n");
  CHECK(list.line() == 5);
  CHECK_THAT(message(list), Contains("the name of list 'batch_size=5' holds '='"));
  CHECK_FALSE(steering_flaw("a-b.c#1"));
  CHECK(steering_flaw("a=b"));
}

TEST_CASE("a complex YAML key is an error at its line, not a crash") {
  const auto top = error_of("version: 1\n? [a, b]\n: 1\nlists: []\n");
  CHECK(top.line() == 2);
  CHECK_THAT(message(top), Contains("plain name"));
  const auto in_job = error_of(
      "version: 1\nlists:\n  - name: l\n    jobs:\n      - name: j\n        ? {x: 1}\n"
      "        : y\n        sql: SELECT 1\n");
  CHECK(in_job.line() == 6);
}

TEST_CASE("names PostgreSQL would cut or refuse are refused: long identifiers, pg_ schemas") {
  const std::string long_name(64, 'a');
  CHECK_THAT(message(error_of("version: 1\nlists:\n  - name: l\n    jobs:\n"
                              "      - {name: j, table: legacy." +
                              long_name + ", key: id, function: f}\n")),
             Contains("longer than PostgreSQL's 63 bytes"));
  CHECK_THAT(message(error_of("version: 1\nlists:\n  - name: l\n    jobs:\n"
                              "      - {name: j, table: t, key: " +
                              long_name + ", function: f}\n")),
             Contains("63 bytes"));
  const auto catalog = error_of(
      "version: 1\nstate_schema: pg_catalog\nlists:\n  - name: l\n    jobs: [{name: s, sql: "
      "SELECT 1}]\n");
  CHECK(catalog.line() == 2);
  CHECK_THAT(message(catalog), Contains("PostgreSQL's own"));
  // 63 bytes is fine.
  CHECK_NOTHROW(
      parse_jobs_text("version: 1\nlists:\n  - name: l\n    jobs:\n"
                      "      - {name: j, table: legacy." +
                          std::string(63, 'a') + ", key: id, function: f}\n",
                      "jobs.yaml"));
}

TEST_CASE("numbers beyond what a run can do are refused: parallel, threads, batch_size") {
  const auto job = [](const std::string& field) {
    return "version: 1\nlists:\n  - name: l\n    jobs:\n"
           "      - {name: j, table: t, key: id, function: f, " +
           field + "}\n";
  };
  CHECK_THAT(message(error_of(job("parallel: 2147483647"))), Contains("at most 1024"));
  CHECK_THAT(message(error_of(job("batch_size: 9223372036854775807"))),
             Contains("at most 1000000000"));
  CHECK_THAT(message(error_of("version: 1\ndefaults: {threads: 100000}\nlists:\n  - name: l\n"
                              "    jobs: [{name: s, sql: SELECT 1}]\n")),
             Contains("at most 1024"));
  CHECK_NOTHROW(parse_jobs_text(job("parallel: 1024, batch_size: 1000000000"), "jobs.yaml"));
}

TEST_CASE("a one-shot step may not end its own transaction") {
  const auto e = error_of(
      "version: 1\nlists:\n  - name: l\n    jobs:\n"
      "      - {name: s, sql: \"INSERT INTO t VALUES (1); COMMIT; SELECT 1/0\"}\n");
  CHECK(e.line() == 5);
  CHECK_THAT(message(e), Contains("holds COMMIT"));
  CHECK_NOTHROW(
      parse_jobs_text("version: 1\nlists:\n  - name: l\n    jobs:\n"
                      "      - {name: s, sql: \"DO $$BEGIN COMMIT; END$$\"}\n",
                      "jobs.yaml"));
}

TEST_CASE(
    "a chain of 10,000 lists is checked without recursion, and more lists than that are refused") {
  const auto chain = [](int n) {
    std::string text = "version: 1\nlists:\n";
    for (int i = 0; i < n; ++i) {
      text += "  - {name: l" + std::to_string(i) + ", jobs: [{name: j" + std::to_string(i) +
              ", sql: SELECT 1}]";
      if (i > 0) text += ", after: [l" + std::to_string(i - 1) + "]";
      text += "}\n";
    }
    return text;
  };
  const JobsFile file = parse_jobs_text(chain(10000), "jobs.yaml");
  CHECK(file.lists.size() == 10000);
  CHECK_THAT(message(error_of(chain(10001))), Contains("at most 10000"));
  // A cycle through the whole chain is still named.
  std::string cyclic = chain(3000);
  cyclic.replace(cyclic.find("{name: l0, jobs: [{name: j0, sql: SELECT 1}]"),
                 std::string("{name: l0, jobs: [{name: j0, sql: SELECT 1}]").size(),
                 "{name: l0, jobs: [{name: j0, sql: SELECT 1}], after: [l2999]");
  CHECK_THAT(message(error_of(cyclic)), Contains("'after' forms a cycle"));
}

TEST_CASE("a NUL byte is refused in every string field, whichever it is") {
  const std::string base = R"(version: 1
state_schema: st
scripts_dir: sql
lists:
  - name: a
    jobs:
      - {name: x, table: t, key: id, function: f, verify: "SELECT 1"}
  - name: b
    after: [a]
    jobs: [{name: s, sql: SELECT 1}]
)";
  for (const auto& [from, to] :
       {std::pair<std::string, std::string>{"state_schema: st", "state_schema: \"s\\0t\""},
        {"scripts_dir: sql", "scripts_dir: \"s\\0ql\""},
        {"- name: a\n", "- name: \"a\\0\"\n"},
        {"verify: \"SELECT 1\"", "verify: \"SELECT 1\\0\""},
        {"after: [a]", "after: [\"a\\0\"]"},
        {"sql: SELECT 1}", "sql: \"SELECT\\0 1\"}"}}) {
    std::string text = base;
    text.replace(text.find(from), from.size(), to);
    INFO(text);
    const auto e = error_of(text);
    CHECK(e.line() > 0);
    CHECK_THAT(message(e), Contains("a NUL byte"));
  }
}

TEST_CASE("batch sizing: time-sized by default, the job's own fields over the defaults'") {
  const JobsFile file = parse_jobs_text(R"(version: 1
defaults: {target_batch_ms: 800, min_batch_size: 50, synchronous_commit: off}
lists:
  - name: a
    jobs:
      - {name: inherited, table: t, key: id, function: f}
      - {name: own, table: t, key: id, function: f, target_batch_ms: 0, max_batch_size: 5000,
         synchronous_commit: on}
)",
                                        "jobs.yaml");
  const auto& inherited = file.find_job("inherited")->settings;
  CHECK(inherited.target_batch_ms == 800);
  CHECK(inherited.min_batch_size == 50);
  CHECK(inherited.max_batch_size == 1000000);
  CHECK(inherited.synchronous_commit == pgxform::SynchronousCommit::off);
  const auto& own = file.find_job("own")->settings;
  CHECK(own.target_batch_ms == 0);
  CHECK(own.min_batch_size == 50);
  CHECK(own.max_batch_size == 5000);
  CHECK(own.synchronous_commit == pgxform::SynchronousCommit::on);

  const JobsFile plain = parse_jobs_text(R"(version: 1
lists:
  - name: a
    jobs:
      - {name: x, table: t, key: id, function: f}
)",
                                         "jobs.yaml");
  const auto& x = plain.find_job("x")->settings;
  CHECK(x.target_batch_ms == 500);
  CHECK(x.min_batch_size == 100);
  CHECK(x.max_batch_size == 1000000);
  CHECK(x.synchronous_commit == pgxform::SynchronousCommit::off);  // the default
}

TEST_CASE("bad batch sizing fields are errors on their line") {
  SECTION("min_batch_size above max_batch_size") {
    auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        table: t
        key: id
        function: f
        min_batch_size: 900
        max_batch_size: 800
)");
    CHECK(e.line() == 10);
    CHECK_THAT(message(e), Contains("min_batch_size") && Contains("above") &&
                               Contains("max_batch_size") && Contains("job 'x'"));
  }
  SECTION("a negative target") {
    auto e = error_of(R"(version: 1
defaults:
  target_batch_ms: -5
lists:
  - name: a
    jobs:
      - {name: x, sql: SELECT 1}
)");
    CHECK(e.line() == 3);
    CHECK_THAT(message(e), Contains("target_batch_ms"));
  }
  SECTION("synchronous_commit neither on nor off") {
    auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        table: t
        key: id
        function: f
        synchronous_commit: local
)");
    CHECK(e.line() == 9);
    CHECK_THAT(message(e), Contains("synchronous_commit of job 'x' must be on or off"));
  }
  SECTION("a batch sizing field on a one-shot step") {
    auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        sql: SELECT 1
        target_batch_ms: 100
)");
    CHECK(e.line() == 7);
    CHECK_THAT(message(e), Contains("'target_batch_ms' does not apply to the one-shot step"));
  }
}

TEST_CASE("throttle limits come from defaults, and a job's own override them one by one") {
  const JobsFile file = parse_jobs_text(R"(version: 1
defaults:
  throttle: {max_xact_age_s: 60, max_active_sessions: 20}
lists:
  - name: a
    jobs:
      - {name: x, table: t, key: id, function: f, throttle: {max_active_sessions: 5}}
      - {name: y, table: t, key: id, function: f}
)",
                                        "jobs.yaml");
  const auto& x = file.find_job("x")->settings.throttle;
  CHECK(*x.max_xact_age_s == 60);
  CHECK(*x.max_active_sessions == 5);
  CHECK_FALSE(x.max_replica_lag_s);
  CHECK(*file.find_job("y")->settings.throttle.max_active_sessions == 20);
  CHECK_FALSE(parse_jobs_text(k_example, "jobs.yaml").defaults.throttle.any());
}

TEST_CASE("an unknown throttle signal or a limit that is not a positive number is an error") {
  auto unknown = error_of(R"(version: 1
defaults:
  throttle:
    max_lag: 10
lists: []
)");
  CHECK(unknown.line() == 4);
  CHECK_THAT(message(unknown), Contains("unknown field 'max_lag' in defaults.throttle") &&
                                   Contains("max_replica_lag_s"));
  auto zero = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        table: t
        key: id
        function: f
        throttle: {max_xact_age_s: 0}
)");
  CHECK(zero.line() == 9);
  CHECK_THAT(message(zero),
             Contains("throttle of job 'x'.max_xact_age_s must be a positive integer"));
}

TEST_CASE("changes: trigger with a refresh_function makes a capturing job") {
  const JobsFile file = parse_jobs_text(R"(version: 1
lists:
  - name: a
    jobs:
      - name: users
        table: legacy.users
        key: id
        function: xf.users
        changes: trigger
        refresh_function: xf.users_refresh
      - name: plain
        table: legacy.plain
        key: id
        function: xf.plain
)",
                                        "jobs.yaml");
  const auto* users = file.find_job("users");
  CHECK(users->captures());
  CHECK(users->refresh_function.text() == "xf.users_refresh");
  CHECK_FALSE(file.find_job("plain")->captures());
}

TEST_CASE("changes: trigger without a refresh_function is an error at the changes line") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: users
        table: legacy.users
        key: id
        function: xf.users
        changes: trigger
)");
  CHECK(e.line() == 9);
  CHECK_THAT(message(e), Contains("job 'users' has changes: trigger but no refresh_function"));
}

TEST_CASE(
    "changes other than trigger, logical or none, and a refresh_function without changes, are "
    "errors") {
  auto other = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: users
        table: legacy.users
        key: id
        function: xf.users
        changes: wal2json
        refresh_function: xf.users_refresh
)");
  CHECK(other.line() == 9);
  CHECK_THAT(message(other), Contains("changes of job 'users' must be trigger, logical or none"));
  auto lonely = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: users
        table: legacy.users
        key: id
        function: xf.users
        refresh_function: xf.users_refresh
)");
  CHECK(lonely.line() == 9);
  CHECK_THAT(message(lonely), Contains("refresh_function of job 'users' is only used with "
                                       "changes: trigger or logical"));
  auto step = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: s
        sql: SELECT 1
        changes: trigger
)");
  CHECK(step.line() == 7);
  CHECK_THAT(message(step), Contains("'changes' does not apply to the one-shot step"));
}

TEST_CASE("changes: logical, alone or with also, makes a job that captures through the slot") {
  const JobsFile file = parse_jobs_text(R"(version: 1
max_slot_retained_mb: 512
lists:
  - name: a
    jobs:
      - name: users
        table: legacy.users
        key: id
        function: xf.users
        changes: logical
        refresh_function: xf.users_refresh
      - name: lines
        table: legacy.lines
        key: id
        function: xf.lines
        changes: {mode: logical, also: [{table: legacy.orders, column: id, match: order_id}]}
        refresh_function: xf.lines_refresh
)",
                                        "jobs.yaml");
  CHECK(file.max_slot_retained_mb == 512);
  CHECK(file.find_job("users")->changes == pgxform::ChangeCapture::logical);
  CHECK(file.find_job("users")->captures());
  CHECK(file.find_job("lines")->changes == pgxform::ChangeCapture::logical);
  CHECK(file.find_job("lines")->also.size() == 1);
  CHECK(parse_jobs_text("version: 1\nlists: [{name: a, jobs: [{name: s, sql: SELECT 1}]}]\n",
                        "jobs.yaml")
            .max_slot_retained_mb == pgxform::k_default_max_slot_retained_mb);
  auto zero = error_of("version: 1\nmax_slot_retained_mb: 0\nlists: []\n");
  CHECK(zero.line() == 2);
  CHECK_THAT(message(zero), Contains("max_slot_retained_mb must be a positive integer"));
}

TEST_CASE("defaults.changes captures every batched job that does not say changes: none") {
  const JobsFile file = parse_jobs_text(R"(version: 1
defaults: {changes: logical}
lists:
  - name: a
    jobs:
      - name: users
        table: legacy.users
        key: id
        function: xf.users
        refresh_function: xf.users_refresh
      - name: notes
        table: legacy.notes
        key: id
        function: xf.notes
        changes: none
      - name: tags
        table: legacy.tags
        key: id
        function: xf.tags
        changes: trigger
        refresh_function: xf.tags_refresh
      - name: analyze
        sql: ANALYZE
)",
                                        "jobs.yaml");
  CHECK(file.default_changes == pgxform::ChangeCapture::logical);
  CHECK(file.find_job("users")->changes == pgxform::ChangeCapture::logical);
  CHECK(file.find_job("notes")->changes == pgxform::ChangeCapture::none);
  CHECK(file.find_job("tags")->changes == pgxform::ChangeCapture::trigger);
  CHECK_FALSE(file.find_job("analyze")->captures());
  // A job the default makes capture needs a refresh function: said at the job's line.
  auto missing = error_of(R"(version: 1
defaults: {changes: trigger}
lists:
  - name: a
    jobs:
      - name: users
        table: legacy.users
        key: id
        function: xf.users
)");
  CHECK(missing.line() == 6);
  CHECK_THAT(message(missing), Contains("job 'users' has changes: trigger (from defaults.changes)"
                                        " but no refresh_function") &&
                                   Contains("changes: none"));
  auto bad = error_of("version: 1\ndefaults: {changes: yes}\nlists: []\n");
  CHECK(bad.line() == 2);
  CHECK_THAT(message(bad), Contains("defaults.changes must be trigger, logical or none"));
  auto also = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: users
        table: legacy.users
        key: id
        function: xf.users
        changes: {mode: none, also: [{table: legacy.orders, column: id, match: order_id}]}
)");
  CHECK_THAT(message(also), Contains("needs a mode that captures"));
}

TEST_CASE("every jobs file of the fuzz corpus is read, or refused as bad input at its line") {
  const std::filesystem::path corpus =
      std::filesystem::path(PGXFORM_SOURCE_DIR) / "tests/fuzz/corpus/jobs_file";
  int inputs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    INFO(entry.path());
    CHECK(pgxform_fuzz::jobs_file_input(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                        bytes.size()));
    ++inputs;
  }
  CHECK(inputs >= 4);
}

TEST_CASE("changes as a mapping names the other tables the transform reads in also") {
  const JobsFile file = parse_jobs_text(R"(version: 1
lists:
  - name: a
    jobs:
      - name: lines
        table: legacy.order_lines
        key: id
        function: xf.lines
        changes:
          mode: trigger
          also:
            - {table: legacy.orders, column: id, match: order_id}
            - table: legacy.customers
              column: id
              keys_function: xf.lines_of_customers
        refresh_function: xf.lines_refresh
)",
                                        "jobs.yaml");
  const auto* lines = file.find_job("lines");
  REQUIRE(lines->captures());
  REQUIRE(lines->also.size() == 2);
  CHECK(lines->also[0].table.text() == "legacy.orders");
  CHECK(lines->also[0].column == "id");
  CHECK(lines->also[0].match == "order_id");
  CHECK(lines->also[0].line == 12);
  CHECK(lines->also[1].keys_function.text() == "xf.lines_of_customers");
  CHECK(lines->also[1].match.empty());
  CHECK(lines->also[1].line == 13);
}

TEST_CASE("a changes mapping without its mode, or an also entry that is not whole, is an error") {
  const auto with_changes = [](const std::string& changes) {
    return "version: 1\n"
           "lists:\n"
           "  - name: a\n"
           "    jobs:\n"
           "      - name: lines\n"
           "        table: legacy.order_lines\n"
           "        key: id\n"
           "        function: xf.lines\n"
           "        changes:\n" +
           changes + "        refresh_function: xf.lines_refresh\n";
  };
  auto no_mode = error_of(with_changes("          also: [{table: t, column: id, match: x}]\n"));
  CHECK_THAT(message(no_mode), Contains("missing required field 'mode' in changes of job 'lines'"));
  auto other_mode = error_of(with_changes("          mode: binlog\n"));
  CHECK(other_mode.line() == 10);
  CHECK_THAT(message(other_mode),
             Contains("changes of job 'lines' must be trigger, logical or none"));
  auto empty = error_of(with_changes("          mode: trigger\n          also: []\n"));
  CHECK_THAT(message(empty), Contains("'also' in changes of job 'lines' must be a non-empty list"));
  auto both =
      error_of(with_changes("          mode: trigger\n"
                            "          also:\n"
                            "            - {table: t, column: id, match: x, keys_function: f}\n"));
  CHECK(both.line() == 12);
  CHECK_THAT(message(both), Contains("needs exactly one of 'match'"));
  auto no_column =
      error_of(with_changes("          mode: trigger\n          also: [{table: t, match: x}]\n"));
  CHECK_THAT(message(no_column), Contains("missing required field 'column'"));
  auto typo = error_of(with_changes("          mode: trigger\n          alsoo: []\n"));
  CHECK_THAT(message(typo), Contains("unknown field 'alsoo' in changes of job 'lines'"));
}

TEST_CASE("writes lists the tables a job's function writes, each a qualified name") {
  const JobsFile file = parse_jobs_text(R"(version: 1
lists:
  - name: a
    jobs:
      - name: users
        table: legacy.users
        key: id
        function: xf.users
        writes: [target.users, '"Odd Schema"."user roles"', plain]
      - name: other
        table: legacy.other
        key: id
        function: xf.other
)",
                                        "jobs.yaml");
  const auto& writes = file.find_job("users")->writes;
  REQUIRE(writes.size() == 3);
  CHECK(writes[0].text() == "target.users");
  CHECK(writes[1].schema == "Odd Schema");
  CHECK(writes[1].name == "user roles");
  CHECK(writes[2].schema.empty());
  CHECK(file.find_job("other")->writes.empty());
}

TEST_CASE("writes that is no list of tables is an error on its line, and so on a step") {
  auto e = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: users
        table: legacy.users
        key: id
        function: xf.users
        writes: target.users
)");
  CHECK(e.line() == 9);
  CHECK_THAT(message(e), Contains("'writes' of job 'users' must be a list of tables"));
  auto step = error_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: analyze
        sql: ANALYZE target.users
        writes: [target.users]
)");
  CHECK(step.line() == 7);
  CHECK_THAT(message(step), Contains("'writes' does not apply to the one-shot step"));
}
