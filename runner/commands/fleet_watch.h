// fleet_watch: `pgxform status --targets targets.yaml --watch [SECONDS]` — the fleet's status
// again every SECONDS (default 2) until SIGINT or SIGTERM (exit 0), drawn as status --watch
// draws (status_watch.h: redrawn in place on a terminal, appended elsewhere, one JSON line per
// refresh with --json: fleet_status_json's document).
//
// A frame is the fleet block — one line of the fleet's totals, then its busiest targets:
//
//   every 2 s, at 16:20:01 (Ctrl-C to stop)
//
//   fleet: 9 targets: 6 done, 2 running, 1 failed, 0 waiting; 620000 rows, 4.1k rows/s, ETA 4m10s
//
//   busiest targets (most rows left first):
//   TARGET    JOBS  DONE  RUNNING  FAILED        ROWS     RATE      ETA  NOTE
//   s7           3     1        2       0      120000      4.1k    4m10s
//   ...
//
// A target is done when all its jobs are, failed when one of its jobs failed or it could not
// be read, running when a job of it runs, else waiting. The busiest are the targets neither
// done nor failed with the most rows left (fleet_status.h: rows_left; a target that cannot tell
// comes after), at most k_busiest_targets of them; then, if any, the targets that failed (their
// note says why). Target names and notes are terminal text (escaped), as in status --targets.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "commands/fleet_status.h"
#include "commands/status_watch.h"

namespace pgxform {

inline constexpr std::size_t k_busiest_targets = 5;

// The fleet's targets by what they are doing, from their status lines.
struct FleetCounts {
  int done = 0, running = 0, failed = 0, waiting = 0;
};
FleetCounts fleet_counts(const std::vector<FleetStatusLine>& target_lines);

// The lines of the busiest targets (neither done nor failed), most rows left first, at most
// `count`.
std::vector<FleetStatusLine> busiest_targets(const std::vector<FleetStatusLine>& target_lines,
                                             std::size_t count);

// One refresh of the fleet as the watch prints it.
std::string fleet_watch_frame(const StatusOptions& options,
                              const std::vector<TargetStatus>& targets,
                              const std::string& time_of_day, WatchScreen screen);

int watch_fleet_status(const StatusOptions& options, const TargetsFile& targets,
                       const std::string& target, WatchScreen screen, std::ostream& out);

}  // namespace pgxform
