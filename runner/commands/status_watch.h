// status_watch: `pgxform status --watch [SECONDS]` — status again every SECONDS (default 2)
// until SIGINT or SIGTERM, which end it with exit 0 (stop_signal.h).
//
// On a terminal (stdout) each refresh clears the screen and draws, from the top left, a header
// with the time and the table (cursor home, clear to the end: ESC[H ESC[J), so that it redraws
// in place like watch(1). Anywhere else (a pipe, a file) each refresh is the same header and
// table, appended after a blank line: a log of the status that `grep` and `tail -f` can read.
// With --json, each refresh is one JSON document on one line (NDJSON), never cleared.
#pragma once

#include <ostream>
#include <string>

#include "commands/status_command.h"
#include "plan/jobs_file.h"

namespace pgxform {

inline constexpr double k_default_watch_seconds = 2;
inline constexpr double k_max_watch_seconds = 3600;

// Whether refreshes clear the screen.
enum class WatchScreen { redraw, append };

// `screen`: redraw only where `out` is a terminal (the command line tells).
int watch_status(const StatusOptions& options, WatchScreen screen, std::ostream& out);
// The local time of day, "16:20:01", for a frame's header.
std::string local_time_of_day();
// Sleeps `seconds` in steps of 100 ms; false as soon as a stop was asked for.
bool sleep_unless_stopped_for(double seconds);
// A table frame's header: on a terminal the escapes that redraw from the top left, then
// "every 2 s, at 16:20:01 (Ctrl-C to stop)" and a blank line.
std::string watch_header(const StatusOptions& options, const std::string& time_of_day,
                         WatchScreen screen);
// One refresh as the watch prints it (the header and the table, or one JSON line).
std::string watch_frame(const StatusOptions& options, const StatusReport& report,
                        const std::string& time_of_day, WatchScreen screen);

}  // namespace pgxform
