#include "progress.h"

#include <spdlog/spdlog.h>

namespace pgxform {

void Progress::batch_done(const std::string& job, long long rows, const std::string& last_key) {
  std::lock_guard<std::mutex> lock(m_mutex);
  const auto now = std::chrono::steady_clock::now();
  auto [it, added] = m_jobs.try_emplace(job);
  Entry& e = it->second;
  if (added) e.started = e.last_report = now;
  e.rows += rows;
  e.batches += 1;
  if (now - e.last_report < m_interval) return;
  e.last_report = now;
  const double seconds = std::chrono::duration<double>(now - e.started).count();
  spdlog::info("{}: {} rows in {} batches this run, last key {}, {:.0f} rows/s", job, e.rows,
               e.batches, last_key, seconds > 0 ? double(e.rows) / seconds : 0.0);
}

void Progress::job_finished(const std::string& job) {
  std::lock_guard<std::mutex> lock(m_mutex);
  const auto it = m_jobs.find(job);
  if (it == m_jobs.end()) {
    spdlog::info("{}: done, nothing new to process", job);
    return;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second.started).count();
  spdlog::info("{}: done, {} rows in {} batches in {:.1f} s", job, it->second.rows,
               it->second.batches, seconds);
}

}  // namespace pgxform
