// progress: what a run tells the operator while it works, through the logger (stderr).
// One line per job at most every few seconds ("orders: 120000 rows in 12 batches, last key
// 360011, 4100 rows/s"), and one when a job finishes. Thread-safe: workers report batches.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace pgxform {

class Progress {
 public:
  explicit Progress(std::chrono::milliseconds interval = std::chrono::seconds(2))
      : m_interval(interval) {}
  void batch_done(const std::string& job, long long rows, const std::string& last_key);
  void job_finished(const std::string& job);

 private:
  struct Entry {
    long long rows = 0;
    long long batches = 0;
    std::chrono::steady_clock::time_point started, last_report;
  };
  std::chrono::milliseconds m_interval;
  std::mutex m_mutex;
  std::map<std::string, Entry> m_jobs;
};

}  // namespace pgxform
