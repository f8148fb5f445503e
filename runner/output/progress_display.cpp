#include "output/progress_display.h"

#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "base/output_format.h"
#include "output/logging.h"
#include "output/terminal_text.h"

namespace pgxform {

namespace {

std::size_t terminal_width() {
  winsize size{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

// The display's escapes (ECMA-48): hide and show the cursor; to the start of the line N lines
// up; erase from the cursor to the end of the screen.
const char* const k_hide_cursor = "\x1b[?25l";
const char* const k_show_cursor = "\x1b[?25h";
const char* const k_erase_below = "\x1b[J";

std::string percent_text(const TaskView& v) {
  return v.percent ? fixed(*v.percent, 1) + " %" : "? %";
}

}  // namespace

DisplayMode display_mode() {
  // --quiet: no progress at all; the plain lines are info lines, which the logger drops.
  const bool progress = spdlog::default_logger()->should_log(spdlog::level::info);
  return progress && isatty(STDERR_FILENO) == 1 && log_format() == LogFormat::text
             ? DisplayMode::terminal
             : DisplayMode::plain;
}

std::chrono::milliseconds plain_interval() {
  if (const char* ms = std::getenv("PGXFORM_PROGRESS_INTERVAL_MS")) {
    char* end = nullptr;
    const long value = std::strtol(ms, &end, 10);
    if (end != ms && *end == '\0' && value > 0) return std::chrono::milliseconds(value);
  }
  return k_plain_interval;
}

std::string block_line(const TaskView& v, std::size_t width) {
  const std::string eta = v.eta_s ? eta_text(*v.eta_s) : std::string("?");
  // A catch-up task: keys refreshed, and the changes left where known, for a percent.
  std::string line =
      v.phase == Phase::catch_up
          ? fmt::format("{:<24} {:>12} keys {:>8} {:>9}/s  ETA {:<8}", v.task, v.rows,
                        v.pending ? std::to_string(*v.pending) + " left" : std::string("? left"),
                        rate_text(v.rows_per_s), eta)
          : fmt::format("{:<24} {:>12} rows {:>8} {:>9}/s  ETA {:<8}", v.task, v.job_rows,
                        percent_text(v), rate_text(v.rows_per_s), eta);
  if (v.in_flight_s) line += fmt::format("  batch in flight {:.0f} s", *v.in_flight_s);
  if (v.waiting) line += "  " + *v.waiting;
  // The task's name and a waiting reason come from the jobs file and the database: on one line
  // (a line break would add a line the block does not count), then cut (bytes; names are
  // mostly ASCII, a cut UTF-8 tail is harmless).
  line = terminal_text(line, Lines::one);
  while (!line.empty() && line.back() == ' ') line.pop_back();
  if (line.size() >= width) line.resize(width > 1 ? width - 1 : 0);
  return line;
}

std::string plain_line(const TaskView& v) {
  if (v.phase == Phase::catch_up) {
    std::string line = fmt::format("{}: {} keys refreshed in {} batches this run, {:.0f} keys/s",
                                   v.task, v.rows, v.batches, v.rows_per_s);
    if (v.pending) line += fmt::format(", {} changes left", *v.pending);
    if (v.eta_s) line += ", ETA " + eta_text(*v.eta_s);
    if (v.waiting) line += "; " + *v.waiting;
    return line;
  }
  std::string line = fmt::format("{}: {} rows in {} batches this run", v.task, v.rows, v.batches);
  if (!v.last_key.empty()) line += ", last key " + v.last_key;
  line += fmt::format(", {:.0f} rows/s", v.rows_per_s);
  if (v.percent) line += ", " + percent_text(v);
  if (v.eta_s) line += ", ETA " + eta_text(*v.eta_s);
  if (v.in_flight_s)
    line += fmt::format(", ETA unknown: a batch in flight for {:.0f} s", *v.in_flight_s);
  if (v.waiting) line += "; " + *v.waiting;
  return line;
}

ProgressDisplay::ProgressDisplay(Progress& progress, DisplayMode mode)
    : m_progress(progress), m_mode(mode) {
  if (m_mode == DisplayMode::terminal) {
    std::cerr << k_hide_cursor << std::flush;
    set_log_writer([this](const std::string& line) { print_above(line); });
  }
  m_thread = std::thread([this] { loop(); });
}

ProgressDisplay::~ProgressDisplay() {
  stop();
}

void ProgressDisplay::stop() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_stopped) return;
    m_stopped = true;
    m_stopping = true;
  }
  m_wake.notify_all();
  if (m_thread.joinable()) m_thread.join();
  if (m_mode != DisplayMode::terminal) return;
  // The logger's lock before the display's (see the header): the writer goes first.
  set_log_writer({});
  std::lock_guard<std::mutex> lock(m_mutex);
  std::cerr << erase_block() << k_show_cursor << std::flush;
  m_block.clear();
}

void ProgressDisplay::loop() {
  const auto interval = m_mode == DisplayMode::terminal ? k_redraw : plain_interval();
  // Slow batches are looked for every k_redraw, whatever the interval of the lines.
  const auto tick = std::min<std::chrono::milliseconds>(interval, k_redraw);
  auto next_lines = std::chrono::steady_clock::now() + interval;
  std::unique_lock<std::mutex> lock(m_mutex);
  while (!m_stopping) {
    m_wake.wait_for(lock, tick, [this] { return m_stopping; });
    if (m_stopping) break;
    lock.unlock();
    m_progress.warn_slow_batches();  // through the logger: before the display's lock
    if (m_mode == DisplayMode::terminal) {
      draw();
    } else if (std::chrono::steady_clock::now() >= next_lines) {
      say_lines();
      next_lines = std::chrono::steady_clock::now() + interval;
    }
    lock.lock();
  }
}

std::string ProgressDisplay::erase_block() const {
  if (m_block.empty()) return "";
  return "\r\x1b[" + std::to_string(m_block.size()) + "F" + k_erase_below;
}

void ProgressDisplay::draw() {
  const std::vector<TaskView> views = m_progress.running();  // before the display's lock
  const std::size_t width = terminal_width();
  std::vector<std::string> lines;
  for (const auto& v : views) lines.push_back(block_line(v, width));
  std::lock_guard<std::mutex> lock(m_mutex);
  if (m_stopping) return;
  std::string out = erase_block();
  for (const auto& line : lines) out += line + "\n";
  std::cerr << out << std::flush;
  m_block = std::move(lines);
}

void ProgressDisplay::print_above(const std::string& line) {
  std::lock_guard<std::mutex> lock(m_mutex);
  std::string out = erase_block() + line;
  if (!line.empty() && line.back() != '\n') out += "\n";
  for (const auto& b : m_block) out += b + "\n";
  std::cerr << out << std::flush;
}

void ProgressDisplay::say_lines() {
  for (const auto& v : m_progress.running()) spdlog::info("{}", plain_line(v));
}

}  // namespace pgxform
