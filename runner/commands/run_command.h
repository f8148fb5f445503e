// run_command: `pgxform run` — preflight, state, then the lists on the worker pool.
//
// Order of work, so that bad input writes nothing: parse the jobs file; apply the pending
// scripts of scripts_dir (unless --no-migrate; a changed applied script stops everything
// here); connect; read which jobs are done (read-only) to check --only/--exclude; check every
// selected job against the catalogs and the state (slices, function versions); only then
// create or upgrade the state schema, register the jobs, cut slices, pin function versions and
// start the workers. The metrics endpoint (--metrics-port, run_metrics.h) is bound first of
// all, after the jobs file is read: a port in use stops the run before a script is applied.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <vector>

#include "base/setting_limits.h"
#include "capture/slot_reader.h"
#include "catalog/catalog.h"
#include "commands/command_options.h"
#include "output/run_metrics.h"
#include "plan/jobs_file.h"
#include "state/schema_name.h"

namespace pgxform {

// --lock-timeout: how long a run waits for what another session holds, as given ("30s").
struct LockTimeout {
  std::chrono::milliseconds wait;
  std::string text;
};

struct RunOptions : CommandOptions {
  int threads = 0;                                          // 0: defaults.threads of the file
  int reserve_connections = k_default_reserve_connections;  // left free on the server
  std::vector<std::string> only;
  std::vector<std::string> exclude;
  std::vector<std::string> accept_changed;  // jobs that may go on with a changed function
  bool migrate = true;                      // apply pending scripts first (--no-migrate: not)
  std::optional<MetricsEndpoint> metrics;   // --metrics-port: serve the run's metrics there
  // --lock-timeout: give up on a task another session holds, on the setup lock and on the
  // scripts lock after this long (exit 1); none: wait for the task and the setup lock as long
  // as they are held, and 60 s for the scripts lock.
  std::optional<LockTimeout> lock_timeout;
};

int run_command(const RunOptions& options);

// How one run takes part in a fleet run (fleet_run.h): its pool draws its workers from the
// fleet's budget (worker_pool.h: PoolSizing::draw), it has no live display of its own (the
// fleet has one), and what it says is prefixed with its target's name.
struct FleetPart {
  std::string target;
  std::function<int(int)> draw;
};
// The run of `file`, already read (and its metrics endpoint bound), against options.dsn: what
// run_command does after reading the file. `fleet`: none for a run of its own.
int run_jobs(const RunOptions& options, const JobsFile& file, RunMetrics& metrics,
             const FleetPart* fleet);

// What `run` shares with `catch-up`, which continues main passes on the same engine:
// The state's problems with the resolved jobs (a function changed under a started job unless
// `accepted`, a changed `parallel:`), each naming the file. Read-only.
std::vector<std::string> state_problems(pqxx::connection& conn, const JobsFile& file,
                                        const std::map<std::string, ResolvedJob>& jobs,
                                        const std::set<std::string>& accepted);
// The state the workers need, written before the first batch: the schema, the jobs, their
// slices and function versions, and the capture of the jobs with changes: trigger or logical
// (capture_setup.h; `command` says who installed it, for a capture found missing).
void prepare_state(pqxx::connection& conn, const JobsFile& file,
                   const std::map<std::string, ResolvedJob>& jobs, const std::string& command);
// The reader of the slot of changes: logical when the file has a job with it (none otherwise),
// for RunContext::slot.
std::unique_ptr<SlotReader> slot_reader_for(const JobsFile& file, RunMetrics& metrics);

// The metrics' pgxform_job_rows_done and pgxform_job_rows_estimated of each job when the
// command starts: job_state's rows_done, and the total as status estimates it (a done job's
// rows_done; a job not started, the table's estimate).
void set_job_rows_metrics(pqxx::connection& conn, const JobsFile& file,
                          const std::map<std::string, ResolvedJob>& jobs, RunMetrics& metrics);

}  // namespace pgxform
