// `pgxform run --metrics-port N` as a real process, scraped over plain HTTP while it works: the
// counters move between two scrapes, promtool accepts the text, a pause, a throttle and a done
// job show; a port in use stops the run before anything is written.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "output/run_metrics.h"
#include "support/fixtures.h"
#include "support/prerequisite.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

// A TCP socket listening on 127.0.0.1 on a port the system chose: a port in use, or, once
// closed, a port that was free a moment ago.
class Listener {
 public:
  Listener() {
    m_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(m_fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(m_fd, 1) == 0);
    socklen_t size = sizeof addr;
    REQUIRE(::getsockname(m_fd, reinterpret_cast<sockaddr*>(&addr), &size) == 0);
    m_port = ntohs(addr.sin_port);
  }
  ~Listener() { close(); }
  int port() const { return m_port; }
  void close() {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = -1;
  }

 private:
  int m_fd = -1;
  int m_port = 0;
};

int free_port() {
  Listener listener;
  return listener.port();
}

// GET /metrics on 127.0.0.1:`port`, by hand: the body; "" when nothing answers (yet).
std::string scrape(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(std::uint16_t(port));
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request =
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, request.data(), request.size(), 0) == ssize_t(request.size())) {
      char buffer[4096];
      for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;)
        response.append(buffer, std::size_t(n));
    }
  }
  ::close(fd);
  const auto body = response.find("\r\n\r\n");
  if (response.compare(0, 12, "HTTP/1.1 200") != 0 || body == std::string::npos) return "";
  return response.substr(body + 4);
}

// The value of series `series` (name{labels}) in a scrape; -1 when it is not there.
double value_in(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.compare(0, series.size() + 1, series + " ") == 0)
      return std::stod(line.substr(series.size() + 1));
  return -1;
}

// Polls the endpoint until `series` is over `floor`; returns that scrape.
std::string scrape_until_over(int port, const std::string& series, double floor) {
  std::string text;
  wait_until([&] {
    text = scrape(port);
    return value_in(text, series) > floor;
  });
  return text;
}

bool promtool_installed() {
  return std::system("command -v promtool >/dev/null 2>&1") == 0;
}

// promtool's exit code on `text` (check metrics: the format and the naming conventions), its
// findings in `findings`.
int promtool_check(const TempDir& dir, const std::string& text, std::string& findings) {
  const std::string in = dir.write("scrape.txt", text);
  const std::string out = dir.path() + "/promtool.out";
  const int status =
      std::system(("promtool check metrics < " + in + " > " + out + " 2>&1").c_str());
  std::ifstream file(out);
  findings.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  return WEXITSTATUS(status);
}

std::vector<std::string> metrics_run(TestDatabase& db, const std::string& path, int port) {
  return {"run", "-f", path, "--dsn", db.dsn(), "--metrics-port", std::to_string(port)};
}

}  // namespace

TEST_CASE("a run's metrics, scraped twice while it works, move and pass promtool",
          "[metrics][threads]") {
  TestDatabase db;
  create_items(db, 1000, 0);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(20));
  // 50 batches a quarter of a second apart: the run lasts until the test lets it go.
  REQUIRE(run_cli(with_db(db, path, {"set", "items", "pause_ms=250"})).exit_code == 0);
  const int port = free_port();
  Child child(metrics_run(db, path, port), dir.path());

  const std::string rows = "pgxform_rows_total{job=\"items\",phase=\"main\"}";
  const std::string first = scrape_until_over(port, rows, 0);
  const std::string second = scrape_until_over(port, rows, value_in(first, rows));
  INFO(first << "\n----\n" << second);
  const std::string batches = "pgxform_batches_total{job=\"items\",phase=\"main\"}";
  CHECK(value_in(second, batches) > value_in(first, batches));
  CHECK(value_in(second, "pgxform_batch_duration_seconds_count{job=\"items\",phase=\"main\"}") >
        value_in(first, "pgxform_batch_duration_seconds_count{job=\"items\",phase=\"main\"}"));
  CHECK(value_in(second, "pgxform_batch_size{job=\"items\",phase=\"main\"}") == 20);
  CHECK(value_in(second, "pgxform_job_done{job=\"items\"}") == 0);
  CHECK(value_in(second, "pgxform_paused{job=\"items\",phase=\"main\"}") == 0);
  CHECK(value_in(second, "pgxform_failed_batches_total{job=\"items\",phase=\"main\"}") == 0);
  for (const auto& name : pgxform::k_metric_names) {
    INFO(name);
    CHECK_THAT(second, Catch::Contains("# TYPE " + name + " "));
  }
  if (prerequisite(promtool_installed(),
                   "promtool is not installed (Debian package prometheus): the scrape was not "
                   "checked")) {
    std::string findings;
    const int code = promtool_check(dir, second, findings);
    INFO(findings);
    CHECK(code == 0);
    CHECK(findings.empty());
  }

  REQUIRE(run_cli(with_db(db, path, {"set", "items", "pause_ms=0"})).exit_code == 0);
  INFO(child.err());
  CHECK(child.wait() == 0);
  CHECK_THAT(
      child.err(),
      Catch::Contains("serving metrics on http://127.0.0.1:" + std::to_string(port) + "/metrics"));
  CHECK(missing_items(db) == 0);
}

