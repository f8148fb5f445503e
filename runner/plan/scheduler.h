// scheduler: which job (or slice of a job) may run next. Pure: no database, no threads.
//
// The plan is a set of lists. A list runs its jobs in order; a list starts when every job of
// the lists it is `after` is done. A job with K slices is K tasks that may run at once; the job
// is done when all its slices are. The caller (the worker pool) asks next_task(), runs the
// task, and reports exactly one outcome for it:
//   task_finished  the task ran to its end;
//   task_failed    a permanent error: no new task of that job starts, the rest of its list and
//                  every list that depends on it (transitively) never start; other lists go on;
//   task_deferred  another runner holds the task: it is offered again after retry_deferred();
//   task_released  the run is stopping: the task goes back to waiting, nothing is recorded.
// Invariant: a task is offered by next_task() to at most one caller until its outcome comes.
//
// A job with `parallel: auto` ("grows") is not a fixed set of slices: its tasks are its
// workers' shares, TaskId slice -1, -2, ... (a share runs whatever slice of the job is free, or
// splits one: task_runner.h). Its first share starts as any task; while a share runs and the
// job has not said it cannot be split further, an idle worker gets one more share. A share
// that finishes means nothing was left to split: no new share of the job starts after it. The
// job is done when all its shares are, and only then does its list go on.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/errors.h"

namespace pgxform {

struct JobsFile;

// What a task does to its job: the main pass (keyset batches of the leading table after the
// cursor, one task per slice) or catch-up (batches of the changes captured at or below the
// cursor, through the refresh function: one task per job). Both run on the same engine
// (task_runner.h), each with a claim of its own, so that catch-up works beside a run.
enum class Phase { main, catch_up };
// "main", "catch_up": the phase as metrics label it.
const char* phase_name(Phase phase);

struct TaskId {
  std::string job;
  int slice = 0;
  Phase phase = Phase::main;
  bool operator<(const TaskId& o) const {
    return job < o.job ||
           (job == o.job && (slice < o.slice || (slice == o.slice && phase < o.phase)));
  }
  bool operator==(const TaskId& o) const {
    return job == o.job && slice == o.slice && phase == o.phase;
  }
  // A worker's share of a job with `parallel: auto` (slice -1, -2, ...), not one slice.
  bool is_share() const { return slice < 0; }
  // "orders", "orders#2" (slice 2), "orders (catch-up)", "orders (share 2)".
  std::string text() const;
};

// How a task ended: the one outcome the caller reports for it (see above).
struct TaskOutcome {
  // released: stopped between two batches because its worker leaves the pool (set
  // --threads); not a stop of the run: another worker takes it up from its cursor.
  enum class Kind { finished, failed, deferred, stopped, released };
  TaskOutcome(Kind k = Kind::finished, std::string m = {}, std::string h = {})
      : kind(k), message(std::move(m)), holder(std::move(h)) {}
  Kind kind = Kind::finished;
  std::string message;  // failed: the error, SQLSTATE and key range; deferred: why
  std::string holder;   // deferred: the runner that holds the task (host:pid), when known
};

struct PlannedJob {
  std::string name;
  int slices = 1;
  Phase phase = Phase::main;  // of its tasks
  bool grows = false;         // `parallel: auto`: shares, as many as idle workers (see above)
};

struct PlannedList {
  std::string name;
  std::vector<std::string> after;  // lists in this plan
  std::vector<PlannedJob> jobs;
};

// Thrown by select_lists when the selection cannot run; the CLI maps it to exit 2.
class SelectionError : public InputError {
 public:
  explicit SelectionError(const std::string& problem) : InputError({problem}) {}
};

// The lists to run after --only/--exclude (names of lists or jobs). A selected job needs every
// job before it in its list and every job of its list's `after:` lists to be selected too, or
// already done (`done_jobs`, from the state). Unselected done jobs drop out of the plan.
std::vector<PlannedList> select_lists(const JobsFile& file, const std::vector<std::string>& only,
                                      const std::vector<std::string>& exclude,
                                      const std::set<std::string>& done_jobs);

class Scheduler {
 public:
  explicit Scheduler(std::vector<PlannedList> lists);

  // A task that may start now, marked running; nothing when none may start now.
  std::optional<TaskId> next_task();
  void task_finished(const TaskId& task);
  void task_failed(const TaskId& task);
  void task_deferred(const TaskId& task);
  void task_released(const TaskId& task);
  void retry_deferred();

  bool has_deferred() const;
  int running_count() const;
  // The tasks that can run now: running, or waiting to start in a list that may go on, or held
  // by another runner (a worker tries them again). No pool needs more workers than this.
  int runnable_count() const;
  // True when nothing runs and nothing can start any more (even after retry_deferred()).
  bool is_finished() const;

  std::vector<std::string> failed_jobs() const;
  // Jobs that never ran because a job they depend on failed.
  std::vector<std::string> blocked_jobs() const;
  bool all_done() const;

 private:
  enum class TaskState { waiting, running, deferred, done, failed };
  struct JobEntry {
    std::string name;
    size_t list;                    // index in m_lists
    std::vector<TaskState> slices;  // its shares, for a job that grows
    Phase phase = Phase::main;
    bool grows = false;
    bool split_out = false;  // a share finished: no new share starts
  };
  // A share more for an idle worker, when the job grows and one of its shares runs.
  std::optional<TaskId> new_share(JobEntry& job);
  bool may_grow(const JobEntry& job) const;
  struct ListEntry {
    std::vector<size_t> jobs;        // indices in m_jobs, in list order
    std::vector<size_t> after;       // indices in m_lists
    std::vector<size_t> dependents;  // the lists after this one
    size_t after_pending = 0;        // lists of `after` not done yet
    size_t front = 0;                // its first job not done (jobs.size(): the list is done)
  };
  bool job_done(const JobEntry& job) const;
  bool job_failed(const JobEntry& job) const;
  bool list_done(size_t list) const {
    return m_list_entries[list].front == m_list_entries[list].jobs.size();
  }
  // Per list: a failure inside it or in any list upstream of it. One pass in topological
  // order, without recursion: a chain of any length of `after:` costs its length.
  std::vector<bool> blocked_lists() const;
  // After a job finished: moves its list's front on, and opens the lists that waited for it.
  void advance(size_t list);
  TaskState& state_of(const TaskId& task);

  std::vector<PlannedList> m_lists;
  std::vector<ListEntry> m_list_entries;  // beside m_lists
  std::vector<size_t> m_topological;      // list indices, every list after those it is after
  // The lists whose `after` lists are all done and that have jobs left, in plan order: the only
  // places a task may start, so that next_task costs what is open, not the whole plan.
  std::set<size_t> m_open;
  std::vector<JobEntry> m_jobs;  // in plan order: lists in order, jobs in list order
  std::map<std::string, size_t> m_job_index;
};

}  // namespace pgxform
