// The command line before any database: a mistyped command and an option out of range are
// usage errors (exit 2) whose message says what would have been right.
#include "cli/cli.h"

#include <catch2/catch.hpp>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Result {
  int exit_code;
  std::string err;
  std::string out;
};

// pgxform in this process, its messages (std::cerr) captured.
Result run(const std::vector<std::string>& args) {
  std::vector<const char*> argv{"pgxform"};
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  std::streambuf* old = std::cerr.rdbuf(err.rdbuf());
  const int code = pgxform::run_cli(int(argv.size()), argv.data(), out);
  std::cerr.rdbuf(old);
  return {code, err.str(), out.str()};
}

}  // namespace

TEST_CASE("a mistyped command exits 2 with a did-you-mean suggestion") {
  const Result r = run({"statu"});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("unknown command 'statu'; did you mean 'status'?"));
  const Result swapped = run({"retry-fialed", "items"});
  CHECK(swapped.exit_code == 2);
  CHECK_THAT(swapped.err, Catch::Contains("did you mean 'retry-failed'?"));
  // A word far from every command gets the list of commands instead.
  const Result far = run({"frobnicate"});
  CHECK(far.exit_code == 2);
  CHECK_THAT(far.err, !Catch::Contains("did you mean") && Catch::Contains("commands:") &&
                          Catch::Contains("status"));
}

TEST_CASE("a --threads out of range exits 2 saying that 0 and 1 to 1024 are accepted") {
  for (const std::string command : {"run", "plan", "rehearse"})
    for (const std::string threads : {"-1", "1025"}) {
      const Result r = run({command, "-f", "/nonexistent/jobs.yaml", "--threads", threads});
      INFO(command << " --threads " << threads << ": " << r.err);
      CHECK(r.exit_code == 2);
      CHECK_THAT(r.err, Catch::Contains("--threads must be 0 (the jobs file's defaults.threads)"
                                        " or a number of threads from 1 to 1024"));
    }
  // 0 passes the check: the jobs file is what is missing then.
  const Result zero = run({"run", "-f", "/nonexistent/jobs.yaml", "--threads", "0"});
  CHECK(zero.exit_code == 2);
  CHECK_THAT(zero.err, !Catch::Contains("--threads"));
}

TEST_CASE("init is listed first, reads no jobs file, and needs --schema before it connects") {
  const Result help = run({"--help"});
  CHECK_THAT(help.out, Catch::Contains("commands:\n  init     write a starting migration"));
  const Result init_help = run({"init", "--help"});
  CHECK(init_help.exit_code == 0);
  CHECK_THAT(init_help.out, Catch::Contains("usage: pgxform init --schema SCHEMA") &&
                                Catch::Contains("--target-schema") && Catch::Contains("--dir") &&
                                !Catch::Contains("--file"));
  const Result no_schema = run({"init", "--dsn", "host=/nonexistent"});
  CHECK(no_schema.exit_code == 2);
  CHECK_THAT(no_schema.err, Catch::Contains("init needs --schema, the legacy schema to copy "
                                            "(see pgxform init --help)"));
  const Result file = run({"init", "--schema", "legacy", "-f", "jobs.yaml"});
  CHECK(file.exit_code == 2);
  CHECK_THAT(file.err, Catch::Contains("unrecognised option '-f'"));
}

TEST_CASE("status --watch takes seconds from 0.1 to 3600 and status no job names, else exit 2") {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"status", "-f", "/nonexistent/jobs.yaml", "--watch", "soon"},
           {"status", "-f", "/nonexistent/jobs.yaml", "--watch=0"},
           {"status", "-f", "/nonexistent/jobs.yaml", "--watch", "3601"}}) {
    const Result r = run(args);
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--watch takes seconds from 0.1 to 3600"));
  }
  const Result named = run({"status", "-f", "/nonexistent/jobs.yaml", "items"});
  CHECK(named.exit_code == 2);
  CHECK_THAT(named.err, Catch::Contains("status takes no job names (unexpected 'items')"));
  // Good seconds pass the check, both ways of writing them: the jobs file is what is missing.
  for (const std::string watch : {"--watch=5", "--watch"}) {
    const Result ok = run({"status", "-f", "/nonexistent/jobs.yaml", watch});
    CHECK(ok.exit_code == 2);
    CHECK_THAT(ok.err, !Catch::Contains("--watch"));
  }
  const Result spaced = run({"status", "-f", "/nonexistent/jobs.yaml", "--watch", "0.5"});
  CHECK_THAT(spaced.err, !Catch::Contains("--watch") && !Catch::Contains("job names"));
}

TEST_CASE("the log format is text or json, and anything else exits 2") {
  const Result r = run({"status", "-f", "/nonexistent/jobs.yaml", "--log-format", "xml"});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--log-format is text or json, not 'xml'"));
}

TEST_CASE(
    "run --lock-timeout takes a duration with its unit, more than 0, and anything else exits 2") {
  for (const std::string bad : {"30", "0s", "soon", "-5s", "5 days", "1.5s"}) {
    const Result r = run({"run", "-f", "/nonexistent/jobs.yaml", "--lock-timeout", bad});
    INFO(bad << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--lock-timeout takes a duration with its unit"));
  }
  for (const std::string good : {"30s", "500ms", "5min", "1h", "2 s"}) {
    const Result r = run({"run", "-f", "/nonexistent/jobs.yaml", "--lock-timeout", good});
    INFO(good << ": " << r.err);
    CHECK(r.exit_code == 2);  // the jobs file is what is missing
    CHECK_THAT(r.err, !Catch::Contains("--lock-timeout"));
  }
}

TEST_CASE("an unknown command or option exits 2") {
  CHECK(run({"frobnicate"}).exit_code == 2);
  CHECK(run({"run", "--batchsize", "3"}).exit_code == 2);
  CHECK(run({}).exit_code == 2);
}

TEST_CASE("help is printed for the program and for each command") {
  const Result top = run({"--help"});
  CHECK(top.exit_code == 0);
  CHECK_THAT(top.out, Catch::Contains("run") && Catch::Contains("status"));
  for (const char* command : {"run", "status"}) {
    const Result r = run({command, "--help"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains(std::string("usage: pgxform ") + command) &&
                          Catch::Contains("--dsn"));
  }
}
