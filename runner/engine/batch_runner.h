// batch_runner: one task's loop of batches — of the main pass (a job, or one slice of a sliced
// job: main_pass.h) or of catch-up (a job's change log: change_drain.h) — on a claim its session
// holds (task_runner.h takes and releases it). The loop is the same for both phases; what
// differs, which statement a batch runs and how its result moves the cursor or consumes the
// log, is the task's BatchPhase.
//
// Each batch takes as many keys as batch_sizer.h says (so that a batch lasts about
// target_batch_ms; the main pass's first batch sized from the job's recent batches of the same
// function version when it has some) and is ONE transaction: the phase's statement(s), then COMMIT.
// Between two batches the task paces itself (pacing.h: the control table's pause, sizes and
// pause_ms, and the `throttle:` limits) and, with changes: logical in the file, reads the slot when
// that is due (slot_reader.h; its transaction is not the batch's).
//
// Failures (see retry.h), decided by SQLSTATE:
//   transient        retried in place with exponential backoff and jitter (`retries`,
//                    `retry_backoff_ms`);
//   connection lost  thrown to task_runner, which reconnects, claims the task again and runs it
//   or in doubt      again from its cursor: the cursor (or the log) says whether the last
//                    COMMIT went through;
//   permanent        when the phase sets failing parts aside (the main pass with
//                    `on_error: skip`; catch-up always), the failing batch is narrowed down by
//                    halving (the main pass with `bisect: true`; catch-up always) until only
//                    the offending keys are set aside, in the transaction that moves past
//                    them, and the rest is processed; otherwise the task fails with the error,
//                    SQLSTATE and keys, recorded in the job's row.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "database/database.h"
#include "database/retry.h"
#include "engine/batch_sizer.h"
#include "engine/pacing.h"
#include "output/progress.h"
#include "output/run_metrics.h"
#include "plan/jobs_file.h"
#include "plan/scheduler.h"
#include "state/state_store.h"

namespace pgxform {

class SlotReader;
class BoundFinder;

// What one task works with, shared by its runner and its phase.
struct TaskContext {
  Session& session;
  StateStore& store;
  const ResolvedJob& job;
  const Job& spec;  // the jobs file's job: its list and settings
  TaskId task;
  Progress& progress;
  RunMetrics& metrics;
  // The slot of changes: logical when the command's jobs file has one (slot_reader.h): read
  // between batches when due, and every batch's transaction marked as pgxform's own, so that
  // the slot's reader does not capture what a batch writes.
  SlotReader* slot = nullptr;
  // Finds the main pass's next batch's last key beforehand (bound_finder.h); none: each batch
  // walks for itself.
  BoundFinder* bounds = nullptr;
};

// A part of a failing batch, processed alone or set aside: a key range [first, last] of the
// main pass, or a set of keys of catch-up (`keys`, in the key's order, in their text form as
// change_log records them; `first` and `last` the smallest and the largest).
struct BatchPart {
  std::string first, last;
  std::vector<std::string> keys;
};

// What differs between the phases (main_pass.h, change_drain.h).
class BatchPhase {
 public:
  struct Done {
    long long rows = 0;    // leading-table rows; keys refreshed for catch-up
    std::string last_key;  // where the batch ended
  };
  virtual ~BatchPhase() = default;
  // Reads where the task starts; false when it has nothing to do at all.
  virtual bool start() = 0;
  // Runs the next batch of up to `size` keys in `tx` and commits it; none when no key was left
  // (then `tx` is committed too).
  virtual std::optional<Done> batch(pqxx::work& tx, long size) = 0;
  // The part the next batch of `size` keys would take (read-only); none when unknown.
  virtual std::optional<BatchPart> next_part(long size) = 0;
  // Two halves of `part`; none when it cannot be split (a single key: the culprit).
  virtual std::optional<std::pair<BatchPart, BatchPart>> split(const BatchPart& part) = 0;
  // `part` alone, in `tx`, committed; its rows.
  virtual long long process(pqxx::work& tx, const BatchPart& part) = 0;
  // `part` set aside with `failure`, in `tx`, committed; what was set aside: `part`, or less of
  // it where the rest is no longer the task's (a slice split meanwhile, main_pass.h); none when
  // none of it is.
  virtual std::optional<BatchPart> set_aside(pqxx::work& tx, const BatchPart& part,
                                             const Failure& failure) = 0;
  virtual bool sets_aside() const = 0;  // a failing batch's culprits are set aside, not fatal
  virtual bool narrows() const = 0;     // ... after narrowing it down by halving
  // A permanent failure that ends the task: recorded in the job's row; the outcome.
  virtual TaskOutcome fail(const Failure& failure, const std::optional<BatchPart>& part) = 0;
  // No key left: recorded (the main pass: done).
  virtual void finish() = 0;
  // Stopped between two batches (a signal, or the worker leaves the pool): recorded.
  virtual void stop() = 0;
};

class BatchRunner {
 public:
  BatchRunner(TaskContext& task, Pacing& pacing, BatchPhase& phase);
  // From the task's start to its end (no key left), a stop, or a permanent failure, each
  // recorded in the state. Throws what task_runner must handle: a lost connection, an in-doubt
  // COMMIT. Counts the batches it commits in `committed`, which the caller reads also when it
  // throws: a connection that broke after progress is not one that keeps breaking. May be
  // called again once it returned (catch-up --follow): the sizer keeps what it learned.
  TaskOutcome run(long long& committed);

 private:
  // How one transactional step ended, after its transient failures were retried.
  struct Step {
    enum class Kind { ok, permanent, stopped };
    Kind kind = Kind::ok;
    Failure failure;
  };
  using Work = std::function<void(pqxx::work&)>;

  // Runs `work` in a transaction until it commits or fails for good.
  Step transact(const Work& work);
  Step next_batch(bool& finished);
  Step process(const BatchPart& part);
  Step skip(const BatchPart& part, const Failure& failure);
  // Sets `part` aside, narrowing it down first when the phase does.
  Step set_aside(const BatchPart& part, const Failure& failure);
  TaskOutcome stopped();
  // Reads the slot of changes: logical when due (TaskContext::slot).
  void read_slot();
  // Sizes the main pass's first batch from the job's recent batches (batch_sizer.h), once.
  void size_from_history();

  TaskContext& m_task;
  Pacing& m_pacing;
  BatchPhase& m_phase;
  BatchSizer m_sizer;
  long long* m_committed = nullptr;
  bool m_history_read = false;
};

// "SQLSTATE 22012: division by zero", or the message alone.
std::string describe(const Failure& failure);

}  // namespace pgxform
