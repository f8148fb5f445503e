#include "engine/task_runner.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <limits>
#include <optional>
#include <thread>
#include <vector>

#include "base/stop_signal.h"
#include "capture/slot_reader.h"
#include "database/retry.h"
#include "engine/batch_runner.h"
#include "engine/batch_sql.h"
#include "engine/change_drain.h"
#include "engine/main_pass.h"
#include "engine/pacing.h"
#include "engine/slice_sharing.h"
#include "state/slice_split.h"
#include "state/state_store.h"

namespace pgxform {

namespace {

std::string with_sqlstate(const Failure& failure) {
  return (failure.sqlstate.empty() ? "" : " (SQLSTATE " + failure.sqlstate + ")") + ": " +
         failure.message;
}

// A one-shot `sql:` step: run once and only once (state_store.h: run_step_once).
TaskOutcome run_step(StateStore& store, const Job& job) {
  const TaskId task{job.name, 0};
  try {
    // A step may run for minutes with nothing else to show: say when it starts and how long
    // it took.
    spdlog::info("{}: running step", job.name);
    const auto started = std::chrono::steady_clock::now();
    if (store.run_step_once(job.name, job.sql))
      spdlog::info(
          "{}: step done in {:.1f} s", job.name,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    else
      spdlog::info("{}: step already done, not run again", job.name);
    return {TaskOutcome::Kind::finished, ""};
  } catch (const std::exception& e) {
    const Failure failure = classify(e);
    if (failure.kind == FailureKind::connection_lost || failure.kind == FailureKind::in_doubt)
      throw;  // the caller reconnects; the step's row says whether it ran
    if (failure.kind == FailureKind::cancelled && stop_level() >= 2) {
      store.mark_stopped(task, Slicing::whole_job);
      return {TaskOutcome::Kind::stopped, ""};
    }
    store.mark_failed(task, Slicing::whole_job, failure, std::nullopt, std::nullopt);
    return {TaskOutcome::Kind::failed, job.name + ": step failed" + with_sqlstate(failure)};
  }
}

// Claims the task; when another runner holds it, the deferred outcome that says who.
std::optional<TaskOutcome> claim_or_holder(StateStore& store, const TaskId& task,
                                           const std::string& list) {
  // A holder gone by the time it is asked for freed the task a moment ago: claim it again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (store.try_claim(task, list)) return std::nullopt;
    if (const auto holder = store.task_holder(task))
      return TaskOutcome{TaskOutcome::Kind::deferred,
                         task.text() + " is held by another runner (" + *holder + ")", *holder};
  }
  return TaskOutcome{TaskOutcome::Kind::deferred, task.text() + " is held by another runner", ""};
}

// Whether the main-pass task whose cursor is `cursor` has work: not done, or a key above its
// cursor (rows appended after it finished). Read-only: one probe of the key's index.
bool has_keys_left(Session& session, const ResolvedJob& job, const TaskId& task,
                   const Cursor& cursor) {
  if (cursor.status != "done") return true;
  const BatchShape shape{slicing_of(job),
                         cursor.last_key ? CursorStart::after_last_key : CursorStart::none,
                         cursor.hi_key ? UpperBound::hi_key : UpperBound::open};
  pqxx::read_transaction tx(session.conn());
  return !tx.exec_params1(bounds_query(job, shape), cursor.last_key, 1, job.name, task.slice,
                          cursor.hi_key)[0]
              .is_null();
}

// What continuing the job's main pass came to.
struct MainPassLeft {
  bool ran = false;                // a main-pass task ran (there were keys above its cursor)
  bool held = false;               // another runner holds a main-pass task with keys left
  std::optional<TaskOutcome> end;  // it failed or was stopped: the catch-up task ends so
};

// The job's main-pass tasks with keys left, run on this session (their own claims), in order.
MainPassLeft continue_main_pass(TaskContext& task, const RunContext& run, bool& said_held) {
  MainPassLeft left;
  const Slicing slicing = slicing_of(task.job);
  // The slices of `parallel: auto` are numbered 0, 1, ... as they were split off.
  const int tasks = task.job.parallel_auto      ? std::numeric_limits<int>::max()
                    : slicing == Slicing::slice ? task.job.parallel
                                                : 1;
  for (int s = 0; s < tasks; ++s) {
    const TaskId main{task.job.name, s, Phase::main};
    const std::optional<Cursor> cursor = task.store.read_cursor(main, slicing);
    if (!cursor && task.job.parallel_auto) break;
    // Following, catch-up takes up only a main pass that was done (rows appended since): one
    // under way is the run's, which started it and works on it with all its workers.
    if (!cursor || (run.drain.follow == Follow::yes && cursor->status != "done") ||
        !has_keys_left(task.session, task.job, main, *cursor))
      continue;
    const int connection = task.session.generation();
    const TaskOutcome outcome = run_task_shown(task.session, run, main);
    // The main task reconnected: the catch-up claim went with the old connection.
    if (task.session.generation() != connection)
      throw pqxx::broken_connection("the connection was opened again: claiming the catch-up again");
    if (outcome.kind == TaskOutcome::Kind::finished) {
      left.ran = true;
    } else if (outcome.kind == TaskOutcome::Kind::deferred) {
      left.held = true;
      if (!said_held)
        spdlog::info("{}: {}; {}", task.task.text(), outcome.message,
                     run.drain.follow == Follow::yes
                         ? "its keys above the cursor are left to it"
                         : "catch-up waits for it to finish the main pass");
      said_held = true;
    } else {
      left.end = outcome;
      return left;
    }
  }
  return left;
}

// What catch-up --follow says while it follows: "caught up; waiting for changes" the first
// time it is, then, once a minute, what it applied in that minute (nothing when it applied
// nothing): a follow of a busy table for a day says some 1,440 lines, not one per change.
void say_following(TaskContext& task, bool& said_caught_up,
                   std::chrono::steady_clock::time_point& minute_from, long long& keys_at_minute) {
  const auto now = std::chrono::steady_clock::now();
  const long long keys = task.progress.task_rows(task.task.text());
  if (!said_caught_up) {
    spdlog::info("{}: caught up; waiting for changes", task.task.text());
    said_caught_up = true;
  } else if (now - minute_from >= k_follow_line_interval) {
    if (keys > keys_at_minute)
      spdlog::info("{}: following: {} keys refreshed in the last minute, {} since it started",
                   task.task.text(), keys - keys_at_minute, keys);
  } else {
    return;
  }
  minute_from = now;
  keys_at_minute = keys;
}

TaskOutcome run_catch_up(TaskContext& task, const RunContext& run, long long& committed) {
  Pacing pacing(task.session, task.store, task.spec, task.task, task.progress, run.health,
                task.metrics);
  ChangeDrain drain(task, run.drain.until);
  BatchRunner runner(task, pacing, drain);
  drain.retry_set_aside();
  bool said_caught_up = false, said_held = false;
  // Following: "caught up" once, then a line a minute with the keys refreshed in it, if any.
  auto minute_from = std::chrono::steady_clock::now();
  long long keys_at_minute = 0;
  auto settled = std::chrono::steady_clock::now() - std::chrono::minutes(1);
  // Not following, a job with changes: logical ends with a read of the slot up to now, then
  // one more drain and main pass over what the log holds after it. The read that brings the
  // job's changes may be another task's (one slot for every job of the schema: this one waited
  // for it), so what counts is the log after the read, not the rows this read added. Read
  // again only when that pass found work; while a runner holds the main pass, every round.
  bool read_since_work = false;
  while (true) {
    const long long before = committed;
    const TaskOutcome outcome = runner.run(committed);
    if (outcome.kind != TaskOutcome::Kind::finished || run.drain.until) return outcome;
    if (committed > before) read_since_work = false;
    const MainPassLeft main = continue_main_pass(task, run, said_held);
    if (main.end) return *main.end;
    if (main.ran) {
      read_since_work = false;
      continue;
    }
    if (run.drain.follow == Follow::no && task.job.capture == ChangeCapture::logical && run.slot &&
        (main.held || !read_since_work)) {
      run.slot->read(task.session.conn(), SlotReader::Wait::yes);
      read_since_work = true;
      if (!main.held) continue;
    }
    // Following, once a minute at most: it scans the job's rows and claims the job a moment.
    if (!main.held && (run.drain.follow == Follow::no ||
                       std::chrono::steady_clock::now() - settled >= std::chrono::minutes(1))) {
      drain.settle();
      settled = std::chrono::steady_clock::now();
    }
    if (run.drain.follow == Follow::no && !main.held) return outcome;
    if (run.drain.follow == Follow::yes)
      say_following(task, said_caught_up, minute_from, keys_at_minute);
    if (!pacing.idle(1000))
      return {stop_level() >= 1 ? TaskOutcome::Kind::stopped : TaskOutcome::Kind::released, ""};
  }
}

// The task on a claim this session holds; `committed` counts its batches.
TaskOutcome run_claimed(Session& session, StateStore& store, const RunContext& run, const Job& job,
                        const TaskId& task, long long& committed) {
  apply_session_settings(session.conn(), job.settings);
  if (job.is_step()) {
    const BusySession busy(session);
    return run_step(store, job);
  }
  TaskContext context{session,     store,    run.jobs.at(job.name),
                      job,         task,     run.progress,
                      run.metrics, run.slot, run.bounds};
  if (task.phase == Phase::catch_up) {
    const TaskOutcome outcome = run_catch_up(context, run, committed);
    run.progress.job_finished(task.text(), std::nullopt);
    if (outcome.kind == TaskOutcome::Kind::finished) store.clear_catch_up_error(job.name);
    return outcome;
  }
  Pacing pacing(session, store, job, task, run.progress, run.health, run.metrics);
  MainPass phase(context);
  return BatchRunner(context, pacing, phase).run(committed);
}

// A failure outside any batch (claiming, finishing): written to the job's row when the
// database still lets us, so that status shows it too.
void record_failure(StateStore& store, const RunContext& run, const Job& job, const TaskId& task,
                    const Failure& failure) {
  try {
    if (task.phase == Phase::catch_up)
      store.mark_catch_up_failed(job.name, failure, std::nullopt, std::nullopt);
    else
      store.mark_failed(task,
                        job.is_step() ? Slicing::whole_job : slicing_of(run.jobs.at(job.name)),
                        failure, std::nullopt, std::nullopt);
  } catch (const std::exception& e) {
    spdlog::debug("{}: could not record the failure: {}", task.text(), redact(e.what()));
  }
}

void release(StateStore& store, const TaskId& task) {
  try {
    store.release(task);
  } catch (const std::exception&) {
    // The session is gone, and the lock with it.
  }
}

bool is_reconnectable(const Failure& failure) {
  return failure.kind == FailureKind::connection_lost || failure.kind == FailureKind::in_doubt;
}

// After a lost connection (or an in-doubt COMMIT) of `task`'s session: says so, waits
// reconnect_delay and opens the session again. False when a stop signal came meanwhile.
bool reconnect_for(Session& session, const TaskId& task, const Failure& failure, int attempt) {
  spdlog::warn("{}: {} (attempt {} of {}): reconnecting and retrying", task.text(), failure.message,
               attempt, k_reconnect_attempts);
  std::this_thread::sleep_for(reconnect_delay(attempt - 1));
  if (stop_level() >= 1) return false;
  try {
    session.reconnect();
  } catch (const std::exception& again) {
    // Still down: the next attempt fails the same way and comes back here.
    spdlog::debug("{}: reconnecting failed: {}", task.text(), redact(again.what()));
  }
  return true;
}

}  // namespace

void apply_session_settings(pqxx::connection& conn, const JobSettings& settings) {
  pqxx::nontransaction tx(conn);
  tx.exec_params(
      "SELECT pg_catalog.set_config('statement_timeout', $1, false), "
      "pg_catalog.set_config('lock_timeout', $2, false),"
      " pg_catalog.set_config('idle_in_transaction_session_timeout', $3, false),"
      " pg_catalog.set_config('synchronous_commit', $4, false)",
      settings.statement_timeout, settings.lock_timeout,
      settings.idle_in_transaction_session_timeout,
      settings.synchronous_commit == SynchronousCommit::on ? "on" : "off");
}

TaskOutcome run_task(Session& session, const RunContext& run, const TaskId& task) {
  const Job& job = *run.file.find_job(task.job);
  StateStore store(session, run.schema);
  for (int attempt = 1;; ++attempt) {
    long long committed = 0;
    try {
      if (const auto held = claim_or_holder(store, task, job.list)) return *held;
      const TaskOutcome outcome = run_claimed(session, store, run, job, task, committed);
      release(store, task);
      return outcome;
    } catch (const std::exception& e) {
      release(store, task);
      if (committed > 0) attempt = 1;  // it broke after progress: not a connection that stays down
      const Failure failure = classify(e);
      if (!is_reconnectable(failure) || attempt > k_reconnect_attempts) {
        record_failure(store, run, job, task, failure);
        return {TaskOutcome::Kind::failed, task.text() + with_sqlstate(failure)};
      }
      if (!reconnect_for(session, task, failure, attempt)) return {TaskOutcome::Kind::stopped, ""};
    }
  }
}

namespace {

// The open slices of a share's job, those that another worker holds, and whether one of those
// is another runner.
struct Held {
  std::vector<Cursor> slices;
  std::optional<std::string> elsewhere;  // another runner that holds one (host:pid)
};

// A worker's share of a job with `parallel: auto` (scheduler.h): runs the job's free slices one
// after another; when none is free, splits the biggest one another worker holds and runs its
// upper half; ends when no slice is left (the job is done), or none is worth splitting
// (finished: the job's last slices end on the workers that hold them; or deferred, when
// another runner holds one: this runner's list waits for it). Throws what run_share handles:
// a lost connection, an in-doubt COMMIT (of a split). Counts the slices it ran in `ran_slices`.
TaskOutcome share_rounds(Session& session, const RunContext& run, const TaskId& share,
                         long long& ran_slices) {
  const ResolvedJob& job = run.jobs.at(share.job);
  StateStore store(session, run.schema);
  for (int lost_races = 0;;) {
    if (stop_level() >= 1) return {TaskOutcome::Kind::stopped, ""};
    if (session.leave_requested()) return {TaskOutcome::Kind::released, ""};
    const std::vector<Cursor> open = open_slices(session.conn(), run.schema, job.name);
    if (open.empty()) return {TaskOutcome::Kind::finished, ""};
    Held held;
    bool ran = false;
    for (const Cursor& slice : open) {
      const TaskId task{job.name, slice.slice, Phase::main};
      std::optional<std::string> holder = store.task_holder(task);
      if (!holder) {
        const TaskOutcome outcome = run_task_shown(session, run, task);
        if (outcome.kind != TaskOutcome::Kind::deferred) {
          if (outcome.kind != TaskOutcome::Kind::finished) return outcome;
          ran = true;
          ++ran_slices;
          break;
        }
        holder = outcome.holder;
      }
      held.slices.push_back(slice);
      if (*holder != runner_identity()) held.elsewhere = *holder;
    }
    if (ran) continue;
    const SplitResult split = split_biggest(session.conn(), run.schema, job, held.slices);
    // A split lost to a batch or to another split is tried again, a few times; while a command
    // holds the job, the share waits for it (the command holds the slices: deferred).
    if (split.slice || (!split.too_small && !split.held && ++lost_races < 3)) continue;
    if (!held.elsewhere) return {TaskOutcome::Kind::finished, ""};
    return {TaskOutcome::Kind::deferred,
            share.text() + ": the slices left are held by another runner (" + *held.elsewhere + ")",
            *held.elsewhere};
  }
}

// A share's rounds, its session reopened after a lost connection as run_task's is: between its
// slices (each reconnects on its own, run_task) the share reads the job's slices and splits
// them on the same session, and a connection lost there is no reason to fail the job. A split
// whose COMMIT got no answer is no harm either: its new slice, if it committed, is found free
// by the next round's read and taken up.
TaskOutcome run_share(Session& session, const RunContext& run, const TaskId& share) {
  for (int attempt = 1;; ++attempt) {
    long long ran_slices = 0;
    try {
      return share_rounds(session, run, share, ran_slices);
    } catch (const std::exception& e) {
      if (ran_slices > 0) attempt = 1;  // it broke after progress: not a connection that stays down
      const Failure failure = classify(e);
      if (!is_reconnectable(failure) || attempt > k_reconnect_attempts)
        return {TaskOutcome::Kind::failed, share.text() + with_sqlstate(failure)};
      if (!reconnect_for(session, share, failure, attempt)) return {TaskOutcome::Kind::stopped, ""};
    }
  }
}

}  // namespace

TaskOutcome run_task_shown(Session& session, const RunContext& run, const TaskId& task) {
  if (task.is_share()) return run_share(session, run, task);
  struct Shown {
    Progress& progress;
    const std::string task;
    ~Shown() { progress.task_ended(task); }
  };
  TaskOutcome outcome;
  {
    const Shown shown{run.progress, task.text()};
    run.progress.task_started(task.text(), task.job, task.phase);
    outcome = run_task(session, run, task);
  }
  if (outcome.kind == TaskOutcome::Kind::deferred)
    run.progress.task_held(task.text(), task.job, outcome.holder);
  return outcome;
}

}  // namespace pgxform
