// progress: what a run tells the operator while it works, through the logger (stderr).
// One line per task at most every few seconds ("orders: 120000 rows in 12 batches this run,
// last key 360011, 4100 rows/s"), one when a task finishes ("orders: done, 120000 rows in 12
// batches this run in 3.1 s; 250000 rows in all": this run's rows beside the job's rows_done,
// the counter status shows, so that the two never seem to disagree), and an early warning as soon
// as a job's batches tell that they get slower as the job goes on (the O(N²) signature, see
// trend.h), with the job's projected total duration. Thread-safe: workers report batches.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "trend.h"

namespace pgxform {

class Progress {
 public:
  explicit Progress(std::chrono::milliseconds interval = std::chrono::seconds(2))
      : m_interval(interval) {}
  // The rows a job has in all (the planner's estimate), for projections.
  void set_total_rows(const std::string& job, long long rows);
  // A batch committed: its rows, the size it asked for and its duration (see BatchSample).
  void batch_done(const std::string& task, const std::string& job, long long rows, long long asked,
                  double duration_ms, const std::string& last_key);
  // A range of a failing batch that committed after bisection (on_error: skip): its rows count
  // in the task's rows, as in the job's rows_done; it stays out of the trend (its size is the
  // bisection's, not the batch sizer's).
  void range_done(const std::string& task, long long rows);
  // A range set aside (on_error: skip): not counted in rows, said in the task's last line.
  void range_set_aside(const std::string& task);
  // The task finished; job_rows: the job's rows_done in all, when this task finished the job.
  void job_finished(const std::string& task, std::optional<long long> job_rows);
  // Jobs warned about as growing during this run.
  std::vector<std::string> growing_jobs();

 private:
  struct Entry {
    long long rows = 0;
    long long batches = 0;
    long long set_aside = 0;
    std::chrono::steady_clock::time_point started, last_report;
  };
  struct JobTrend {
    std::vector<BatchSample> batches;
    long long total_rows = 0;
    bool warned = false;
    std::size_t next_check = k_min_batches;  // the batch count of the next trend check
  };
  void check_trend(const std::string& job, JobTrend& trend);
  Entry& entry(const std::string& task);

  std::chrono::milliseconds m_interval;
  std::mutex m_mutex;
  std::map<std::string, Entry> m_tasks;
  std::map<std::string, JobTrend> m_jobs;
  std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
};

}  // namespace pgxform