TEST_CASE("a metrics port in use stops the run with exit 2 before anything is written",
          "[metrics]") {
  TestDatabase db;
  create_items(db, 100, 0);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(20));
  Listener taken;
  Child child(metrics_run(db, path, taken.port()), dir.path());
  CHECK(child.wait() == 2);
  INFO(child.err());
  const std::string port = std::to_string(taken.port());
  CHECK_THAT(child.err(), Catch::Contains("--metrics-port " + port));
  CHECK_THAT(child.err(), Catch::Contains("127.0.0.1:" + port));
  CHECK_FALSE(db.schema_exists("pgxform"));
  CHECK(db.count("SELECT count(*) FROM target.items") == 0);
}

TEST_CASE("a metrics address that is not this host's stops the run with exit 2, nothing written",
          "[metrics]") {
  TestDatabase db;
  create_items(db, 100, 0);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(20));
  // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): no host has it.
  auto args = metrics_run(db, path, free_port());
  args.insert(args.end(), {"--metrics-address", "192.0.2.1"});
  const CliResult r = run_cli(args);
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("cannot listen on 192.0.2.1:"));
  CHECK_FALSE(db.schema_exists("pgxform"));
}

TEST_CASE("a paused job shows pgxform_paused 1 and a finished one pgxform_job_done 1",
          "[metrics][threads]") {
  TestDatabase db;
  create_items(db, 1000, 0);
  db.exec(
      "CREATE TABLE legacy.others (id int PRIMARY KEY); CREATE TABLE target.others (id int);"
      "INSERT INTO legacy.others SELECT generate_series(1, 250);"
      "CREATE FUNCTION xf.others(a int, b int) RETURNS void LANGUAGE sql AS"
      " 'INSERT INTO target.others SELECT id FROM legacy.others WHERE id BETWEEN a AND b'");
  TempDir dir;
  const auto path = dir.write(
      "jobs.yaml", items_jobs_yaml(20) +
                       "  - name: other\n"
                       "    jobs:\n"
                       "      - {name: others, table: legacy.others, key: id, function: xf.others,"
                       " batch_size: 50, target_batch_ms: 0}\n");
  REQUIRE(run_cli(with_db(db, path, {"set", "items", "pause_ms=250"})).exit_code == 0);
  const int port = free_port();
  auto args = metrics_run(db, path, port);
  args.insert(args.end(), {"--threads", "2"});
  Child child(args, dir.path());
  scrape_until_over(port, "pgxform_job_done{job=\"others\"}", 0);
  scrape_until_over(port, "pgxform_rows_total{job=\"items\",phase=\"main\"}", 0);
  REQUIRE(run_cli(with_db(db, path, {"pause", "items"})).exit_code == 0);
  const std::string paused =
      scrape_until_over(port, "pgxform_paused{job=\"items\",phase=\"main\"}", 0);
  INFO(paused);
  CHECK(value_in(paused, "pgxform_paused{job=\"others\",phase=\"main\"}") == 0);
  CHECK(value_in(paused, "pgxform_job_done{job=\"items\"}") == 0);
  CHECK(value_in(paused, "pgxform_job_done{job=\"others\"}") == 1);
  CHECK(value_in(paused, "pgxform_rows_total{job=\"others\",phase=\"main\"}") == 250);

  REQUIRE(run_cli(with_db(db, path, {"resume", "items"})).exit_code == 0);
  wait_until(
      [&] { return value_in(scrape(port), "pgxform_paused{job=\"items\",phase=\"main\"}") == 0; });
  REQUIRE(run_cli(with_db(db, path, {"set", "items", "pause_ms=0"})).exit_code == 0);
  INFO(child.err());
  CHECK(child.wait() == 0);
  CHECK(missing_items(db) == 0);
}

