// control_command: `pgxform pause`, `resume` and `set` — steer jobs while they run, from any
// host that reaches the database, by writing the control table (job_control.h), which running
// runners read between batches:
//   pgxform pause  [NAME...] [--all]        no new batch for these jobs (the one in flight
//                                           commits) until resumed
//   pgxform resume [NAME...] [--all]
//   pgxform set    [NAME...] [--all] KEY=VALUE...   batch_size, target_batch_ms, pause_ms
//   pgxform set    --threads N              the workers of every running runner of this
//                                           jobs file (its state schema), up or down
// KEY=default (and --threads default) clears the setting: the row's value goes back to NULL,
// and the next wider row, else the jobs file (for threads: each runner's own), decides again.
// A NAME is a list or a batched job of the jobs file; a name that is both is refused unless
// --list or --job says which. Everything is checked before anything is written: an unknown name,
// key or value is exit 2 with nothing written. Creates or upgrades the state schema, so that a
// migration can be paused before its run starts. Prints what it changed.
//
// parse (parse_control_request, pure: names resolved against the jobs file, settings parsed)
// -> write (one transaction) -> render.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "commands/command_options.h"
#include "plan/jobs_file.h"
#include "state/job_control.h"

namespace pgxform {

enum class ControlAction { pause, resume, set };

struct ControlOptions : CommandOptions {
  ControlAction action = ControlAction::pause;
  std::vector<std::string> arguments;  // names, and KEY=VALUE for set
  bool all = false;
  // --list or --job: what the NAMEs are. Without either, a name that is both a list's and a
  // job's is refused, as it could mean either.
  std::optional<ControlScope> names_are;
  std::optional<int> threads;    // set --threads N
  bool threads_default = false;  // set --threads default
};

int control_command(const ControlOptions& options, std::ostream& out);

struct ControlTarget {
  ControlScope scope = ControlScope::all;
  std::string name;
  std::string text() const;  // "job items", "list shop", "every job"
};

struct ControlRequest {
  std::vector<ControlTarget> targets;
  ControlValues values;        // set: the settings; pause/resume: paused
  ControlClear clear;          // set KEY=default: the settings cleared
  bool clear_threads = false;  // set --threads default
  std::string settings_text;   // "batch_size=500 pause_ms=100"
  std::optional<int> threads;  // set --threads: every runner's workers
};

// Throws UsageError (exit 2) for a request that names nothing, an unknown list or job (with a
// suggestion), a one-shot step, or an unknown or invalid setting.
ControlRequest parse_control_request(const JobsFile& file, const ControlOptions& options);

}  // namespace pgxform
