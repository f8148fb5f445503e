// The run's metrics without a database: the series each event moves, the values of
// --metrics-port and --metrics-address (an IPv6 one served, or refused where CivetWeb has no
// IPv6), and the Grafana dashboard of docs/, which may use only the metrics pgxform exports.
#include "output/run_metrics.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "base/errors.h"
#include "cli/cli.h"
#include "support/prerequisite.h"

using pgxform::MetricsCollection;
using pgxform::Paused;
using pgxform::RunMetrics;

namespace {

// The value of the series `series` (name and labels, as the text format writes them) in
// `text`; -1 when it is not there.
double series_value(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.compare(0, series.size() + 1, series + " ") == 0)
      return std::stod(line.substr(series.size() + 1));
  return -1;
}

int run_cli_quietly(const std::vector<std::string>& args, std::string& err) {
  std::vector<const char*> argv{"pgxform"};
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, errors;
  std::streambuf* old = std::cerr.rdbuf(errors.rdbuf());
  const int code = pgxform::run_cli(int(argv.size()), argv.data(), out);
  std::cerr.rdbuf(old);
  err = errors.str();
  return code;
}

// Every string of `value` under a key named `key`, at any depth.
void strings_under(const nlohmann::json& value, const std::string& key,
                   std::vector<std::string>& found) {
  if (value.is_object()) {
    for (const auto& [k, v] : value.items()) {
      if (k == key && v.is_string()) found.push_back(v.get<std::string>());
      strings_under(v, key, found);
    }
  } else if (value.is_array()) {
    for (const auto& v : value) strings_under(v, key, found);
  }
}

// A port of ::1 that nothing listens on (the system's choice), or 0 when this host has no IPv6
// loopback.
int free_ipv6_loopback_port() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_addr = in6addr_loopback;
  socklen_t length = sizeof address;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0)
    port = ntohs(address.sin6_port);
  ::close(fd);
  return port;
}

// The answer of a plain HTTP GET of `path` on [::1]:`port` ("" when it cannot connect).
std::string get_over_ipv6_loopback(int port, const std::string& path) {
  const int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_addr = in6addr_loopback;
  address.sin6_port = htons(static_cast<uint16_t>(port));
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    const std::string request =
        "GET " + path + " HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n";
    if (::send(fd, request.data(), request.size(), 0) == ssize_t(request.size())) {
      char buffer[4096];
      for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) answer.append(buffer, n);
    }
  }
  ::close(fd);
  return answer;
}

}  // namespace

TEST_CASE("every declared job has its series at zero before its first event") {
  RunMetrics metrics(MetricsCollection::on);
  metrics.declare_jobs({"items", "orders"}, {pgxform::Phase::main},
                       {"max_xact_age_s", "max_active_sessions"});
  const std::string text = metrics.text();
  for (const std::string job : {"items", "orders"}) {
    INFO(job << "\n" << text);
    const std::string labels = "{job=\"" + job + "\",phase=\"main\"}";
    CHECK(series_value(text, "pgxform_rows_total" + labels) == 0);
    CHECK(series_value(text, "pgxform_batches_total" + labels) == 0);
    CHECK(series_value(text, "pgxform_batch_duration_seconds_count" + labels) == 0);
    CHECK(series_value(text, "pgxform_batch_size" + labels) == 0);
    CHECK(series_value(text, "pgxform_failed_batches_total" + labels) == 0);
    CHECK(series_value(text, "pgxform_paused" + labels) == 0);
    CHECK(series_value(text, "pgxform_job_done{job=\"" + job + "\"}") == 0);
    CHECK(series_value(text, "pgxform_throttled_seconds_total{job=\"" + job +
                                 "\",phase=\"main\",reason=\"max_xact_age_s\"}") == 0);
  }
}

