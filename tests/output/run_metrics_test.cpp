// The run's metrics without a database or a port: the series each event moves, the values of
// --metrics-port and --metrics-address, and the Grafana dashboard of docs/, which may use only
// the metrics pgxform exports.
#include "output/run_metrics.h"

#include <civetweb.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "base/errors.h"
#include "cli/cli.h"

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

TEST_CASE("an IPv6 metrics address is refused with a reason where CivetWeb serves no IPv6") {
  if (mg_check_feature(MG_FEATURES_IPV6) != 0) {
    WARN("this CivetWeb serves IPv6: nothing to refuse");
    return;
  }
  RunMetrics metrics(MetricsCollection::on);
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
  // Every series but pgxform_job_done and the slot's tells its phase (the main pass, or
  // catch-up): each query of one selects the $phase variable, so that rows and catch-up's keys
  // are never added up blindly.
  bool phase_variable = false;
  for (const auto& variable : dashboard["templating"]["list"])
    if (variable["name"] == "phase") phase_variable = true;
  CHECK(phase_variable);
  for (const auto& query : queries) {
    if (query.find("pgxform_") == std::string::npos ||
        query.find("pgxform_job_done") != std::string::npos ||
        query.find("pgxform_slot_") != std::string::npos ||
        query.find("label_values") != std::string::npos)
      continue;
    INFO(query);
    CHECK_THAT(query, Catch::Contains("phase=~\"$phase\""));
  }
}
