#include "progress.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace pgxform {

void Progress::set_total_rows(const std::string& job, long long rows) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_jobs[job].total_rows = rows;
}

void Progress::batch_done(const std::string& task, const std::string& job, long long rows,
                          long long asked, double duration_ms, const std::string& last_key) {
  std::lock_guard<std::mutex> lock(m_mutex);
  const auto now = std::chrono::steady_clock::now();
  JobTrend& trend = m_jobs[job];
  BatchSample sample;
  sample.rows = rows;
  sample.asked = asked;
  sample.duration_ms = duration_ms;
  sample.started_s = std::chrono::duration<double>(now - m_start).count() - duration_ms / 1000;
  trend.batches.push_back(sample);
  // Each check reads every batch so far: at sizes growing by a quarter (12, 16, 20, 25, ...), so
  // that a job of a million batches is checked some fifty times, not a quarter of a million.
  if (!trend.warned && trend.batches.size() >= trend.next_check) {
    trend.next_check = std::max(trend.batches.size() + 4, trend.batches.size() * 5 / 4);
    check_trend(job, trend);
  }

  Entry& e = entry(task);
  e.rows += rows;
  e.batches += 1;
  if (now - e.last_report < m_interval) return;
  e.last_report = now;
  const double seconds = std::chrono::duration<double>(now - e.started).count();
  spdlog::info("{}: {} rows in {} batches this run, last key {}, {:.0f} rows/s", task, e.rows,
               e.batches, last_key, seconds > 0 ? double(e.rows) / seconds : 0.0);
}

Progress::Entry& Progress::entry(const std::string& task) {
  auto [it, added] = m_tasks.try_emplace(task);
  if (added) it->second.started = it->second.last_report = std::chrono::steady_clock::now();
  return it->second;
}

void Progress::range_done(const std::string& task, long long rows) {
  std::lock_guard<std::mutex> lock(m_mutex);
  Entry& e = entry(task);
  e.rows += rows;
  e.batches += 1;
}

void Progress::range_set_aside(const std::string& task) {
  std::lock_guard<std::mutex> lock(m_mutex);
  entry(task).set_aside += 1;
}

void Progress::check_trend(const std::string& job, JobTrend& trend) {
  const JobFigures figures = analyze_batches(trend.batches);
  if (figures.trend != Trend::growing) return;
  trend.warned = true;
  const long long remaining = std::max(0LL, trend.total_rows - figures.rows);
  const auto eta = eta_seconds(figures, remaining);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
  spdlog::warn(
      "{}: each batch costs more per row than the one before (x{:.1f} from the first to the last "
      "quarter of {} batches): the O(N²) signature. Projected total duration of the job: {}. "
      "See `pgxform explain {}` for the plan and the index that fixes it",
      job, figures.growth.value_or(0), figures.batches,
      eta ? human_duration(elapsed + *eta) : std::string("unknown"), job);
}

void Progress::job_finished(const std::string& task, std::optional<long long> job_rows) {
  std::lock_guard<std::mutex> lock(m_mutex);
  const std::string in_all = job_rows ? fmt::format("; {} rows in all", *job_rows) : "";
  const auto it = m_tasks.find(task);
  if (it == m_tasks.end()) {
    spdlog::info("{}: done, nothing new to process{}", task, in_all);
    return;
  }
  const Entry& e = it->second;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - e.started).count();
  const std::string set_aside =
      e.set_aside ? fmt::format(", {} range{} set aside", e.set_aside, e.set_aside == 1 ? "" : "s")
                  : "";
  spdlog::info("{}: done, {} rows in {} batches this run in {:.1f} s{}{}", task, e.rows, e.batches,
               seconds, set_aside, in_all);
}

std::vector<std::string> Progress::growing_jobs() {
  std::lock_guard<std::mutex> lock(m_mutex);
  std::vector<std::string> out;
  for (const auto& [job, trend] : m_jobs)
    if (trend.warned) out.push_back(job);
  return out;
}

}  // namespace pgxform
