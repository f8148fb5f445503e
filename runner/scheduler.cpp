#include "scheduler.h"

#include <algorithm>

#include "jobs_file.h"

namespace pgxform {

std::string TaskId::text() const {
  return slice == 0 ? job : job + "#" + std::to_string(slice);
}

std::vector<PlannedList> select_lists(const JobsFile& file, const std::vector<std::string>& only,
                                      const std::vector<std::string>& exclude,
                                      const std::set<std::string>& done_jobs) {
  auto jobs_named = [&](const std::string& name, const char* option) {
    std::vector<std::string> jobs;
    if (const JobList* list = file.find_list(name)) {
      for (const auto& job : list->jobs) jobs.push_back(job.name);
    } else if (file.find_job(name)) {
      jobs.push_back(name);
    } else {
      throw SelectionError(std::string(option) + " " + name + ": no list or job of that name in " +
                           file.path);
    }
    return jobs;
  };
  std::set<std::string> selected;
  if (only.empty()) {
    for (const auto& list : file.lists)
      for (const auto& job : list.jobs) selected.insert(job.name);
  }
  for (const auto& name : only)
    for (const auto& job : jobs_named(name, "--only")) selected.insert(job);
  for (const auto& name : exclude)
    for (const auto& job : jobs_named(name, "--exclude")) selected.erase(job);

  std::vector<PlannedList> plan;
  for (const auto& list : file.lists) {
    PlannedList planned{list.name, {}, {}};
    // Every job this list's jobs depend on from other lists.
    std::vector<std::string> upstream;
    for (const auto& a : list.after)
      for (const auto& job : file.find_list(a)->jobs) upstream.push_back(job.name);
    for (size_t i = 0; i < list.jobs.size(); ++i) {
      const Job& job = list.jobs[i];
      if (!selected.count(job.name)) continue;
      std::vector<std::string> needs = upstream;
      for (size_t j = 0; j < i; ++j) needs.push_back(list.jobs[j].name);
      for (const auto& need : needs)
        if (!selected.count(need) && !done_jobs.count(need))
          throw SelectionError("job '" + job.name + "' (list '" + list.name + "') needs job '" +
                               need + "' (list '" + file.find_job(need)->list +
                               "'), which is not done and not selected: select it too, or run "
                               "it first");
      planned.jobs.push_back({job.name, job.is_step() ? 1 : job.parallel});
    }
    if (!planned.jobs.empty()) plan.push_back(planned);
  }
  // Keep only dependencies on lists that are in the plan; the others are done.
  for (auto& list : plan) {
    for (const auto& a : file.find_list(list.name)->after)
      if (std::any_of(plan.begin(), plan.end(), [&](const PlannedList& p) { return p.name == a; }))
        list.after.push_back(a);
  }
  return plan;
}

Scheduler::Scheduler(std::vector<PlannedList> lists) : m_lists(std::move(lists)) {
  for (const auto& list : m_lists)
    for (const auto& job : list.jobs) {
      m_job_index[job.name] = m_jobs.size();
      m_jobs.push_back(
          {job.name, list.name,
           std::vector<TaskState>(size_t(std::max(1, job.slices)), TaskState::waiting)});
    }
}

bool Scheduler::job_done(const JobEntry& job) const {
  return std::all_of(job.slices.begin(), job.slices.end(),
                     [](TaskState s) { return s == TaskState::done; });
}

bool Scheduler::job_failed(const JobEntry& job) const {
  return std::any_of(job.slices.begin(), job.slices.end(),
                     [](TaskState s) { return s == TaskState::failed; });
}

bool Scheduler::list_done(const std::string& list) const {
  return std::all_of(m_jobs.begin(), m_jobs.end(),
                     [&](const JobEntry& j) { return j.list != list || job_done(j); });
}

bool Scheduler::list_blocked(const std::string& list) const {
  for (const auto& job : m_jobs)
    if (job.list == list && job_failed(job)) return true;
  for (const auto& l : m_lists)
    if (l.name == list)
      for (const auto& a : l.after)
        if (list_blocked(a)) return true;
  return false;
}

bool Scheduler::job_may_start(size_t index) const {
  const JobEntry& job = m_jobs[index];
  if (job_failed(job)) return false;
  for (size_t i = 0; i < index; ++i)
    if (m_jobs[i].list == job.list && !job_done(m_jobs[i])) return false;
  for (const auto& l : m_lists)
    if (l.name == job.list)
      for (const auto& a : l.after)
        if (!list_done(a)) return false;
  return true;
}

std::optional<TaskId> Scheduler::next_task() {
  for (size_t i = 0; i < m_jobs.size(); ++i) {
    auto& job = m_jobs[i];
    for (size_t s = 0; s < job.slices.size(); ++s) {
      if (job.slices[s] != TaskState::waiting) continue;
      if (!job_may_start(i)) break;
      job.slices[s] = TaskState::running;
      return TaskId{job.name, int(s)};
    }
  }
  return std::nullopt;
}

Scheduler::TaskState& Scheduler::state_of(const TaskId& task) {
  auto it = m_job_index.find(task.job);
  if (it == m_job_index.end()) throw std::logic_error("unknown task " + task.text());
  auto& slices = m_jobs[it->second].slices;
  if (task.slice < 0 || size_t(task.slice) >= slices.size())
    throw std::logic_error("unknown task " + task.text());
  return slices[size_t(task.slice)];
}

void Scheduler::task_finished(const TaskId& task) {
  state_of(task) = TaskState::done;
}
void Scheduler::task_failed(const TaskId& task) {
  state_of(task) = TaskState::failed;
}
void Scheduler::task_deferred(const TaskId& task) {
  state_of(task) = TaskState::deferred;
}
void Scheduler::task_released(const TaskId& task) {
  state_of(task) = TaskState::waiting;
}

void Scheduler::retry_deferred() {
  for (auto& job : m_jobs)
    for (auto& s : job.slices)
      if (s == TaskState::deferred) s = TaskState::waiting;
}

bool Scheduler::has_deferred() const {
  for (const auto& job : m_jobs)
    for (auto s : job.slices)
      if (s == TaskState::deferred) return true;
  return false;
}

int Scheduler::running_count() const {
  int n = 0;
  for (const auto& job : m_jobs)
    for (auto s : job.slices) n += s == TaskState::running;
  return n;
}

bool Scheduler::is_finished() const {
  if (running_count() > 0 || has_deferred()) return false;
  // Anything still waiting that could ever start? Only if nothing upstream of it failed.
  for (const auto& job : m_jobs) {
    if (job_done(job) || job_failed(job)) continue;
    if (list_blocked(job.list)) continue;
    return false;
  }
  return true;
}

std::vector<std::string> Scheduler::failed_jobs() const {
  std::vector<std::string> out;
  for (const auto& job : m_jobs)
    if (job_failed(job)) out.push_back(job.name);
  return out;
}

std::vector<std::string> Scheduler::blocked_jobs() const {
  std::vector<std::string> out;
  for (const auto& job : m_jobs)
    if (!job_done(job) && !job_failed(job) && list_blocked(job.list) &&
        std::all_of(job.slices.begin(), job.slices.end(),
                    [](TaskState s) { return s == TaskState::waiting; }))
      out.push_back(job.name);
  return out;
}

bool Scheduler::all_done() const {
  return std::all_of(m_jobs.begin(), m_jobs.end(), [&](const JobEntry& j) { return job_done(j); });
}

}  // namespace pgxform
