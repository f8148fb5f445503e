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

  const auto missing = [&](const Job& job) {
    return !selected.count(job.name) && !done_jobs.count(job.name);
  };
  std::map<std::string, const JobList*> lists;
  for (const auto& list : file.lists) lists[list.name] = &list;
  std::vector<PlannedList> plan;
  for (const auto& list : file.lists) {
    PlannedList planned{list.name, {}, {}};
    // What a selected job of this list needs that is neither selected nor done: the first such
    // job of the lists it is after, else the first such job before it in its list.
    const Job* missing_upstream = nullptr;
    for (const auto& a : list.after)
      for (const auto& job : lists.at(a)->jobs)
        if (!missing_upstream && missing(job)) missing_upstream = &job;
    const Job* missing_before = nullptr;
    for (const Job& job : list.jobs) {
      if (selected.count(job.name)) {
        if (const Job* need = missing_upstream ? missing_upstream : missing_before)
          throw SelectionError("job '" + job.name + "' (list '" + list.name + "') needs job '" +
                               need->name + "' (list '" + need->list +
                               "'), which is not done and not selected: select it too, or run "
                               "it first");
        planned.jobs.push_back({job.name, job.is_step() ? 1 : job.parallel});
      }
      if (!missing_before && missing(job)) missing_before = &job;
    }
    if (!planned.jobs.empty()) plan.push_back(planned);
  }
  // Keep only dependencies on lists that are in the plan; the others are done.
  std::set<std::string> planned;
  for (const auto& list : plan) planned.insert(list.name);
  for (auto& list : plan)
    for (const auto& a : file.find_list(list.name)->after)
      if (planned.count(a)) list.after.push_back(a);
  return plan;
}

Scheduler::Scheduler(std::vector<PlannedList> lists)
    : m_lists(std::move(lists)), m_list_entries(m_lists.size()) {
  std::map<std::string, size_t> list_index;
  for (size_t l = 0; l < m_lists.size(); ++l) list_index[m_lists[l].name] = l;
  std::vector<std::vector<size_t>> dependents(m_lists.size());
  std::vector<size_t> waiting_for(m_lists.size(), 0);
  for (size_t l = 0; l < m_lists.size(); ++l) {
    for (const auto& a : m_lists[l].after) {
      const size_t upstream = list_index.at(a);
      m_list_entries[l].after.push_back(upstream);
      dependents[upstream].push_back(l);
      ++waiting_for[l];
    }
    for (const auto& job : m_lists[l].jobs) {
      m_job_index[job.name] = m_jobs.size();
      m_list_entries[l].jobs.push_back(m_jobs.size());
      m_jobs.push_back(
          {job.name, l,
           std::vector<TaskState>(size_t(std::max(1, job.slices)), TaskState::waiting)});
    }
  }
  // Kahn's order: `after:` has no cycle (jobs_file checks), so every list gets its place.
  for (size_t l = 0; l < m_lists.size(); ++l)
    if (waiting_for[l] == 0) m_topological.push_back(l);
  for (size_t i = 0; i < m_topological.size(); ++i)
    for (const size_t next : dependents[m_topological[i]])
      if (--waiting_for[next] == 0) m_topological.push_back(next);
}

bool Scheduler::job_done(const JobEntry& job) const {
  return std::all_of(job.slices.begin(), job.slices.end(),
                     [](TaskState s) { return s == TaskState::done; });
}

bool Scheduler::job_failed(const JobEntry& job) const {
  return std::any_of(job.slices.begin(), job.slices.end(),
                     [](TaskState s) { return s == TaskState::failed; });
}

bool Scheduler::list_done(size_t list) const {
  const auto& jobs = m_list_entries[list].jobs;
  return std::all_of(jobs.begin(), jobs.end(), [&](size_t j) { return job_done(m_jobs[j]); });
}

std::vector<bool> Scheduler::blocked_lists() const {
  std::vector<bool> blocked(m_lists.size(), false);
  for (const size_t l : m_topological) {
    const ListEntry& list = m_list_entries[l];
    blocked[l] =
        std::any_of(list.jobs.begin(), list.jobs.end(),
                    [&](size_t j) { return job_failed(m_jobs[j]); }) ||
        std::any_of(list.after.begin(), list.after.end(), [&](size_t a) { return blocked[a]; });
  }
  return blocked;
}

bool Scheduler::job_may_start(size_t index) const {
  const JobEntry& job = m_jobs[index];
  if (job_failed(job)) return false;
  // A list runs its jobs in order: the one before this must be done (and with it, all before).
  const auto& in_list = m_list_entries[job.list].jobs;
  const auto position = std::find(in_list.begin(), in_list.end(), index);
  if (position != in_list.begin() && !job_done(m_jobs[*(position - 1)])) return false;
  const auto& after = m_list_entries[job.list].after;
  return std::all_of(after.begin(), after.end(), [&](size_t a) { return list_done(a); });
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
  const std::vector<bool> blocked = blocked_lists();
  return std::all_of(m_jobs.begin(), m_jobs.end(), [&](const JobEntry& job) {
    return job_done(job) || job_failed(job) || blocked[job.list];
  });
}

std::vector<std::string> Scheduler::failed_jobs() const {
  std::vector<std::string> out;
  for (const auto& job : m_jobs)
    if (job_failed(job)) out.push_back(job.name);
  return out;
}

std::vector<std::string> Scheduler::blocked_jobs() const {
  std::vector<std::string> out;
  const std::vector<bool> blocked = blocked_lists();
  for (const auto& job : m_jobs)
    if (!job_done(job) && !job_failed(job) && blocked[job.list] &&
        std::all_of(job.slices.begin(), job.slices.end(),
                    [](TaskState s) { return s == TaskState::waiting; }))
      out.push_back(job.name);
  return out;
}

bool Scheduler::all_done() const {
  return std::all_of(m_jobs.begin(), m_jobs.end(), [&](const JobEntry& j) { return job_done(j); });
}

}  // namespace pgxform
