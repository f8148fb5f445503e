// reset_command: `pgxform reset JOB [--to KEY]` — moves a job's cursor back on purpose: to its
// first key (the job's counters, batch log, slices and set-aside ranges are cleared), or to
// just after KEY (jobs without slices; set-aside ranges past KEY are dropped, as the next run
// covers them again). A one-shot step has no keys: reset makes the next run run it again.
// Refused while a runner holds the job (state_locks.h: JobClaim).
#pragma once

#include <optional>
#include <ostream>
#include <string>

#include "commands/command_options.h"

namespace pgxform {

struct ResetOptions : CommandOptions {
  std::string job;
  std::optional<std::string> to;  // --to KEY
};

int reset_command(const ResetOptions& options, std::ostream& out);

}  // namespace pgxform
