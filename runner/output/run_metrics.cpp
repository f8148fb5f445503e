#include "output/run_metrics.h"

#include <CivetServer.h>
#include <arpa/inet.h>
#include <civetweb.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "base/errors.h"

namespace pgxform {

const std::vector<std::string> k_metric_names = {"pgxform_rows_total",
                                                 "pgxform_batches_total",
                                                 "pgxform_batch_duration_seconds",
                                                 "pgxform_batch_size",
                                                 "pgxform_failed_batches_total",
                                                 "pgxform_throttled_seconds_total",
                                                 "pgxform_paused",
                                                 "pgxform_job_done",
                                                 "pgxform_job_rows_done",
                                                 "pgxform_job_rows_estimated"};
const std::vector<std::string> k_slot_metric_names = {"pgxform_slot_retained_wal_bytes",
                                                      "pgxform_slot_read_age_seconds"};
const std::vector<std::string> k_fleet_metric_names = {
    "pgxform_fleet_targets", "pgxform_fleet_workers", "pgxform_fleet_worker_budget"};

namespace {

// A batch lasts target_batch_ms (500 by default) when time sizing works; the buckets reach
// from the smallest batches of a fast function to a minute, past which statement_timeout is
// the operator's concern rather than a quantile's.
const prometheus::Histogram::BucketBoundaries k_duration_buckets = {
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

// CivetWeb serves each connection on one of its threads, from its accept to its close, and by
// default waits 30 s for a request that does not come: two connections that send nothing held
// both of its default two threads, and every scrape waited. So: threads enough for a scraper or
// two beside a handful of idle connections, a request that must arrive within a second, and
// no keep-alive (a scrape every 15 s gains nothing by keeping its connection, and an idle
// kept-alive connection holds a thread too).
const std::vector<std::string> k_server_options = {
    "num_threads",       "16", "request_timeout_ms",    "1000",
    "enable_keep_alive", "no", "keep_alive_timeout_ms", "500"};

}  // namespace

struct RunMetrics::Families {
  prometheus::Family<prometheus::Counter>& rows;
  prometheus::Family<prometheus::Counter>& batches;
  prometheus::Family<prometheus::Histogram>& duration;
  prometheus::Family<prometheus::Gauge>& batch_size;
  prometheus::Family<prometheus::Counter>& failed;
  prometheus::Family<prometheus::Counter>& throttled;
  prometheus::Family<prometheus::Gauge>& paused;
  prometheus::Family<prometheus::Gauge>& done;
  prometheus::Family<prometheus::Gauge>& slot_retained;
  prometheus::Family<prometheus::Gauge>& slot_read_age;
  prometheus::Family<prometheus::Gauge>& job_rows_done;
  prometheus::Family<prometheus::Gauge>& job_rows_estimated;
};

// A fleet run's totals, registered at its first call of fleet_totals (a single run's scrape has
// none of them).
struct RunMetrics::FleetFamilies {
  prometheus::Family<prometheus::Gauge>& targets;
  prometheus::Family<prometheus::Gauge>& workers;
  prometheus::Family<prometheus::Gauge>& budget;
};

bool is_ip_address(const std::string& text) {
  in_addr v4{};
  in6_addr v6{};
  return inet_pton(AF_INET, text.c_str(), &v4) == 1 || inet_pton(AF_INET6, text.c_str(), &v6) == 1;
}

namespace {

bool is_ipv6(const std::string& address) {
  in6_addr v6{};
  return inet_pton(AF_INET6, address.c_str(), &v6) == 1;
}

}  // namespace

std::string endpoint_text(const MetricsEndpoint& endpoint) {
  return (is_ipv6(endpoint.address) ? "[" + endpoint.address + "]" : endpoint.address) + ":" +
         std::to_string(endpoint.port);
}

RunMetrics::RunMetrics(MetricsCollection collection) {
  if (collection == MetricsCollection::off) return;
  using namespace prometheus;
  m_registry = std::make_shared<Registry>();
  Registry& r = *m_registry;
  m_families = std::shared_ptr<Families>(new Families{
      BuildCounter()
          .Name("pgxform_rows_total")
          .Help("Rows committed by the job's batches in this run")
          .Register(r),
      BuildCounter()
          .Name("pgxform_batches_total")
          .Help("Batches the job committed in this run")
          .Register(r),
      BuildHistogram()
          .Name("pgxform_batch_duration_seconds")
          .Help("Duration of a committed batch's transaction, as the client saw it")
          .Register(r),
      BuildGauge()
          .Name("pgxform_batch_size")
          .Help("Keys the job's last batch asked for")
          .Register(r),
      BuildCounter()
          .Name("pgxform_failed_batches_total")
          .Help("Key ranges set aside (on_error: skip) and batches that failed the job")
          .Register(r),
      BuildCounter()
          .Name("pgxform_throttled_seconds_total")
          .Help("Seconds the job waited on a throttle limit, by the signal over its limit")
          .Register(r),
      BuildGauge()
          .Name("pgxform_paused")
          .Help("1 while the job waits on a pause (pgxform pause), else 0")
          .Register(r),
      BuildGauge()
          .Name("pgxform_job_done")
          .Help("1 once the job is done in this run, else 0")
          .Register(r),
      BuildGauge()
          .Name("pgxform_slot_retained_wal_bytes")
          .Help("WAL kept by the replication slot of changes: logical, after its last read")
          .Register(r),
      BuildGauge()
          .Name("pgxform_slot_read_age_seconds")
          .Help("Seconds since the last read of the replication slot committed, at its measure")
          .Register(r),
      BuildGauge()
          .Name("pgxform_job_rows_done")
          .Help("Rows the job's main pass has committed in all its runs (job_state.rows_done)")
          .Register(r),
      BuildGauge()
          .Name("pgxform_job_rows_estimated")
          .Help("The job's rows in all, as status estimates them when the command started")
          .Register(r)});
}

RunMetrics::RunMetrics(const RunMetrics& fleet, std::string target)
    : m_registry(fleet.m_registry), m_families(fleet.m_families), m_target(std::move(target)) {}

RunMetrics::~RunMetrics() = default;

std::map<std::string, std::string> RunMetrics::labelled(
    std::map<std::string, std::string> labels) const {
  if (!m_target.empty()) labels.emplace("target", m_target);
  return labels;
}

void RunMetrics::serve(const MetricsEndpoint& endpoint) {
  const std::string where = endpoint_text(endpoint);
  const std::string outcome = "nothing was applied, no job was started";
  // Debian 12's CivetWeb is built without IPv6: it would fail to bind, and say nothing why.
  if (is_ipv6(endpoint.address) && mg_check_feature(MG_FEATURES_IPV6) == 0)
    throw InputError({"--metrics-address " + endpoint.address +
                      ": this pgxform's CivetWeb serves IPv4 only; give an IPv4 address"
                      " (127.0.0.1, or 0.0.0.0 for every interface)"},
                     outcome);
  try {
    std::vector<std::string> options{"listening_ports", where};
    options.insert(options.end(), k_server_options.begin(), k_server_options.end());
    m_exposer = std::make_unique<prometheus::Exposer>(options);
  } catch (const CivetException&) {
    // CivetWeb says only that its context is null; what fails here is binding.
    throw InputError({"--metrics-port " + std::to_string(endpoint.port) + ": cannot listen on " +
                      where + " (the port is in use, or the address is not one of this host's)"},
                     outcome);
  }
  m_exposer->RegisterCollectable(m_registry);
}

void RunMetrics::declare_jobs(const std::vector<std::string>& jobs,
                              const std::vector<Phase>& phases,
                              const std::vector<std::string>& throttle_signals) {
  if (!m_registry) return;
  Families& f = *m_families;
  for (const auto& job : jobs) {
    const prometheus::Labels of_job = labelled({{"job", job}});
    m_done.emplace(job, &f.done.Add(of_job));
    m_totals.emplace(job,
                     JobTotals{&f.job_rows_done.Add(of_job), &f.job_rows_estimated.Add(of_job)});
    for (const Phase phase : phases) {
      const prometheus::Labels labels = labelled({{"job", job}, {"phase", phase_name(phase)}});
      m_jobs.emplace(
          std::make_pair(job, phase),
          JobSeries{&f.rows.Add(labels), &f.batches.Add(labels),
                    &f.duration.Add(labels, k_duration_buckets), &f.batch_size.Add(labels),
                    &f.failed.Add(labels), &f.paused.Add(labels)});
      for (const auto& signal : throttle_signals)
        f.throttled.Add(labelled({{"job", job}, {"phase", phase_name(phase)}, {"reason", signal}}));
    }
  }
}

RunMetrics::JobSeries* RunMetrics::series(const std::string& job, Phase phase) {
  const auto it = m_jobs.find(std::make_pair(job, phase));
  return it == m_jobs.end() ? nullptr : &it->second;
}

void RunMetrics::batch_done(const std::string& job, Phase phase, long long rows, long long asked,
                            double seconds) {
  if (JobSeries* s = series(job, phase)) {
    s->rows->Increment(double(rows));
    s->batches->Increment();
    s->duration->Observe(seconds);
    s->batch_size->Set(double(asked));
  }
  if (phase == Phase::main) add_job_rows(job, rows);
}

void RunMetrics::add_job_rows(const std::string& job, long long rows) {
  if (const auto it = m_totals.find(job); it != m_totals.end())
    it->second.done->Increment(double(rows));
}

void RunMetrics::set_job_rows(const std::string& job, long long rows_done,
                              std::optional<double> estimated) {
  if (const auto it = m_totals.find(job); it != m_totals.end()) {
    it->second.done->Set(double(rows_done));
    if (estimated) it->second.estimated->Set(*estimated);
  }
}

void RunMetrics::range_done(const std::string& job, Phase phase, long long rows) {
  if (JobSeries* s = series(job, phase)) {
    s->rows->Increment(double(rows));
    s->batches->Increment();
  }
  if (phase == Phase::main) add_job_rows(job, rows);
}

void RunMetrics::batch_failed(const std::string& job, Phase phase) {
  if (JobSeries* s = series(job, phase)) s->failed->Increment();
}

void RunMetrics::throttled(const std::string& job, Phase phase, const std::string& signal,
                           double seconds) {
  // Found by its labels, once a second at most: the series exists since declare_jobs.
  if (series(job, phase))
    m_families->throttled
        .Add(labelled({{"job", job}, {"phase", phase_name(phase)}, {"reason", signal}}))
        .Increment(seconds);
}

void RunMetrics::set_paused(const std::string& job, Phase phase, Paused paused) {
  if (JobSeries* s = series(job, phase)) s->paused->Set(paused == Paused::yes ? 1 : 0);
}

void RunMetrics::job_done(const std::string& job) {
  if (const auto it = m_done.find(job); it != m_done.end()) it->second->Set(1);
}

void RunMetrics::slot_state(const std::string& slot, double retained_bytes, double read_age_s) {
  if (!m_registry) return;
  const std::lock_guard<std::mutex> guard(m_slots_mutex);
  m_families->slot_retained.Add(labelled({{"slot", slot}})).Set(retained_bytes);
  m_families->slot_read_age.Add(labelled({{"slot", slot}})).Set(read_age_s);
}

void RunMetrics::fleet_totals(const FleetTotals& totals, int budget) {
  if (!m_registry) return;
  using namespace prometheus;
  if (!m_fleet)
    m_fleet.reset(
        new FleetFamilies{BuildGauge()
                              .Name("pgxform_fleet_targets")
                              .Help("The fleet run's targets waiting, running, done and failed")
                              .Register(*m_registry),
                          BuildGauge()
                              .Name("pgxform_fleet_workers")
                              .Help("The fleet's workers held by its running targets")
                              .Register(*m_registry),
                          BuildGauge()
                              .Name("pgxform_fleet_worker_budget")
                              .Help("The fleet's workers in all (--threads)")
                              .Register(*m_registry)});
  FleetFamilies& f = *m_fleet;
  f.targets.Add({{"state", "waiting"}}).Set(totals.waiting);
  f.targets.Add({{"state", "running"}}).Set(totals.running);
  f.targets.Add({{"state", "done"}}).Set(totals.done);
  f.targets.Add({{"state", "failed"}}).Set(totals.failed);
  f.workers.Add({}).Set(totals.workers);
  f.budget.Add({}).Set(budget);
}

std::string RunMetrics::text() const {
  if (!m_registry) return "";
  return prometheus::TextSerializer().Serialize(m_registry->Collect());
}

}  // namespace pgxform
