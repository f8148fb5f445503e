// fleet_profile: `pgxform profile -f jobs.yaml --targets targets.yaml [--json] [--html FILE]`
// — each target's profile (profile_command.h), one after the other under a line
// "== target NAME", as the other commands over a fleet print theirs; with --html one report
// comparing the targets (fleet_report.h: slowest target's jobs first), with a target that
// could not be read listed with why. A target's error is logged with its name and the next one
// runs; the exit code is the targets' when they all agree, else 1.
#pragma once

#include <ostream>
#include <string>

#include "commands/profile_command.h"
#include "plan/targets_file.h"

namespace pgxform {

int fleet_profile_command(const ProfileOptions& options, const TargetsFile& targets,
                          const std::string& target, std::ostream& out);

}  // namespace pgxform
