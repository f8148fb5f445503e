#include "analysis/run_estimate.h"

#include <algorithm>

namespace pgxform {

double projected_job_ms(std::vector<SampleCost> samples, double rows) {
  if (samples.empty() || rows <= 0) return 0;
  std::sort(samples.begin(), samples.end(),
            [](const SampleCost& a, const SampleCost& b) { return a.position < b.position; });
  // The integral over [0, 1] of the piecewise-linear cost, level before the first sample and
  // after the last.
  double mean = samples.front().ms_per_row * std::clamp(samples.front().position, 0.0, 1.0);
  for (std::size_t i = 1; i < samples.size(); ++i) {
    const double width = samples[i].position - samples[i - 1].position;
    mean += width * (samples[i].ms_per_row + samples[i - 1].ms_per_row) / 2;
  }
  mean += samples.back().ms_per_row * (1 - std::clamp(samples.back().position, 0.0, 1.0));
  return mean * rows;
}

namespace {

struct Running {
  double end;
  TaskId task;
};

// The shares of the jobs that grow (`parallel: auto`): each job's work left, in seconds of one
// worker, shared evenly by its running shares, which all end together when it is done (the
// split floor aside: the last few batches are not worth a split).
class SharedWork {
 public:
  void start(const std::string& job, double seconds) { m_left.emplace(job, seconds); }
  // Time passes: every running share works off its part.
  void advance(double seconds, const std::vector<Running>& running) {
    for (auto& [job, left] : m_left) left = std::max(0.0, left - seconds * shares(job, running));
  }
  // A share joined or left: the job's shares end when its work left is done.
  void reschedule(const std::string& job, double now, std::vector<Running>& running) const {
    const int n = shares(job, running);
    for (auto& r : running)
      if (r.task.job == job && r.task.is_share()) r.end = now + m_left.at(job) / n;
  }

 private:
  static int shares(const std::string& job, const std::vector<Running>& running) {
    return int(std::count_if(running.begin(), running.end(), [&](const Running& r) {
      return r.task.job == job && r.task.is_share();
    }));
  }
  std::map<std::string, double> m_left;
};

}  // namespace

RunEstimate estimate_run(const std::vector<PlannedList>& plan,
                         const std::map<std::string, double>& job_seconds, int threads) {
  RunEstimate estimate;
  std::map<std::string, std::string> list_of;
  std::map<std::string, int> slices_of;
  for (const auto& list : plan) {
    estimate.list_finish[list.name] = 0;
    for (const auto& job : list.jobs) {
      list_of[job.name] = list.name;
      slices_of[job.name] = std::max(1, job.slices);
    }
  }
  const auto seconds_of = [&](const std::string& job) {
    const auto it = job_seconds.find(job);
    return it == job_seconds.end() ? 0 : it->second;
  };
  Scheduler scheduler(plan);
  SharedWork shared;
  std::vector<Running> running;
  double now = 0;
  const std::size_t workers = std::size_t(std::max(1, threads));
  while (true) {
    while (running.size() < workers) {
      const auto task = scheduler.next_task();
      if (!task) break;
      running.push_back({now + seconds_of(task->job) / slices_of[task->job], *task});
      if (!task->is_share()) continue;
      shared.start(task->job, seconds_of(task->job));  // its first share only
      shared.reschedule(task->job, now, running);
    }
    if (running.empty()) break;
    const auto first =
        std::min_element(running.begin(), running.end(),
                         [](const Running& a, const Running& b) { return a.end < b.end; });
    shared.advance(first->end - now, running);
    now = first->end;
    const TaskId done = first->task;
    running.erase(first);
    scheduler.task_finished(done);
    double& finish = estimate.list_finish[list_of[done.job]];
    finish = std::max(finish, now);
  }
  estimate.seconds = now;

  // From the list that ends last, back through the `after:` list that ended last.
  const PlannedList* list = nullptr;
  for (const auto& l : plan)
    if (!list || estimate.list_finish[l.name] > estimate.list_finish[list->name]) list = &l;
  while (list) {
    estimate.critical_path.insert(estimate.critical_path.begin(), list->name);
    const PlannedList* before = nullptr;
    for (const auto& name : list->after)
      for (const auto& l : plan)
        if (l.name == name &&
            (!before || estimate.list_finish[l.name] > estimate.list_finish[before->name]))
          before = &l;
    list = before;
  }
  return estimate;
}

}  // namespace pgxform
