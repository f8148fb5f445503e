#include "output/progress.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace pgxform {

void Progress::set_total_rows(const std::string& job, long long rows) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_jobs[job].total_rows = rows;
}

void Progress::batch_done(const std::string& task, const std::string& job, Phase phase,
                          long long rows, long long asked, double duration_ms,
                          const std::string& last_key) {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (phase == Phase::catch_up) {
    Entry& e = entry(task, phase);
    e.rows += rows;
    e.batches += 1;
    count_rows(task, rows);
    if (const auto live = m_live.find(task); live != m_live.end()) live->second.last_key = last_key;
    return;
  }
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

  Entry& e = entry(task, phase);
  e.rows += rows;
  e.batches += 1;
  trend.rows_now += rows;
  count_rows(task, rows);
  if (const auto live = m_live.find(task); live != m_live.end()) live->second.last_key = last_key;
}

void Progress::count_rows(const std::string& task, long long rows) {
  const auto live = m_live.find(task);
  if (live == m_live.end()) return;
  const auto now = std::chrono::steady_clock::now();
  auto& recent = live->second.recent;
  recent.emplace_back(now, rows);
  // Older than the window: out. A vector, trimmed from the front now and then: a task commits
  // a few batches a second at most.
  const auto first = std::find_if(recent.begin(), recent.end(),
                                  [&](const auto& r) { return now - r.first <= k_live_window; });
  if (first - recent.begin() > 64) recent.erase(recent.begin(), first);
}

void Progress::set_job_rows(const std::string& job, long long rows) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_jobs[job].rows_before = rows;
}

void Progress::task_started(const std::string& task, const std::string& job, Phase phase) {
  std::lock_guard<std::mutex> lock(m_mutex);
  LiveTask& live = m_live[task];
  live = LiveTask{};
  live.job = job;
  live.phase = phase;
  live.started = std::chrono::steady_clock::now();
}

void Progress::batch_started(const std::string& task, double target_ms) {
  std::lock_guard<std::mutex> lock(m_mutex);
  const auto live = m_live.find(task);
  if (live == m_live.end()) return;
  live->second.batch_since = std::chrono::steady_clock::now();
  live->second.slow_after_s =
      k_slow_batch_factor * (target_ms > 0 ? target_ms : k_fixed_batch_target_ms) / 1000;
  live->second.warn_at_s = live->second.slow_after_s;
}

void Progress::batch_ended(const std::string& task) {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (const auto live = m_live.find(task); live != m_live.end()) live->second.batch_since.reset();
}

std::vector<std::string> Progress::warn_slow_batches() {
  std::lock_guard<std::mutex> lock(m_mutex);
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::string> warned;
  for (auto& [task, live] : m_live) {
    if (!live.batch_since) continue;
    const double age = std::chrono::duration<double>(now - *live.batch_since).count();
    if (age < live.warn_at_s) continue;
    // Again at twice the age, not every tick: a batch stuck for an hour says so some dozen
    // times, not seven thousand.
    while (live.warn_at_s <= age) live.warn_at_s *= 2;
    spdlog::warn(
        "{}: a batch has been in flight for {:.0f} s, more than {:.0f} times its target of "
        "{:.0f} ms; pgxform status shows what it waits on (a lock and its holder), pgxform "
        "explain {} --running how it is planned",
        task, age, k_slow_batch_factor, live.slow_after_s * 1000 / k_slow_batch_factor, live.job);
    warned.push_back(task);
  }
  return warned;
}

std::map<std::string, double> Progress::batches_in_flight() {
  std::lock_guard<std::mutex> lock(m_mutex);
  const auto now = std::chrono::steady_clock::now();
  std::map<std::string, double> ages;
  for (const auto& [task, live] : m_live)
    if (live.batch_since) {
      const double age = std::chrono::duration<double>(now - *live.batch_since).count();
      ages[live.job] = std::max(ages[live.job], age);
    }
  return ages;
}

void Progress::task_ended(const std::string& task) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_live.erase(task);
}

void Progress::task_held(const std::string& task, const std::string& job,
                         const std::string& holder) {
  std::lock_guard<std::mutex> lock(m_mutex);
  LiveTask& live = m_live[task];
  live.job = job;
  live.started = std::chrono::steady_clock::now();
  live.waiting = holder.empty() ? "held by another runner" : "held by " + holder;
}

void Progress::set_waiting(const std::string& task, const std::optional<std::string>& why) {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (const auto live = m_live.find(task); live != m_live.end()) live->second.waiting = why;
}

