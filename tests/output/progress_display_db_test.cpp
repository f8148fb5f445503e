// What status and run tell of running jobs (status_command.h, progress_display.h), against a
// real PostgreSQL and real runner processes: status --json's rate, ETA, batch size and waiting
// reasons during a run; run's progress lines on a pipe, every interval; the runner that holds a
// job, as another run sees it; --log-format json.
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

namespace {

Json status_of(TestDatabase& db, const std::string& path, const std::string& job) {
  return job_in(parse_json(run_with_db(db, path, {"status", "--json"}).out), job);
}

// items (list main), then a step in a list after main.
std::string main_and_after_lists_yaml(int batch_size) {
  return items_jobs_yaml(batch_size) +
         "  - name: later\n"
         "    after: [main]\n"
         "    jobs:\n"
         "      - name: tally\n"
         "        sql: SELECT 1\n";
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

long count_containing(const std::string& text, const std::string& what) {
  long n = 0;
  for (const auto& line : lines_of(text))
    if (line.find(what) != std::string::npos) ++n;
  return n;
}

// The child's progress lines come every `ms` milliseconds.
std::function<void()> progress_every(int ms) {
  return [ms] { setenv("PGXFORM_PROGRESS_INTERVAL_MS", std::to_string(ms).c_str(), 1); };
}

}  // namespace

TEST_CASE("status --json tells a running job's rate, ETA, batch size and what it waits for",
          "[live]") {
  TestDatabase db;
  create_items(db, 3000, 150);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", main_and_after_lists_yaml(100));
  Child child({"run", "-f", path, "--dsn", db.dsn()}, dir.path());
  wait_until([&] { return status_of(db, path, "items")["rows_done"].get<long long>() >= 300; });

  Json items = status_of(db, path, "items");
  CHECK(items["status"] == "running");
  CHECK(items["rows_per_s"].get<double>() > 0);
  CHECK(items["eta_s"].is_number());
  CHECK(items["batch_size"] == 100);
  CHECK(items["waiting"].is_null());
  CHECK(status_of(db, path, "tally")["waiting"] == "waiting for list main");
  const std::string table = run_with_db(db, path, {"status"}).out;
  INFO(table);
  CHECK_THAT(table, Catch::Contains("RATE      ETA    BATCH  LAST KEY"));
  CHECK_THAT(table, Catch::Contains("    waiting for list main\n"));

  REQUIRE(run_with_db(db, path, {"pause", "items"}).exit_code == 0);
  wait_until([&] { return status_of(db, path, "items")["waiting"] == "paused"; });
  CHECK(status_of(db, path, "tally")["waiting"] == "waiting for list main");
  // The size set live is the size status shows, once a batch asked for it.
  REQUIRE(run_with_db(db, path, {"set", "items", "batch_size=40"}).exit_code == 0);
  REQUIRE(run_with_db(db, path, {"resume", "items"}).exit_code == 0);
  wait_until([&] { return status_of(db, path, "items")["batch_size"] == 40; });
  CHECK(child.wait() == 0);

  items = status_of(db, path, "items");
  CHECK(items["status"] == "done");
  CHECK(items["rows_per_s"].is_null());
  CHECK(items["eta_s"].is_null());
  CHECK(items["batch_size"] == 40);
  CHECK(status_of(db, path, "tally")["waiting"].is_null());
}

TEST_CASE("on a pipe, run prints one progress line per running job every interval", "[live]") {
  TestDatabase db;
  create_items(db, 2000, 50);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  Child child({"run", "-f", path, "--dsn", db.dsn()}, dir.path(), progress_every(200));
  REQUIRE(child.wait() == 0);
  const std::string err = child.err();
  INFO(err);
  // 20 batches of at least 50 ms: at least a second of work, five intervals or more.
  CHECK(count_containing(err, " batches this run, last key ") >= 3);
  CHECK(count_containing(err, " %, ETA ") >= 1);
  CHECK(err.find('\x1b') == std::string::npos);  // no terminal escape on a pipe
  CHECK_THAT(err, Catch::Contains("items: done, 2000 rows in 20 batches this run"));
}

TEST_CASE("on a pipe, a short run prints no progress line before its 10 s are up", "[live]") {
  TestDatabase db;
  create_items(db, 300, 0);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  Child child({"run", "-f", path, "--dsn", db.dsn()}, dir.path(),
              [] { unsetenv("PGXFORM_PROGRESS_INTERVAL_MS"); });
  REQUIRE(child.wait() == 0);
  INFO(child.err());
  CHECK(count_containing(child.err(), " batches this run, last key ") == 0);
  CHECK(count_containing(child.err(), "items: done, 300 rows in 3 batches this run") == 1);
}

TEST_CASE("a second run says which runner holds the job it waits for", "[live]") {
  TestDatabase db;
  create_items(db, 500, 20);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run_with_db(db, path, {"pause", "items"}).exit_code == 0);
  Child first({"run", "-f", path, "--dsn", db.dsn()}, dir.path());
  wait_until([&] { return first.err().find("items: paused") != std::string::npos; });
  const std::string holder = status_of(db, path, "items")["runner"];
  CHECK_THAT(holder, Catch::EndsWith(":" + std::to_string(first.pid())));
  // The job is held and paused: status says paused, and who holds it.
  CHECK(status_of(db, path, "items")["waiting"] == "paused");

  Child second({"run", "-f", path, "--dsn", db.dsn()}, dir.path(), progress_every(200));
  wait_until(
      [&] { return count_containing(second.err(), "items: 0 rows in 0 batches this run") >= 2; });
  second.kill(SIGINT);
  CHECK(second.wait() == 3);
  INFO(second.err());
  CHECK(count_containing(second.err(), "; held by " + holder) >= 2);

  REQUIRE(run_with_db(db, path, {"resume", "items"}).exit_code == 0);
  CHECK(first.wait() == 0);
  CHECK(missing_items(db) == 0);
}

TEST_CASE("a run with --log-format json writes every line as a JSON object, passwords hidden",
          "[live]") {
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
