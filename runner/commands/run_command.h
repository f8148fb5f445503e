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

#include <map>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <vector>

#include "capture/slot_reader.h"
#include "catalog/catalog.h"
#include "commands/command_options.h"
#include "output/run_metrics.h"
#include "plan/jobs_file.h"
#include "state/schema_name.h"

namespace pgxform {

struct RunOptions : CommandOptions {
  int threads = 0;  // 0: defaults.threads of the file
  std::vector<std::string> only;
  std::vector<std::string> exclude;
  std::vector<std::string> accept_changed;  // jobs that may go on with a changed function
  bool migrate = true;                      // apply pending scripts first (--no-migrate: not)
  std::optional<MetricsEndpoint> metrics;   // --metrics-port: serve the run's metrics there
};

int run_command(const RunOptions& options);

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

// `set --threads`, as the control table says it now, for WorkerPool::follow_workers: read on a
// connection of the calling thread's own, opened on first use and again after a failure (said
// at debug level only: the workers' own errors tell of a server that went away).
class WantedWorkers {
 public:
  WantedWorkers(std::string dsn, StateSchema schema)
      : m_dsn(std::move(dsn)), m_schema(std::move(schema)) {}
  std::optional<int> operator()();

 private:
  std::string m_dsn;
  StateSchema m_schema;
  std::unique_ptr<pqxx::connection> m_conn;
};

}  // namespace pgxform
