// fleet_targets: the targets of a --targets file (targets_file.h), with the rows of its
// targets_query read, for every command that runs over a fleet.
//
// The query runs read-only on a connection of its own (targets_query.dsn, completed from the
// PG* environment); a query the server refuses, or a server that cannot be reached, is the
// file's problem: a TargetsFileError naming the file and the query's line (exit 2), before
// anything is written anywhere. Its rows are checked as the file's own entries are.
#pragma once

#include <string>
#include <vector>

#include "plan/targets_file.h"

namespace pgxform {

// The file's targets, then the query's rows.
TargetsFile read_targets(const std::string& path);

// The host a target's workers count against (max_threads_per_host): its `host`, else the host
// and port of its connection string (the PG* environment filling what it leaves out).
std::string target_host(const FleetTarget& target);

// `--target NAME`: the targets a command runs on: that one (an unknown name is an input error
// naming the nearest), or all of them when `name` is empty.
std::vector<FleetTarget> chosen_targets(const TargetsFile& file, const std::string& name);

// Why a target did not finish or could not be read, for one line: redacted, its trailing
// newline (libpq's) cut.
std::string target_problem(std::string text);

}  // namespace pgxform
