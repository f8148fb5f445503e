// run_metrics: what a run tells Prometheus — `pgxform run --metrics-port N` serves these in
// the Prometheus text format on http://ADDRESS:N/metrics (prometheus-cpp, CivetWeb), from
// before anything is written until the run ends.
//
//   pgxform_rows_total{job,phase}                counter  rows committed (batches, and the
//                                                         ranges bisection processed); for
//                                                         catch-up, keys refreshed
//   pgxform_batches_total{job,phase}             counter  batches committed (batch_log rows)
//   pgxform_batch_duration_seconds{job,phase}    histogram a batch's transaction, as the
//                                                         client saw it (k_duration_buckets)
//   pgxform_batch_size{job,phase}                gauge    the keys the last batch asked for
//   pgxform_failed_batches_total{job,phase}      counter  ranges (or catch-up's keys) set aside
//                                                         and batches that failed the job
//   pgxform_throttled_seconds_total{job,phase,reason} counter seconds waited on a throttle:
//                                                         limit, by signal (max_xact_age_s, ...)
//   pgxform_paused{job,phase}                    gauge    1 while the job waits on a pause
//   pgxform_job_done{job}                        gauge    1 once the job's main pass is done in
//                                                         this run
//   pgxform_job_rows_done{job}                   gauge    the rows the job's main pass has
//                                                         committed in all runs: job_state's
//                                                         rows_done at the start, plus this
//                                                         run's (status's ROWS)
//   pgxform_job_rows_estimated{job}              gauge    the job's rows in all, as status
//                                                         estimates them (the rows done and the
//                                                         planner's rows above the cursor, else
//                                                         the table's estimate; a done job's
//                                                         rows_done), read when the command
//                                                         starts; 0 when unknown
//   pgxform_slot_retained_wal_bytes{slot}        gauge    the WAL the replication slot of
//                                                         changes: logical keeps, measured after
//                                                         each read (slot_reader.h)
//   pgxform_slot_read_age_seconds{slot}          gauge    since its last read committed, then
// A fleet run (fleet_run.h) serves one endpoint for all its targets: every series above carries
// a `target` label besides its own (target="s1"; label values escaped as the text format says:
// backslash, double quote, newline), and the fleet's totals are:
//   pgxform_fleet_targets{state}                 gauge    the targets waiting, running, done
//                                                         and failed (did not finish)
//   pgxform_fleet_workers                        gauge    the fleet's workers held by its
//                                                         running targets (at most --threads)
//   pgxform_fleet_worker_budget                  gauge    --threads: the fleet's workers in all
// `phase` is "main" (the main pass, `pgxform run`) or "catch_up" (`pgxform catch-up`, whose
// batches refresh captured changes; a catch-up that continues a main pass reports its batches
// under "main").
//
// Every selected batched job has its series from the start, for each phase the command runs (0
// until something happens; the throttled seconds for every signal), so that a rate() or a
// "done jobs" sum sees it before its first batch. A sliced job (parallel: K) reports under its
// job name: its slices add to the same series. A command without a port collects nothing:
// every event is then a lookup that finds no job. Thread-safe: the workers report their events;
// the series of the jobs are created once, before the workers start.
//
// Binding happens when the run starts, before anything is written: an address:port that cannot
// be bound (in use, not an address of this host) is an InputError naming --metrics-port.
// CivetWeb sets SIGPIPE to be ignored, process-wide, when it starts: with a port, a closed
// stderr pipe no longer kills the run (operator-runbook.md says so).
//
// Anyone who reaches the address may connect (--metrics-address 0.0.0.0: the network). A
// connection that sends nothing is dropped after a second (request_timeout_ms), without
// keep-alive, and the server has 16 threads: a handful of idle connections, held open and
// opened again, leave scrapes answering at once.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace prometheus {
class Counter;
class Exposer;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

#include "plan/scheduler.h"