TEST_CASE("each event of a run moves its own series of its own job and phase") {
  using pgxform::Phase;
  RunMetrics metrics(MetricsCollection::on);
  metrics.declare_jobs({"items", "orders"}, {Phase::main, Phase::catch_up},
                       {"max_xact_age_s", "max_active_sessions"});
  metrics.batch_done("items", Phase::main, 100, 120, 0.3);
  metrics.batch_done("items", Phase::main, 50, 200, 2);
  metrics.range_done("items", Phase::main, 7);
  metrics.batch_failed("items", Phase::main);
  metrics.throttled("items", Phase::main, "max_xact_age_s", 1.5);
  metrics.throttled("items", Phase::main, "max_xact_age_s", 1);
  metrics.throttled("items", Phase::main, "max_active_sessions", 0.5);
  metrics.set_paused("orders", Phase::main, Paused::yes);
  metrics.batch_done("items", Phase::catch_up, 9, 10, 0.1);
  metrics.set_paused("items", Phase::catch_up, Paused::yes);
  metrics.job_done("items");
  const std::string text = metrics.text();
  INFO(text);
  const std::string main = "{job=\"items\",phase=\"main\"}";
  CHECK(series_value(text, "pgxform_rows_total" + main) == 157);
  CHECK(series_value(text, "pgxform_batches_total" + main) == 3);
  // The range bisection processed counts as a batch, not as a sample of the batches' duration.
  CHECK(series_value(text, "pgxform_batch_duration_seconds_count" + main) == 2);
  CHECK(series_value(text,
                     "pgxform_batch_duration_seconds_bucket{job=\"items\",phase=\"main\","
                     "le=\"0.5\"}") == 1);
  CHECK(series_value(text,
                     "pgxform_batch_duration_seconds_bucket{job=\"items\",phase=\"main\","
                     "le=\"60\"}") == 2);
  CHECK(series_value(text, "pgxform_batch_size" + main) == 200);
  CHECK(series_value(text, "pgxform_failed_batches_total" + main) == 1);
  CHECK(series_value(text,
                     "pgxform_throttled_seconds_total{job=\"items\",phase=\"main\","
                     "reason=\"max_xact_age_s\"}") == 2.5);
  CHECK(series_value(text,
                     "pgxform_throttled_seconds_total{job=\"items\",phase=\"main\","
                     "reason=\"max_active_sessions\"}") == 0.5);
  CHECK(series_value(text, "pgxform_job_done{job=\"items\"}") == 1);
  CHECK(series_value(text, "pgxform_paused{job=\"orders\",phase=\"main\"}") == 1);
  CHECK(series_value(text, "pgxform_paused{job=\"items\",phase=\"main\"}") == 0);
  CHECK(series_value(text, "pgxform_rows_total{job=\"orders\",phase=\"main\"}") == 0);
  // Catch-up's batches under its own phase, apart from the main pass's.
  CHECK(series_value(text, "pgxform_rows_total{job=\"items\",phase=\"catch_up\"}") == 9);
  CHECK(series_value(text, "pgxform_batches_total{job=\"items\",phase=\"catch_up\"}") == 1);
  CHECK(series_value(text, "pgxform_paused{job=\"items\",phase=\"catch_up\"}") == 1);
  metrics.set_paused("orders", Phase::main, Paused::no);
  CHECK(series_value(metrics.text(), "pgxform_paused{job=\"orders\",phase=\"main\"}") == 0);
}

TEST_CASE("a job name that needs escaping is escaped in its label") {
  RunMetrics metrics(MetricsCollection::on);
  metrics.declare_jobs({"odd \"job\"\\x"}, {pgxform::Phase::main}, {});
  metrics.batch_done("odd \"job\"\\x", pgxform::Phase::main, 3, 3, 0.01);
  CHECK(series_value(metrics.text(),
                     "pgxform_rows_total{job=\"odd \\\"job\\\"\\\\x\",phase=\"main\"}") == 3);
}

TEST_CASE("a run without --metrics-port collects nothing") {
  RunMetrics metrics;
  metrics.declare_jobs({"items"}, {pgxform::Phase::main}, {"max_xact_age_s"});
  metrics.batch_done("items", pgxform::Phase::main, 100, 100, 0.1);
  CHECK(metrics.text().empty());
}