std::vector<TaskView> Progress::running() {
  std::lock_guard<std::mutex> lock(m_mutex);
  const auto now = std::chrono::steady_clock::now();
  std::vector<TaskView> views;
  std::map<std::string, double> job_rates;
  for (const auto& [task, live] : m_live) {
    TaskView v;
    v.task = task;
    v.job = live.job;
    v.phase = live.phase;
    v.pending = live.pending;
    v.last_key = live.last_key;
    if (const auto e = m_tasks.find(task); e != m_tasks.end()) {
      v.rows = e->second.rows;
      v.batches = e->second.batches;
    }
    long long recent = 0;
    for (const auto& [at, rows] : live.recent)
      if (now - at <= k_live_window) recent += rows;
    const double span = std::min(std::chrono::duration<double>(now - live.started).count(),
                                 double(k_live_window.count()));
    v.rows_per_s = span > 0.5 ? double(recent) / span : 0.0;
    v.waiting = live.waiting;
    if (live.batch_since) {
      const double age = std::chrono::duration<double>(now - *live.batch_since).count();
      if (age >= live.slow_after_s) v.in_flight_s = age;
    }
    if (live.phase == Phase::catch_up) {
      if (v.pending && v.rows_per_s > 0 && !v.in_flight_s)
        v.eta_s = double(*v.pending) / v.rows_per_s;
    } else {
      job_rates[live.job] += v.rows_per_s;
    }
    views.push_back(v);
  }
  for (auto& v : views) {
    if (v.phase == Phase::catch_up) continue;
    const auto j = m_jobs.find(v.job);
    if (j == m_jobs.end()) continue;
    const JobTrend& job = j->second;
    v.job_rows = job.rows_before + job.rows_now;
    if (job.total_rows <= 0) continue;
    v.percent = std::min(99.9, 100.0 * double(v.job_rows) / double(job.total_rows));
    const double rate = job_rates[v.job];
    // A slow batch in flight: how long it still takes, nobody knows; the rate falls meanwhile.
    if (rate > 0 && !v.in_flight_s)
      v.eta_s = double(std::max(0LL, job.total_rows - v.job_rows)) / rate;
  }
  return views;
}

Progress::Entry& Progress::entry(const std::string& task, Phase phase) {
  auto [it, added] = m_tasks.try_emplace(task);
  if (added) {
    it->second.started = std::chrono::steady_clock::now();
    it->second.phase = phase;
  }
  return it->second;
}

void Progress::range_done(const std::string& task, Phase phase, long long rows) {
  std::lock_guard<std::mutex> lock(m_mutex);
  Entry& e = entry(task, phase);
  e.rows += rows;
  e.batches += 1;
  if (const auto live = m_live.find(task); live != m_live.end()) {
    if (phase == Phase::main) m_jobs[live->second.job].rows_now += rows;
    count_rows(task, rows);
  }
}

void Progress::range_set_aside(const std::string& task) {
  std::lock_guard<std::mutex> lock(m_mutex);
  const auto live = m_live.find(task);
  entry(task, live == m_live.end() ? Phase::main : live->second.phase).set_aside += 1;
}

void Progress::set_pending(const std::string& task, long long pending) {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (const auto live = m_live.find(task); live != m_live.end()) live->second.pending = pending;
}

long long Progress::task_rows(const std::string& task) {
  std::lock_guard<std::mutex> lock(m_mutex);
  const auto it = m_tasks.find(task);
  return it == m_tasks.end() ? 0 : it->second.rows;
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
  const auto live = m_live.find(task);
  const auto it = m_tasks.find(task);
  const Phase phase = live != m_live.end()  ? live->second.phase
                      : it != m_tasks.end() ? it->second.phase
                                            : Phase::main;
  if (phase == Phase::catch_up) {
    if (it == m_tasks.end()) {
      spdlog::info("{}: caught up, nothing to refresh", task);
      return;
    }
    const Entry& e = it->second;
    spdlog::info(
        "{}: caught up {} key{} in {} batch{} in {:.1f} s{}", task, e.rows, e.rows == 1 ? "" : "s",
        e.batches, e.batches == 1 ? "" : "es",
        std::chrono::duration<double>(std::chrono::steady_clock::now() - e.started).count(),
        e.set_aside ? fmt::format(", {} key(s) set aside", e.set_aside) : "");
    return;
  }
  const std::string in_all = job_rows ? fmt::format("; {} rows in all", *job_rows) : "";
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
