// fleet_report: a fleet's profile as one HTML page, for `pgxform profile --targets FILE --html
// FILE` — report.h's page (the same renderer: warnings, summary, a chart per job), with a card
// first that compares the targets, and every job under its target's name ("s1/items").
//
// Targets are ordered slowest first, and their jobs with them: a target's time is the sum of
// its jobs' batch durations (the time its transform took) plus, when it is not done, its
// largest ETA (the time it still needs) — so the target that holds the fleet back heads the
// page. A target that could not be read is listed last with why. Every name and message is
// HTML-escaped (report.h: html_escape).
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "analysis/job_profile.h"
#include "output/report.h"

namespace pgxform {

struct TargetProfiles {
  std::string target;
  std::vector<JobProfile> jobs;
  std::optional<std::string> error;  // could not be read: why (its jobs are then empty)
};

// A target's batch seconds plus its largest ETA (unfinished jobs); 0 for one not read.
double target_seconds(const TargetProfiles& target);
// Slowest first (target_seconds), those that could not be read last; ties in the given order.
std::vector<TargetProfiles> slowest_first(std::vector<TargetProfiles> targets);

void write_fleet_report(std::ostream& out, const ReportHeading& heading,
                        const std::vector<TargetProfiles>& targets);

}  // namespace pgxform