TEST_CASE("a --metrics-port outside 1 to 65535 or a --metrics-address that is no IP exits 2") {
  const std::vector<std::vector<std::string>> bad = {
      {"--metrics-port", "0"},
      {"--metrics-port", "65536"},
      {"--metrics-port", "-1"},
      {"--metrics-port", "http"},
      {"--metrics-port", "9187", "--metrics-address", "localhost"},
      {"--metrics-port", "9187", "--metrics-address", "300.1.1.1"},
      {"--metrics-address", "127.0.0.1"}};
  for (const auto& options : bad) {
    std::vector<std::string> args{"run", "-f", "/nonexistent/jobs.yaml"};
    args.insert(args.end(), options.begin(), options.end());
    std::string err;
    const int code = run_cli_quietly(args, err);
    INFO(options.back() << ": " << err);
    CHECK(code == 2);
    CHECK_THAT(err, Catch::Contains("--metrics-"));
    CHECK_THAT(err, !Catch::Contains("/nonexistent/jobs.yaml"));
  }
  // Good values pass the check: the jobs file is what is missing then.
  std::string err;
  CHECK(run_cli_quietly({"run", "-f", "/nonexistent/jobs.yaml", "--metrics-port", "9187",
                         "--metrics-address", "::1"},
                        err) == 2);
  CHECK_THAT(err, !Catch::Contains("--metrics-"));
}

TEST_CASE(
    "an IPv6 metrics address is served where CivetWeb serves IPv6, and refused with its reason "
    "where it does not") {
  RunMetrics metrics(MetricsCollection::on);
  if (mg_check_feature(MG_FEATURES_IPV6) != 0) {
    const int port = free_ipv6_loopback_port();
    if (!pgxform_test::prerequisite(port > 0, "this host has no IPv6 loopback (::1) to serve on"))
      return;
    metrics.serve(pgxform::MetricsEndpoint{"::1", port});
    CHECK_THAT(get_over_ipv6_loopback(port, "/metrics"), Catch::StartsWith("HTTP/1.1 200"));
    return;
  }
  pgxform::MetricsEndpoint endpoint{"::1", 9187};
  try {
    metrics.serve(endpoint);
    FAIL("serve accepted ::1");
  } catch (const pgxform::InputError& e) {
    REQUIRE(e.problems().size() == 1);
    CHECK_THAT(e.problems()[0],
               Catch::Contains("--metrics-address ::1: this pgxform's CivetWeb serves IPv4 only"));
  }
}

TEST_CASE("the Grafana dashboard parses and uses every metric pgxform exports, and no other") {
  std::ifstream in(std::string(PGXFORM_SOURCE_DIR) + "/docs/grafana-dashboard.json");
  REQUIRE(in);
  const nlohmann::json dashboard = nlohmann::json::parse(in);
  CHECK(dashboard["panels"].size() >= 6);
  // The data source is a variable, so that the dashboard imports into any Grafana.
  bool datasource_variable = false;
  for (const auto& variable : dashboard["templating"]["list"])
    if (variable["type"] == "datasource" && variable["query"] == "prometheus")
      datasource_variable = true;
  CHECK(datasource_variable);

  std::vector<std::string> queries;
  strings_under(dashboard, "expr", queries);
  strings_under(dashboard, "query", queries);
  REQUIRE(!queries.empty());
  std::set<std::string> exported(pgxform::k_metric_names.begin(), pgxform::k_metric_names.end());
  exported.insert(pgxform::k_slot_metric_names.begin(), pgxform::k_slot_metric_names.end());
  exported.insert(pgxform::k_fleet_metric_names.begin(), pgxform::k_fleet_metric_names.end());
  std::set<std::string> used;
  const std::regex metric("pgxform_[a-z_]+");
  for (const auto& query : queries)
    for (std::sregex_iterator it(query.begin(), query.end(), metric), end; it != end; ++it) {
      std::string name = it->str();
      // A histogram's series: its buckets, sum and count.
      for (const std::string suffix : {"_bucket", "_sum", "_count"})
        if (name.size() > suffix.size() &&
            name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
            exported.count(name.substr(0, name.size() - suffix.size())))
          name = name.substr(0, name.size() - suffix.size());
      INFO(query);
      CHECK(exported.count(name) == 1);
      used.insert(name);
    }
  for (const auto& name : exported) {
    INFO(name << " is not on the dashboard");
    CHECK(used.count(name) == 1);
  }
  // Every series but pgxform_job_done, pgxform_job_rows_* (the main pass's) and the slot's
  // tells its phase (the main pass, or catch-up): each query of one selects the $phase
  // variable, or the main pass, so that rows and catch-up's keys are never added up blindly.
  bool phase_variable = false;
  for (const auto& variable : dashboard["templating"]["list"])
    if (variable["name"] == "phase") phase_variable = true;
  CHECK(phase_variable);
  for (const auto& query : queries) {
    if (query.find("pgxform_") == std::string::npos ||
        query.find("pgxform_job_done") != std::string::npos ||
        (query.find("pgxform_job_rows_") != std::string::npos &&
         query.find("pgxform_rows_total") == std::string::npos) ||
        query.find("pgxform_slot_") != std::string::npos ||
        query.find("pgxform_fleet_") != std::string::npos ||
        query.find("label_values") != std::string::npos)
      continue;
    INFO(query);
    CHECK_THAT(query, Catch::Contains("phase=~\"$phase\"") || Catch::Contains("phase=\"main\""));
  }
  // A fleet run's series carry their target: every query of a job's series selects the
  // $target variable, so that one target's figures are never added to another's unasked.
  bool target_variable = false;
  for (const auto& variable : dashboard["templating"]["list"])
    if (variable["name"] == "target") target_variable = true;
  CHECK(target_variable);
  for (const auto& query : queries) {
    if (query.find("job=~\"$job\"") == std::string::npos) continue;
    INFO(query);
    CHECK_THAT(query, Catch::Contains("target=~\"$target\""));
  }
}