TEST_CASE("seconds waited on a throttle count under the signal over its limit",
          "[metrics][threads]") {
  TestDatabase db;
  create_items(db, 300, 0);
  TempDir dir;
  const auto path = dir.write(
      "jobs.yaml", items_jobs_yaml(100, 1, "        throttle: {max_active_sessions: 1}\n"));
  // Two application sessions busy with a statement, until they are cancelled.
  BusySessions busy(db, 2);
  const int port = free_port();
  Child child(metrics_run(db, path, port), dir.path());
  const std::string throttled =
      "pgxform_throttled_seconds_total{job=\"items\",phase=\"main\",reason=\"max_active_"
      "sessions\"}";
  const std::string first = scrape_until_over(port, throttled, 0);
  // It goes on counting while the wait lasts, not only when the wait ends.
  const std::string second = scrape_until_over(port, throttled, value_in(first, throttled));
  INFO(second);
  CHECK(value_in(second, "pgxform_batches_total{job=\"items\",phase=\"main\"}") == 0);
  busy.end();
  INFO(child.err());
  CHECK(child.wait() == 0);
  CHECK(missing_items(db) == 0);
}

TEST_CASE("a sliced job's set-aside ranges count as failed batches under the job's own name",
          "[metrics][threads]") {
  TestDatabase db;
  create_items(db, 1000, 0);
  poisoned_items_function(db, 30);
  TempDir dir;
  const auto path = dir.write(
      "jobs.yaml", items_jobs_yaml(20, 2, "        on_error: skip\n        bisect: true\n"));
  REQUIRE(run_cli(with_db(db, path, {"set", "items", "pause_ms=250"})).exit_code == 0);
  const int port = free_port();
  auto args = metrics_run(db, path, port);
  args.insert(args.end(), {"--threads", "2"});
  Child child(args, dir.path());
  const std::string text =
      scrape_until_over(port, "pgxform_failed_batches_total{job=\"items\",phase=\"main\"}", 0);
  INFO(text);
  // The key 30 alone is set aside; the rest of its batch went through as ranges.
  CHECK(value_in(text, "pgxform_failed_batches_total{job=\"items\",phase=\"main\"}") == 1);
  long long series = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("pgxform_rows_total{", 0) == 0) ++series;
  CHECK(series == 1);  // both slices add to one series
  REQUIRE(run_cli(with_db(db, path, {"set", "items", "pause_ms=0"})).exit_code == 0);
  INFO(child.err());
  CHECK(child.wait() == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.failed_batches") == 1);
}

TEST_CASE("catch-up's metrics tell its phase: its batches, a pause and a throttle", "[metrics]") {
  TestDatabase db;
  create_items(db, 300, 0);
  db.exec(
      "CREATE FUNCTION xf.items_refresh(keys bigint[]) RETURNS void LANGUAGE sql AS $$"
      " DELETE FROM target.items t WHERE t.id = ANY (keys);"
      " INSERT INTO target.items SELECT id, v * 10 FROM legacy.items WHERE id = ANY (keys) $$");
  TempDir dir;
  const auto path =
      dir.write("jobs.yaml", items_jobs_yaml(20, 1,
                                             "        changes: trigger\n"
                                             "        refresh_function: xf.items_refresh\n"
                                             "        throttle: {max_active_sessions: 1}\n"));
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  db.exec("UPDATE legacy.items SET v = v + 1 WHERE id <= 300");
  REQUIRE(run_cli(with_db(db, path, {"pause", "items"})).exit_code == 0);
  const int port = free_port();
  Child child({"catch-up", "--follow", "-f", path, "--dsn", db.dsn(), "--metrics-port",
               std::to_string(port)},
              dir.path());
  const std::string paused =
      scrape_until_over(port, "pgxform_paused{job=\"items\",phase=\"catch_up\"}", 0);
  CHECK(value_in(paused, "pgxform_paused{job=\"items\",phase=\"main\"}") == 0);
  CHECK(value_in(paused, "pgxform_batches_total{job=\"items\",phase=\"catch_up\"}") == 0);
  {
    BusySessions busy(db, 2);
    REQUIRE(run_cli(with_db(db, path, {"resume", "items"})).exit_code == 0);
    scrape_until_over(port,
                      "pgxform_throttled_seconds_total{job=\"items\",phase=\"catch_up\","
                      "reason=\"max_active_sessions\"}",
                      0);
  }
  const std::string done =
      scrape_until_over(port, "pgxform_rows_total{job=\"items\",phase=\"catch_up\"}", 99);
  INFO(done);
  CHECK(value_in(done, "pgxform_batches_total{job=\"items\",phase=\"catch_up\"}") >= 5);
  CHECK(value_in(done, "pgxform_batch_size{job=\"items\",phase=\"catch_up\"}") > 0);
  CHECK(value_in(done, "pgxform_rows_total{job=\"items\",phase=\"main\"}") == 0);
  child.kill(SIGINT);
  INFO(child.err());
  CHECK(child.wait() == 0);
  CHECK(missing_items(db) == 0);
}

