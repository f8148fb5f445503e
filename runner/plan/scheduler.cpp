#include "plan/scheduler.h"

#include <algorithm>

#include "plan/jobs_file.h"

namespace pgxform {

const char* phase_name(Phase phase) {
  return phase == Phase::catch_up ? "catch_up" : "main";
}

std::string TaskId::text() const {
  if (phase == Phase::catch_up) return job + " (catch-up)";
  if (slice < 0) return job + " (share " + std::to_string(-slice) + ")";
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
        planned.jobs.push_back({job.name, job.is_step() ? 1 : job.parallel, Phase::main,
                                !job.is_step() && job.parallel_auto});
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
  for (size_t l = 0; l < m_lists.size(); ++l) {
    ListEntry& entry = m_list_entries[l];
    for (const auto& a : m_lists[l].after) {
      const size_t upstream = list_index.at(a);
      entry.after.push_back(upstream);
      m_list_entries[upstream].dependents.push_back(l);
    }
    entry.after_pending = entry.after.size();
    for (const auto& job : m_lists[l].jobs) {
      m_job_index[job.name] = m_jobs.size();
      entry.jobs.push_back(m_jobs.size());
      m_jobs.push_back({job.name, l,
                        std::vector<TaskState>(size_t(job.grows ? 1 : std::max(1, job.slices)),
                                               TaskState::waiting),
                        job.phase, job.grows});
    }
  }
  // Kahn's order: `after:` has no cycle (jobs_file checks), so every list gets its place.
  std::vector<size_t> waiting_for(m_lists.size());
  for (size_t l = 0; l < m_lists.size(); ++l) {
    waiting_for[l] = m_list_entries[l].after.size();
    if (waiting_for[l] == 0) m_topological.push_back(l);
  }
  for (size_t i = 0; i < m_topological.size(); ++i)
    for (const size_t next : m_list_entries[m_topological[i]].dependents)
      if (--waiting_for[next] == 0) m_topological.push_back(next);
  for (size_t l = 0; l < m_lists.size(); ++l)
    if (m_list_entries[l].after_pending == 0) m_open.insert(l);
  for (size_t l = 0; l < m_lists.size(); ++l)
    if (m_list_entries[l].jobs.empty()) advance(l);  // nothing to wait for
}

void Scheduler::advance(size_t list) {
  // A list done opens those after it; one of those may be done already (it has no jobs), and
  // opens others in turn: a worklist, not recursion.
  std::vector<size_t> work{list};
  while (!work.empty()) {
    const size_t l = work.back();
    work.pop_back();
    ListEntry& entry = m_list_entries[l];
    while (entry.front < entry.jobs.size() && job_done(m_jobs[entry.jobs[entry.front]]))
      ++entry.front;
    if (!list_done(l) || !m_open.count(l)) continue;
    m_open.erase(l);
    for (const size_t next : entry.dependents)
      if (--m_list_entries[next].after_pending == 0) {
        m_open.insert(next);
        work.push_back(next);
      }
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

std::optional<TaskId> Scheduler::next_task() {
  // In an open list only its front job may start: a list runs its jobs in order.
  for (const size_t l : m_open) {
    const ListEntry& list = m_list_entries[l];
    if (list.front == list.jobs.size()) continue;
    JobEntry& job = m_jobs[list.jobs[list.front]];
    if (job_failed(job)) continue;
    for (size_t s = 0; s < job.slices.size(); ++s)
      if (job.slices[s] == TaskState::waiting) {
        job.slices[s] = TaskState::running;
        return TaskId{job.name, job.grows ? -1 - int(s) : int(s), job.phase};
      }
  }
  // Nothing waits anywhere: a share more of a job that grows, the first in plan order.
  for (const size_t l : m_open) {
    const ListEntry& list = m_list_entries[l];
    if (list.front == list.jobs.size()) continue;
    if (auto share = new_share(m_jobs[list.jobs[list.front]])) return share;
  }
  return std::nullopt;
}

bool Scheduler::may_grow(const JobEntry& job) const {
  return job.grows && !job.split_out && !job_failed(job);
}

std::optional<TaskId> Scheduler::new_share(JobEntry& job) {
  if (!may_grow(job) || std::none_of(job.slices.begin(), job.slices.end(),
                                     [](TaskState s) { return s == TaskState::running; }))
    return std::nullopt;
  job.slices.push_back(TaskState::running);
  return TaskId{job.name, -int(job.slices.size()), job.phase};
}

Scheduler::TaskState& Scheduler::state_of(const TaskId& task) {
  auto it = m_job_index.find(task.job);
  if (it == m_job_index.end()) throw std::logic_error("unknown task " + task.text());
  auto& slices = m_jobs[it->second].slices;
  const int index = task.is_share() ? -1 - task.slice : task.slice;
  if (index < 0 || size_t(index) >= slices.size() || task.is_share() != m_jobs[it->second].grows)
    throw std::logic_error("unknown task " + task.text());
  return slices[size_t(index)];
}

void Scheduler::task_finished(const TaskId& task) {
  state_of(task) = TaskState::done;
  // A share ends only when it found nothing left to take or to split.
  if (task.is_share()) m_jobs[m_job_index.at(task.job)].split_out = true;
  advance(m_jobs[m_job_index.at(task.job)].list);
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

namespace {
// What a job that can still be split counts for among the tasks that can run: more than any
// pool is asked for, so that it is never what bounds the pool.
constexpr int k_shares = 1 << 16;
}  // namespace

int Scheduler::runnable_count() const {
  // Only an open list's front job has tasks that may start (next_task); running tasks of any
  // job are counted wherever they are.
  int n = 0;
  for (const size_t l : m_open) {
    const ListEntry& list = m_list_entries[l];
    if (list.front == list.jobs.size()) continue;
    const JobEntry& job = m_jobs[list.jobs[list.front]];
    if (job_failed(job)) continue;
    for (auto s : job.slices) n += s == TaskState::waiting || s == TaskState::deferred;
    // A job that grows takes as many workers as it gets, while it can still be split.
    if (may_grow(job)) n += k_shares;
  }
  return n + running_count();
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
