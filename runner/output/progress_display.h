// progress_display: what `pgxform run` shows of its running tasks while it works (progress.h
// knows the figures).
//
// On a terminal (stderr is a tty, the log is text and not --quiet): a block of lines at the
// bottom, one per running task — task, the job's rows and percent, the task's rows per second,
// the job's ETA, what it waits for — redrawn in place every k_redraw. Every log line is printed
// above the block: the logger hands its lines over (logging.h: set_log_writer), and under one lock
// the block is erased, the line written and the block drawn again, so that no line is lost
// or torn. (A task's line may outlive its done line by up to k_redraw: the block is redrawn
// from its last figures when a log line comes.) Lines are cut to the terminal's width: a wrapped
// line would throw the count of lines to erase off. The cursor is hidden while the block is up and
// shown again when the display stops — at the end of the run, after Ctrl-C (the run ends its
// batches and stops it), and on an exception (the destructor) — with the block erased: the done
// lines said it all.
//
// Anywhere else (a pipe, a file, --log-format json): one progress line per running task,
// through the logger, every k_plain_interval (10 s; PGXFORM_PROGRESS_INTERVAL_MS overrides
// it, for tests): "orders: 120000 rows in 12 batches this run, last key 360011, 4100 rows/s,
// 48.0 %, ETA 1m02s", and "; paused (job orders)" when it waits.
//
// Threads: one thread of its own draws; it reads Progress::running() (the progress's lock)
// before it takes its own, and the logger takes its lock before the display's: no cycle.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "output/progress.h"

namespace pgxform {

enum class DisplayMode { terminal, plain };

inline constexpr std::chrono::milliseconds k_redraw{500};
inline constexpr std::chrono::milliseconds k_plain_interval{10000};

// The mode for this process: terminal when stderr is one and the log is text.
DisplayMode display_mode();
// k_plain_interval, or PGXFORM_PROGRESS_INTERVAL_MS when set (tests).
std::chrono::milliseconds plain_interval();

// One task's line in the terminal's block, cut to `width` columns.
std::string block_line(const TaskView& view, std::size_t width);
// One task's periodic line off a terminal (without the logger's prefix).
std::string plain_line(const TaskView& view);

class ProgressDisplay {
 public:
  ProgressDisplay(Progress& progress, DisplayMode mode);
  ~ProgressDisplay();
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;
  // Ends the thread; on a terminal, erases the block and shows the cursor. Idempotent.
  void stop();

 private:
  void loop();
  void draw();                                // terminal: the block, afresh
  void print_above(const std::string& line);  // terminal: a log line
  void say_lines();                           // plain: one line per task
  std::string erase_block() const;            // the escapes that erase the block

  Progress& m_progress;
  DisplayMode m_mode;
  std::mutex m_mutex;  // the terminal's lines, m_block, m_stopping
  std::condition_variable m_wake;
  std::vector<std::string> m_block;  // the lines on screen now
  bool m_stopping = false;
  bool m_stopped = false;
  std::thread m_thread;
};

}  // namespace pgxform