namespace pgxform {

// The names of the metrics pgxform exports (the dashboard and its test use no other): every
// command's, and those of the slot of changes: logical, whose series exist only once a slot
// was read.
extern const std::vector<std::string> k_metric_names;
extern const std::vector<std::string> k_slot_metric_names;
extern const std::vector<std::string> k_fleet_metric_names;  // only a fleet run's

// Where --metrics-port / --metrics-address ask the metrics to be served.
struct MetricsEndpoint {
  std::string address = "127.0.0.1";  // an IPv4 address; IPv6 where CivetWeb has it
  int port = 0;                       // 1..65535
};

// An IPv4 or IPv6 address in numeric form ("127.0.0.1", "::1"), not a host name.
bool is_ip_address(const std::string& text);

// "127.0.0.1:9187", "[::1]:9187": how the address:port is written in CivetWeb's options and in
// messages.
std::string endpoint_text(const MetricsEndpoint& endpoint);

enum class MetricsCollection { off, on };
enum class Paused { no, yes };

// A fleet's targets by state, and its workers, for pgxform_fleet_*.
struct FleetTotals {
  int waiting = 0, running = 0, done = 0, failed = 0;
  int workers = 0;  // held by the running targets
};

class RunMetrics {
 public:
  explicit RunMetrics(MetricsCollection collection = MetricsCollection::off);
  // A target's metrics in a fleet run: its series are `fleet`'s (one registry, one endpoint),
  // each labelled target="`target`". Collects nothing when `fleet` collects nothing. `fleet`
  // outlives it; the series stay served once it ends.
  RunMetrics(const RunMetrics& fleet, std::string target);
  ~RunMetrics();
  RunMetrics(const RunMetrics&) = delete;
  RunMetrics& operator=(const RunMetrics&) = delete;

  // Serves the metrics on `endpoint` until this object ends. Throws an InputError when the
  // address:port cannot be bound, or is IPv6 and CivetWeb was built without it (Debian 12's).
  // Needs MetricsCollection::on.
  void serve(const MetricsEndpoint& endpoint);
  // The batched jobs of the command: their series exist from now on, for each of `phases`, a
  // throttled-seconds series for each of `throttle_signals` (health_throttle.h) among them.
  // Called once, before any event.
  void declare_jobs(const std::vector<std::string>& jobs, const std::vector<Phase>& phases,
                    const std::vector<std::string>& throttle_signals);

  // The events. `job` is the job's name, also for a slice's events.
  void batch_done(const std::string& job, Phase phase, long long rows, long long asked,
                  double seconds);
  // A range (or a part of catch-up's keys) that narrowing a failure down processed.
  void range_done(const std::string& job, Phase phase, long long rows);
  void batch_failed(const std::string& job, Phase phase);  // set aside, or failing the job
  void throttled(const std::string& job, Phase phase, const std::string& signal, double seconds);
  void set_paused(const std::string& job, Phase phase, Paused paused);
  void job_done(const std::string& job);
  // The job's main-pass rows in all runs when the command starts, and its estimated total
  // (none: unknown, the gauge stays 0); the main pass's batches add to the rows from then on.
  void set_job_rows(const std::string& job, long long rows_done, std::optional<double> estimated);
  // The slot of changes: logical after a read: its series appear with its first measure.
  void slot_state(const std::string& slot, double retained_bytes, double read_age_s);

  // A fleet run's totals (pgxform_fleet_*), whose series exist from the first call: its
  // targets by state, its workers, and its budget of workers (--threads). Called on the
  // fleet's own object, from one thread.
  void fleet_totals(const FleetTotals& totals, int budget);

  // The metrics as a scrape returns them (the Prometheus text format).
  std::string text() const;

 private:
  struct JobSeries {
    prometheus::Counter* rows;
    prometheus::Counter* batches;
    prometheus::Histogram* duration;
    prometheus::Gauge* batch_size;
    prometheus::Counter* failed;
    prometheus::Gauge* paused;
  };
  JobSeries* series(const std::string& job, Phase phase);
  // `labels`, and target="..." in a fleet's target.
  std::map<std::string, std::string> labelled(std::map<std::string, std::string> labels) const;
  void add_job_rows(const std::string& job, long long rows);
  struct JobTotals {
    prometheus::Gauge* done;
    prometheus::Gauge* estimated;
  };

  struct Families;  // the metrics' families, registered in m_registry
  struct FleetFamilies;

  std::shared_ptr<prometheus::Registry> m_registry;  // none: MetricsCollection::off
  std::shared_ptr<Families> m_families;              // shared by a fleet's targets
  std::string m_target;                              // a fleet's target: its name; else empty
  std::unique_ptr<FleetFamilies> m_fleet;            // the fleet's own object: its totals, once set
  std::map<std::pair<std::string, Phase>, JobSeries> m_jobs;  // not changed once workers run
  std::map<std::string, prometheus::Gauge*> m_done;           // per job
  std::map<std::string, JobTotals> m_totals;                  // per job
  std::mutex m_slots_mutex;  // the slots' series are added by the workers, as they read
  std::unique_ptr<prometheus::Exposer> m_exposer;
};

}  // namespace pgxform