namespace {

// A TCP connection to 127.0.0.1:`port`, with receives bounded by `timeout_s`; -1 when refused.
int connect_to(int port, int timeout_s) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  const timeval timeout{timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(std::uint16_t(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// GET /metrics, waiting for the answer at most `timeout_s`: true when it came whole (200).
bool scraped(int port, int timeout_s) {
  const int fd = connect_to(port, timeout_s);
  if (fd < 0) return false;
  const std::string request =
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  std::string response;
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == ssize_t(request.size())) {
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;)
      response.append(buffer, std::size_t(n));
  }
  ::close(fd);
  return response.compare(0, 12, "HTTP/1.1 200") == 0 &&
         response.find("pgxform_rows_total") != std::string::npos;
}

// `count` connections that send nothing, held open, each opened again as soon as the server
// closes it, until the end.
class IdleConnections {
 public:
  IdleConnections(int port, int count) {
    for (int i = 0; i < count; ++i) m_fds.push_back(connect_to(port, 1));
    m_thread = std::thread([this, port] {
      while (!m_done) {
        for (int& fd : m_fds) {
          char byte;
          if (fd >= 0 && ::recv(fd, &byte, 1, MSG_DONTWAIT) != 0) continue;  // still open
          if (fd >= 0) ::close(fd);
          fd = connect_to(port, 1);
          ++m_reopened;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  ~IdleConnections() {
    m_done = true;
    m_thread.join();
    for (const int fd : m_fds)
      if (fd >= 0) ::close(fd);
  }
  int reopened() const { return m_reopened; }

 private:
  std::vector<int> m_fds;
  std::atomic<bool> m_done{false};
  std::atomic<int> m_reopened{0};
  std::thread m_thread;
};

}  // namespace

TEST_CASE("ten idle connections held open do not stop the metrics endpoint from answering") {
  // A port the system chose a moment ago.
  int port = 0;
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t size = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size) == 0);
    port = ntohs(addr.sin_port);
    ::close(fd);
  }
  RunMetrics metrics(MetricsCollection::on);
  metrics.declare_jobs({"items"}, {pgxform::Phase::main}, {});
  metrics.serve({"127.0.0.1", port});
  REQUIRE(scraped(port, 5));
  const IdleConnections idle(port, 10);
  // Scrapes during three seconds at least, past the request timeout of the idle ones: each
  // must answer, and soon (the ceiling is generous: the machine is shared; CivetWeb's default
  // held each of its threads for 30 s per idle connection).
  int answered = 0, asked = 0;
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(3) || asked < 10) {
    ++asked;
    answered += scraped(port, 5);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO("idle connections opened again: " << idle.reopened());
  CHECK(answered == asked);
}
