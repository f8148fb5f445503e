#include "commands/status_watch.h"

#include <chrono>
#include <ctime>
#include <sstream>
#include <thread>

#include "base/exit_code.h"
#include "base/output_format.h"
#include "base/stop_signal.h"

namespace pgxform {

std::string local_time_of_day() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char text[16];
  std::strftime(text, sizeof text, "%H:%M:%S", &tm);
  return text;
}

bool sleep_unless_stopped_for(double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (stop_level() > 0) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return stop_level() == 0;
}

std::string watch_header(const StatusOptions& options, const std::string& time_of_day,
                         WatchScreen screen) {
  std::ostringstream header;
  // Home and clear to the end of the screen: no flicker of a blank screen between two frames.
  if (screen == WatchScreen::redraw) header << "\x1b[H\x1b[J";
  header << "every " << fixed(*options.watch_seconds, *options.watch_seconds < 1 ? 1 : 0)
         << " s, at " << time_of_day << " (Ctrl-C to stop)\n\n";
  return header.str();
}

std::string watch_frame(const StatusOptions& options, const StatusReport& report,
                        const std::string& time_of_day, WatchScreen screen) {
  std::ostringstream frame;
  if (options.format == StatusFormat::json) {
    print_status_json(frame, report.jobs, report.runners);
    return frame.str();
  }
  frame << watch_header(options, time_of_day, screen);
  print_status_table(frame, report.jobs, report.runners);
  if (screen == WatchScreen::append) frame << "\n";
  return frame.str();
}

int watch_status(const StatusOptions& options, WatchScreen screen, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  if (options.format != StatusFormat::table) screen = WatchScreen::append;
  install_stop_handlers();
  // A server that goes away while watched is a lost connection (exit 1), not bad input.
  Contact contact = Contact::first;
  do {
    const StatusReport report = read_status_report(options, file, contact);
    contact = Contact::again;
    out << watch_frame(options, report, local_time_of_day(), screen) << std::flush;
  } while (sleep_unless_stopped_for(*options.watch_seconds));
  return k_exit_ok;
}

}  // namespace pgxform
