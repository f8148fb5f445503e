#include "commands/fleet_watch.h"

#include <algorithm>
#include <sstream>

#include "base/exit_code.h"
#include "base/output_format.h"
#include "base/stop_signal.h"
#include "output/json_output.h"
#include "output/terminal_text.h"
#include "plan/jobs_file.h"

namespace pgxform {

namespace {

bool target_done(const FleetStatusLine& l) {
  return !l.unknown && l.jobs > 0 && l.done == l.jobs;
}

bool target_failed(const FleetStatusLine& l) {
  return l.unknown || l.failed > 0;
}

std::string totals_line(const FleetCounts& counts, const FleetStatusLine& fleet,
                        std::size_t targets) {
  std::ostringstream line;
  line << "fleet: " << targets << " targets: " << counts.done << " done, " << counts.running
       << " running, " << counts.failed << " failed, " << counts.waiting << " waiting; "
       << fleet.rows << " rows, "
       << (fleet.rows_per_s ? rate_text(*fleet.rows_per_s) + " rows/s" : "- rows/s") << ", ETA "
       << (fleet.eta_s ? eta_text(*fleet.eta_s) : "-") << "\n";
  return line.str();
}

}  // namespace

FleetCounts fleet_counts(const std::vector<FleetStatusLine>& target_lines) {
  FleetCounts counts;
  for (const auto& l : target_lines) {
    if (target_failed(l))
      ++counts.failed;
    else if (target_done(l))
      ++counts.done;
    else if (l.running > 0)
      ++counts.running;
    else
      ++counts.waiting;
  }
  return counts;
}

std::vector<FleetStatusLine> busiest_targets(const std::vector<FleetStatusLine>& target_lines,
                                             std::size_t count) {
  std::vector<FleetStatusLine> busy;
  for (const auto& l : target_lines)
    if (!target_failed(l) && !target_done(l)) busy.push_back(l);
  // Most rows left first; one that cannot tell after those that can; then the file's order.
  std::stable_sort(busy.begin(), busy.end(),
                   [](const FleetStatusLine& a, const FleetStatusLine& b) {
                     return a.rows_left.value_or(-1) > b.rows_left.value_or(-1);
                   });
  if (busy.size() > count) busy.resize(count);
  return busy;
}

std::string fleet_watch_frame(const StatusOptions& options,
                              const std::vector<TargetStatus>& targets,
                              const std::string& time_of_day, WatchScreen screen) {
  if (options.format == StatusFormat::json) return json_line(fleet_status_json(targets)) + "\n";
  std::vector<FleetStatusLine> lines = fleet_status_lines(targets);
  const FleetStatusLine fleet = lines.back();
  lines.pop_back();
  std::ostringstream frame;
  frame << watch_header(options, time_of_day, screen)
        << totals_line(fleet_counts(lines), fleet, lines.size());
  const std::vector<FleetStatusLine> busiest = busiest_targets(lines, k_busiest_targets);
  if (!busiest.empty()) {
    frame << "\nbusiest targets (most rows left first):\n";
    print_fleet_status_table(frame, busiest);
  }
  std::vector<FleetStatusLine> failed;
  for (const auto& l : lines)
    if (target_failed(l)) failed.push_back(l);
  if (!failed.empty()) {
    frame << "\nfailed targets:\n";
    print_fleet_status_table(frame, failed);
  }
  if (screen == WatchScreen::append) frame << "\n";
  return frame.str();
}

int watch_fleet_status(const StatusOptions& options, const TargetsFile& targets,
                       const std::string& target, WatchScreen screen, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  if (options.format != StatusFormat::table) screen = WatchScreen::append;
  install_stop_handlers();
  // A target that cannot be read is a line of the frame, never the end of the watch.
  Contact contact = Contact::first;
  do {
    const std::vector<TargetStatus> read =
        read_fleet_status(options, file, targets, target, contact);
    contact = Contact::again;
    out << fleet_watch_frame(options, read, local_time_of_day(), screen) << std::flush;
  } while (sleep_unless_stopped_for(*options.watch_seconds));
  return k_exit_ok;
}

}  // namespace pgxform
