// catch_up_command: `pgxform catch-up [JOB...] [--follow] [--until N]` — drains the change
// logs of the jobs with `changes: trigger` (docs/catch-up.md) through their refresh functions,
// each job on a worker of the pool (change_drain.h), and `pgxform capture [JOB...] [--drop]`,
// which installs (or removes) their capture triggers (change_capture.h) ahead of a run.
//
// catch-up checks the jobs as run does (the catalog, the refresh functions) before it writes
// anything, then drains the lists in their order (`after:` and the order within a list, so
// that a refresh that needs a parent row finds it), several lists at once. Each job is claimed
// with its own catch-up lock, not the run's task lock: catch-up and run work side by side.
// With --follow every job drains at once, in no order, and waits for more changes until a
// signal. Exit 0 when every log is drained (--until N: at most N changes left per job; with
// --follow: stopped by a signal), 1 when a refresh failed, 2 for bad input, 3 when a signal
// stopped a catch-up without --follow.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "base/setting_limits.h"
#include "commands/command_options.h"

namespace pgxform {

struct CatchUpOptions : CommandOptions {
  std::vector<std::string> jobs;  // empty: every job with changes: trigger
  bool follow = false;
  std::optional<long long> until;
  int threads = 0;                                          // 0: defaults.threads
  int reserve_connections = k_default_reserve_connections;  // left free on the server
};

int catch_up_command(const CatchUpOptions& options, std::ostream& out);

enum class CaptureAction { install, drop };

struct CaptureOptions : CommandOptions {
  std::vector<std::string> jobs;  // empty: every job with changes: trigger
  CaptureAction action = CaptureAction::install;
};

int capture_command(const CaptureOptions& options, std::ostream& out);

}  // namespace pgxform
