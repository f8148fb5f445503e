// fleet_status: `pgxform status --targets targets.yaml` — one line per target of a fleet
// (fleet_run.h) and the fleet's totals, read from each target's own state; or with --json
// every target's figures and every job object of `status --json`, each with its "target".
//
//   TARGET    JOBS  DONE  RUNNING  FAILED        ROWS     RATE      ETA  NOTE
//   s1           3     3        0       0      500000        -        -
//   s2           3     1        1       0      120000    4.1k/s    1m32s
//   s3           -     -        -       -           -        -        -  unreachable: ...
//   fleet        6     4        1       0      620000    4.1k/s    1m32s  1 target unreachable
//
// A target's ETA is its slowest job's; the fleet's the slowest target's (the targets run side
// by side). A target that cannot be read is a line of its own, "unreachable: why", never the
// end of the command; the exit code is 1 when one could not be read. FleetTarget names are printed
// as terminal text (escaped), and so are the reasons.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "commands/status_command.h"
#include "output/json_output.h"
#include "plan/targets_file.h"

namespace pgxform {

struct TargetStatus {
  std::string target;
  std::optional<std::string> error;  // could not be read: why
  StatusReport report;
};

struct FleetStatusLine {
  std::string target;  // "fleet" for the totals
  int jobs = 0, done = 0, running = 0, failed = 0;
  long long rows = 0;
  std::optional<double> rows_per_s, eta_s;
  // The rows its unfinished jobs have left (from their percent done, else their ETA and rate);
  // none when no unfinished job can tell.
  std::optional<double> rows_left;
  std::string note;
  bool unknown = false;  // not read: no figures
};

// One line per target, then the totals.
std::vector<FleetStatusLine> fleet_status_lines(const std::vector<TargetStatus>& targets);
void print_fleet_status_table(std::ostream& out, const std::vector<FleetStatusLine>& lines);
// {"targets": [{"target": ..., "jobs": ..., ...}], "fleet": {...}, "jobs": [{"target": ...,
//  "job": ..., (status --json's keys)}]}
Json fleet_status_json(const std::vector<TargetStatus>& targets);

// Each chosen target's status report (all, or `target`'s), in the file's order; a target that
// cannot be read has its error (prefixed as target_problem says), never an exception.
std::vector<TargetStatus> read_fleet_status(const StatusOptions& options, const JobsFile& file,
                                            const TargetsFile& targets, const std::string& target,
                                            Contact contact = Contact::first);

int fleet_status_command(const StatusOptions& options, const TargetsFile& targets,
                         const std::string& target, std::ostream& out);

}  // namespace pgxform
