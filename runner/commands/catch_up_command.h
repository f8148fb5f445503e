// catch_up_command: `pgxform catch-up [JOB...] [--follow] [--until N]` — makes the targets of
// the jobs with `changes: trigger` complete again (docs/catch-up.md): each job is one catch-up
// task on the engine that runs the main pass (task_runner.h), claimed with its own lock, not the
// run's task lock, so that catch-up and run work side by side. A task drains the job's changes
// at or below its cursor through its refresh function (change_drain.h), continues the job's
// main pass where it has keys above its cursor (rows appended after it finished), and drains
// again; and `pgxform capture [JOB...] [--drop]`, which installs (or removes) the jobs' capture
// triggers (change_capture.h) ahead of a run.
//
// catch-up checks the jobs as run does (the catalog, the refresh functions, `also:` tables, the
// state's function versions and slices) before it writes anything, then works through the
// lists in their order (`after:` and the order within a list, so that a refresh that needs a
// parent row finds it), several lists at once, on a worker pool that follows `set --threads`,
// with progress on the terminal and, with --metrics-port, the same metrics as run (phase
// "catch_up" for its refresh batches, "main" for the main pass it continues). With --follow
// every job's task starts at once, in no order, and waits for more changes until a signal.
//
// Exit 0 when every job is caught up: its main pass done and its log empty (--until N: at most
// N changes left per job; with --follow: stopped by a signal); 1 when a job failed, or keys were
// set aside because their refresh failed (fix, then catch-up again or retry-failed); 2 for bad
// input; 3 when a signal stopped a catch-up without --follow.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "base/setting_limits.h"
#include "commands/command_options.h"
#include "output/run_metrics.h"

namespace pgxform {

struct CatchUpOptions : CommandOptions {
  std::vector<std::string> jobs;  // empty: every job with changes: trigger
  bool follow = false;
  std::optional<long long> until;
  int threads = 0;                                          // 0: defaults.threads
  int reserve_connections = k_default_reserve_connections;  // left free on the server
  std::optional<MetricsEndpoint> metrics;                   // --metrics-port: serve them there
};

int catch_up_command(const CatchUpOptions& options, std::ostream& out);

enum class CaptureAction { install, drop };

struct CaptureOptions : CommandOptions {
  std::vector<std::string> jobs;  // empty: every job with changes: trigger or logical
  CaptureAction action = CaptureAction::install;
  bool orphans = false;  // --drop --orphans: what no capturing job of the file uses
};

int capture_command(const CaptureOptions& options, std::ostream& out);

}  // namespace pgxform