TEST_CASE(
    "a run's metrics hold the job's rows in all runs and its total, and every metric of the"
    " Grafana dashboard",
    "[metrics][threads]") {
  TestDatabase db;
  create_items(db, 1000, 0);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(20));
  REQUIRE(run_cli(with_db(db, path, {"set", "items", "pause_ms=100"})).exit_code == 0);
  // A first run, stopped after some batches: its rows are the job's before the second.
  {
    Child first(with_db(db, path, {"run"}), dir.path());
    wait_until([&] {
      return db.count("SELECT coalesce(max(rows_done), 0) FROM pgxform.job_state") >= 100;
    });
    first.kill(SIGINT);
    REQUIRE(first.wait() == 3);
  }
  const long long before = db.count("SELECT rows_done FROM pgxform.job_state");
  REQUIRE(run_cli(with_db(db, path, {"set", "items", "pause_ms=250"})).exit_code == 0);
  const int port = free_port();
  Child child(metrics_run(db, path, port), dir.path());
  const std::string rows = "pgxform_rows_total{job=\"items\",phase=\"main\"}";
  const std::string text = scrape_until_over(port, rows, 0);
  INFO(text);
  // This run's rows, and the job's in all: a scrape may fall between a batch's two counts.
  const double done = value_in(text, "pgxform_job_rows_done{job=\"items\"}");
  CHECK(done >= double(before) + value_in(text, rows) - 20);
  CHECK(done <= double(before) + value_in(text, rows) + 20);
  // The total as status estimates it: the rows done and the planner's above the cursor.
  const double total = value_in(text, "pgxform_job_rows_estimated{job=\"items\"}");
  CHECK(total >= 900);
  CHECK(total <= 1100);

  // Every metric the dashboard's expressions name is in the scrape; the slot's appear only
  // with a replication slot of changes: logical, which this run has not, and the fleet's only
  // in a fleet run (the fleet's test below).
  std::ifstream in(source_dir() + "/docs/grafana-dashboard.json");
  REQUIRE(in);
  const std::string dashboard{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const std::regex metric("pgxform_[a-z_]+");
  std::set<std::string> names;
  for (std::sregex_iterator it(dashboard.begin(), dashboard.end(), metric), end; it != end; ++it)
    names.insert(it->str());
  CHECK(names.count("pgxform_job_rows_done") == 1);
  for (std::string name : names) {
    for (const std::string suffix : {"_bucket", "_sum", "_count"})
      if (name.size() > suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
        name = name.substr(0, name.size() - suffix.size());
    if (name.rfind("pgxform_slot_", 0) == 0 || name.rfind("pgxform_fleet_", 0) == 0) continue;
    INFO(name);
    CHECK_THAT(text, Catch::Contains("# TYPE " + name + " "));
  }

  REQUIRE(run_cli(with_db(db, path, {"set", "items", "pause_ms=0"})).exit_code == 0);
  CHECK(child.wait() == 0);
  CHECK(missing_items(db) == 0);
}

TEST_CASE("a fleet run serves one endpoint: every job's series labelled by its target, and totals",
          "[metrics][fleet_run][threads]") {
  // Two targets, the second on the second server when there is one.
  TestDatabase first;
  std::unique_ptr<TestDatabase> other = second_server().empty()
                                            ? std::make_unique<TestDatabase>()
                                            : std::make_unique<TestDatabase>(second_server());
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(20));
  for (TestDatabase* db : {&first, other.get()}) {
    create_items(*db, 400, 0);
    // 20 batches a quarter of a second apart: the fleet lasts until the test lets it go.
    REQUIRE(run_cli(with_db(*db, path, {"set", "items", "pause_ms=250"})).exit_code == 0);
  }
  const auto targets =
      dir.write("targets.yaml", "targets:\n  - name: s1\n    dsn: \"" + first.dsn() +
                                    "\"\n  - name: s.2\n    dsn: \"" + other->dsn() + "\"\n");
  const int port = free_port();
  Child child({"run", "-f", path, "--targets", targets, "--threads", "2", "--metrics-port",
               std::to_string(port)},
              dir.path());

  const std::string rows1 = "pgxform_rows_total{job=\"items\",phase=\"main\",target=\"s1\"}";
  const std::string rows2 = "pgxform_rows_total{job=\"items\",phase=\"main\",target=\"s.2\"}";
  scrape_until_over(port, rows1, 0);
  const std::string text = scrape_until_over(port, rows2, 0);
  INFO(text);
  CHECK(value_in(text, rows1) > 0);
  CHECK(value_in(text, "pgxform_job_done{job=\"items\",target=\"s.2\"}") == 0);
  CHECK(value_in(text, "pgxform_batch_size{job=\"items\",phase=\"main\",target=\"s1\"}") == 20);
  // No series without its target: the job's name alone is every target's.
  CHECK_THAT(text, !Catch::Contains("phase=\"main\"}"));
  CHECK(value_in(text, "pgxform_fleet_targets{state=\"running\"}") == 2);
  CHECK(value_in(text, "pgxform_fleet_targets{state=\"waiting\"}") == 0);
  CHECK(value_in(text, "pgxform_fleet_worker_budget") == 2);
  CHECK(value_in(text, "pgxform_fleet_workers") >= 2);
  for (const auto& name : pgxform::k_metric_names) {
    INFO(name);
    CHECK_THAT(text, Catch::Contains("# TYPE " + name + " "));
  }
  for (const auto& name : pgxform::k_fleet_metric_names) {
    INFO(name);
    CHECK_THAT(text, Catch::Contains("# TYPE " + name + " "));
  }
  if (prerequisite(promtool_installed(),
                   "promtool is not installed (Debian package prometheus): the scrape was not "
                   "checked")) {
    std::string findings;
    const int code = promtool_check(dir, text, findings);
    INFO(findings);
    CHECK(code == 0);
    CHECK(findings.empty());
  }

  for (TestDatabase* db : {&first, other.get()})
    REQUIRE(run_cli(with_db(*db, path, {"set", "items", "pause_ms=0"})).exit_code == 0);
  INFO(child.err());
  CHECK(child.wait() == 0);
  CHECK_THAT(child.err(), Catch::Contains("serving the fleet's metrics on http://127.0.0.1:" +
                                          std::to_string(port) + "/metrics"));
  CHECK(missing_items(first) == 0);
  CHECK(missing_items(*other) == 0);
}

TEST_CASE("a target name with a quote, a backslash and a newline is escaped and passes promtool",
          "[metrics][fleet_run]") {
  pgxform::RunMetrics fleet(pgxform::MetricsCollection::on);
  pgxform::RunMetrics odd(fleet, "s\"1\\x\ny");
  odd.declare_jobs({"items"}, {pgxform::Phase::main}, {"max_xact_age_s"});
  odd.batch_done("items", pgxform::Phase::main, 7, 7, 0.02);
  fleet.fleet_totals({0, 1, 0, 0, 1}, 2);
  const std::string text = fleet.text();
  INFO(text);
  CHECK(value_in(text,
                 "pgxform_rows_total{job=\"items\",phase=\"main\",target=\"s\\\"1\\\\x\\ny\"}") ==
        7);
  if (prerequisite(promtool_installed(),
                   "promtool is not installed (Debian package prometheus): the text was not "
                   "checked")) {
    TempDir dir;
    std::string findings;
    const int code = promtool_check(dir, text, findings);
    INFO(findings);
    CHECK(code == 0);
    CHECK(findings.empty());
  }
}
