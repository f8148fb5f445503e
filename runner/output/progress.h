// progress: what a run knows of its work while it works, and what it says of it through the
// logger (stderr). The periodic line per task ("orders: 120000 rows in 12 batches this run,
// last key 360011, 4100 rows/s, 48.0 %, ETA 1m02s") and the live display are drawn by
// progress_display.h from running(); this class says itself one line when a task finishes ("orders:
// done, 120000 rows in 12 batches this run in 3.1 s; 250000 rows in all": this run's rows beside
// the job's rows_done, the counter status shows, so that the two never seem to disagree), and an
// early warning as soon as a job's batches tell that they get slower as the job goes on (the O(N²)
// signature, see trend.h), with the job's projected total duration. Thread-safe: workers report
// batches, the display's thread reads running().
//
// A task's rate is its rows over the last minute (k_live_window), over that minute or the time
// since the task started if less; its job's percent is the job's rows (its rows_done when the
// run started, set_job_rows, plus this run's) against the planner's estimate, at most 99.9
// until the job is done, as the done line says; its ETA the rows left over the rate of all the
// job's tasks.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "analysis/trend.h"
#include "plan/scheduler.h"

namespace pgxform {

// A task at work, or waiting, as the display shows it. A catch-up task (phase catch_up) counts
// keys refreshed in `rows`; its `pending` are the changes left to refresh, when known, and its
// ETA those over its rate.
struct TaskView {
  std::string task, job;
  Phase phase = Phase::main;
  std::optional<long long> pending;
  long long rows = 0, batches = 0;  // this run's, of this task
  std::string last_key;
  long long job_rows = 0;  // the job's rows in all: before this run and this run's
  std::optional<double> percent;
  double rows_per_s = 0;
  std::optional<double> eta_s;
  // "paused (job items)", "throttled: max_xact_age_s 12 > 10", "held by host:pid".
  std::optional<std::string> waiting;
  // The age of its batch in flight, once that is past k_slow_batch_factor times its target:
  // its ETA is then unknown (none), for the rate cannot tell how long the batch still takes.
  std::optional<double> in_flight_s;
};

// A batch in flight past this many times its target_batch_ms (a fixed-size batch's target
// counts as k_fixed_batch_target_ms) is slow: the log warns, and again at twice the age, four
// times, ..., naming pgxform status (what it waits on) and pgxform explain JOB --running.
inline constexpr double k_slow_batch_factor = 10;
inline constexpr double k_fixed_batch_target_ms = 1000;

inline constexpr std::chrono::seconds k_live_window{60};

class Progress {
 public:
  // The rows a job has in all (the planner's estimate), for projections.
  void set_total_rows(const std::string& job, long long rows);
  // The rows the job had done when the run started (job_state.rows_done).
  void set_job_rows(const std::string& job, long long rows);
  // A worker took the task; it ended (whatever the outcome); another runner holds it
  // (`holder`: host:pid, or empty when unknown).
  void task_started(const std::string& task, const std::string& job, Phase phase = Phase::main);
  void task_ended(const std::string& task);
  void task_held(const std::string& task, const std::string& job, const std::string& holder);
  // Why the task takes no batch now ("paused (job items)", "throttled: ..."), or none.
  void set_waiting(const std::string& task, const std::optional<std::string>& why);
  // The tasks at work or held elsewhere, in task order.
  std::vector<TaskView> running();
  // A batch began (its transaction; target_ms 0: a fixed size); it committed or failed.
  void batch_started(const std::string& task, double target_ms);
  void batch_ended(const std::string& task);
  // Says, through the logger, of every batch in flight past k_slow_batch_factor times its
  // target, once at that age and again each time its age doubles. Called now and then (the
  // display's thread, twice a second); returns the tasks warned of now.
  std::vector<std::string> warn_slow_batches();
  // The age in seconds of each batch in flight, by job (the oldest of its tasks'): metrics.
  std::map<std::string, double> batches_in_flight();
  // A batch committed: its rows, the size it asked for and its duration (see BatchSample). A
  // catch-up batch's rows are keys: they count in the task's figures, not in the job's rows or
  // its trend.
  void batch_done(const std::string& task, const std::string& job, Phase phase, long long rows,
                  long long asked, double duration_ms, const std::string& last_key);
  // A range of a failing batch that committed after bisection (on_error: skip): its rows count
  // in the task's rows, as in the job's rows_done; it stays out of the trend (its size is the
  // bisection's, not the batch sizer's).
  void range_done(const std::string& task, Phase phase, long long rows);
  // A catch-up task's changes left to refresh.
  void set_pending(const std::string& task, long long pending);
  // The rows (a catch-up task's keys) this command's tasks committed, per task.
  long long task_rows(const std::string& task);
  // A range set aside (on_error: skip): not counted in rows, said in the task's last line.
  void range_set_aside(const std::string& task);
  // The task finished; job_rows: the job's rows_done in all, when this task finished the job.
  // A catch-up task says what it caught up.
  void job_finished(const std::string& task, std::optional<long long> job_rows);
  // Jobs warned about as growing during this run.
  std::vector<std::string> growing_jobs();

 private:
  struct Entry {
    Phase phase = Phase::main;
    long long rows = 0;
    long long batches = 0;
    long long set_aside = 0;
    std::chrono::steady_clock::time_point started;
  };
  struct LiveTask {
    std::string job;
    Phase phase = Phase::main;
    std::optional<long long> pending;
    std::chrono::steady_clock::time_point started;
    std::vector<std::pair<std::chrono::steady_clock::time_point, long long>> recent;  // rows
    std::optional<std::string> waiting;
    std::string last_key;
    std::optional<std::chrono::steady_clock::time_point> batch_since;  // a batch in flight
    double slow_after_s = 0;  // its age that makes it slow, and the next warning's
    double warn_at_s = 0;
  };
  struct JobTrend {
    std::vector<BatchSample> batches;
    long long total_rows = 0;
    long long rows_before = 0;  // rows_done when the run started
    long long rows_now = 0;     // this run's
    bool warned = false;
    std::size_t next_check = k_min_batches;  // the batch count of the next trend check
  };
  void check_trend(const std::string& job, JobTrend& trend);
  Entry& entry(const std::string& task, Phase phase);
  void count_rows(const std::string& task, long long rows);

  std::mutex m_mutex;
  std::map<std::string, LiveTask> m_live;
  std::map<std::string, Entry> m_tasks;
  std::map<std::string, JobTrend> m_jobs;
  std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
};

// A batch in flight for its scope: Progress::batch_started, then batch_ended however it ends.
class InFlight {
 public:
  InFlight(Progress& progress, std::string task, double target_ms)
      : m_progress(progress), m_task(std::move(task)) {
    m_progress.batch_started(m_task, target_ms);
  }
  ~InFlight() { m_progress.batch_ended(m_task); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  Progress& m_progress;
  std::string m_task;
};

}  // namespace pgxform
