#include "output/fleet_report.h"

#include <algorithm>
#include <sstream>

#include "base/output_format.h"

namespace pgxform {

namespace {

double batch_seconds(const JobProfile& job) {
  double ms = 0;
  for (const auto& b : job.batches) ms += b.duration_ms;
  for (const auto& b : job.set_apart) ms += b.duration_ms;
  return ms / 1000;
}

std::optional<double> largest_eta(const TargetProfiles& target) {
  std::optional<double> eta;
  for (const auto& job : target.jobs)
    if (job.status != "done" && job.eta_seconds) eta = std::max(eta.value_or(0), *job.eta_seconds);
  return eta;
}

// One row of the targets' card.
void target_row(std::ostream& out, const TargetProfiles& t) {
  out << "<tr data-target=\"" << html_escape(t.target) << "\"><td>" << html_escape(t.target)
      << "</td>";
  if (t.error) {
    out << "<td>-</td><td>-</td><td>-</td><td>-</td><td>-</td><td>-</td><td>-</td><td>"
        << html_escape(*t.error) << "</td></tr>\n";
    return;
  }
  std::size_t done = 0, batches = 0;
  long long rows = 0;
  double seconds = 0;
  for (const auto& job : t.jobs) {
    done += job.status == "done" ? 1 : 0;
    batches += job.figures.batches;
    rows += job.figures.rows;
    seconds += batch_seconds(job);
  }
  const auto eta = largest_eta(t);
  out << "<td>" << t.jobs.size() << "</td><td>" << done << "</td><td>" << batches << "</td><td>"
      << rows << "</td><td>" << (seconds > 0 ? rate_text(double(rows) / seconds) : "-")
      << "</td><td>" << fixed(seconds, 1) << " s</td><td>"
      << (done == t.jobs.size() ? "-"
          : eta                 ? eta_text(*eta)
                                : "?")
      << "</td><td></td></tr>\n";
}

std::string targets_card(const std::vector<TargetProfiles>& targets) {
  std::ostringstream out;
  out << "<section class=\"card\" id=\"targets\"><h2>Targets, slowest first</h2>\n"
      << "<p class=\"meta\">" << targets.size() << " target" << (targets.size() == 1 ? "" : "s")
      << "; a target's time: its batches' durations, and its largest ETA while it is not done."
      << " Its jobs below are named TARGET/JOB, in this order.</p>\n"
      << "<div class=\"table-wrap\"><table class=\"targets\">\n<thead><tr><th>Target</th>"
      << "<th>Jobs</th><th>Done</th><th>Batches</th><th>Rows</th><th>Rows/s</th>"
      << "<th>Batch time</th><th>ETA</th><th>Note</th></tr></thead>\n<tbody>\n";
  for (const auto& t : targets) target_row(out, t);
  out << "</tbody>\n</table></div>\n</section>\n";
  return out.str();
}

}  // namespace

double target_seconds(const TargetProfiles& target) {
  double seconds = 0;
  for (const auto& job : target.jobs) seconds += batch_seconds(job);
  return seconds + largest_eta(target).value_or(0);
}

std::vector<TargetProfiles> slowest_first(std::vector<TargetProfiles> targets) {
  std::stable_sort(targets.begin(), targets.end(),
                   [](const TargetProfiles& a, const TargetProfiles& b) {
                     if (bool(a.error) != bool(b.error)) return !a.error;
                     return target_seconds(a) > target_seconds(b);
                   });
  return targets;
}

void write_fleet_report(std::ostream& out, const ReportHeading& heading,
                        const std::vector<TargetProfiles>& targets) {
  const std::vector<TargetProfiles> sorted = slowest_first(targets);
  std::vector<JobProfile> jobs;
  for (const auto& t : sorted)
    for (JobProfile job : t.jobs) {
      job.job = t.target + "/" + job.job;
      jobs.push_back(std::move(job));
    }
  write_report(out, heading, jobs, targets_card(sorted));
}

}  // namespace pgxform
