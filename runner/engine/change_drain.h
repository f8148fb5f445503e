// change_drain: catch-up's part of a task (batch_runner.h: BatchPhase) — one job's change log
// (change_log.h) drained through its refresh function, on a session that holds the job's
// catch-up claim (state_locks.h: catch_up_lock; one drainer per job, beside any number of
// `run`s). The loop, the pacing, the retries, the narrowing down of failures and the reports
// are the engine's, shared with the main pass.
//
// A batch is ONE transaction: for a job with `changes.also:`, first the expansion of the other
// tables' changes into the job's keys at or below the cursor (change_log.h: expand_sql, under
// the job's row lock); then the drain statement, which picks the oldest changes at or below the
// cursor until as many keys as the sizer asks for, together with every other row of those keys,
// calls refresh_function with the keys (sorted, distinct), deletes exactly the rows it picked
// and leaves its figures; then its batch_log row (catch_up). So:
//   - a kill at any moment loses no change and applies none twice: the refresh and the
//     deletion of what it consumed commit together or not at all;
//   - a key changed again while the batch runs keeps its newer row: the statement deletes the
//     rows its own snapshot saw, and the refresh function's statements, which take their
//     snapshots later (READ COMMITTED), saw at least those changes;
//   - keys above the cursor are the main pass's: it reads their rows' latest versions and takes
//     their rows off the log as it processes them (main_pass.h). A done job's keys appended
//     above its cursor are no exception: the catch-up task continues the main pass for them
//     (task_runner.h).
// A batch whose refresh fails for good is narrowed down by halving its keys, until the keys
// that fail alone are set aside in failed_batches (catch_up), their rows taken off the log in
// the same transaction, and the error on the job's row ("catch-up: ..."); the rest is applied.
// `retry-failed`, or the next catch-up of the job, refreshes them once fixed.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/batch_runner.h"

namespace pgxform {

// Refreshes the key of the set-aside row `id` (failed_batches, catch_up) of `job` alone, in
// `tx` (not committed): the refresh, the removal of the key's rows from the log, the row's
// resolution and the batch_log row. The keys refreshed (1); none when the row was resolved
// meanwhile. retry-failed and the next catch-up of the job call it.
std::optional<long long> refresh_set_aside_key(pqxx::work& tx, const StateSchema& schema,
                                               const ResolvedJob& job, long long id);

class ChangeDrain : public BatchPhase {
 public:
  // `until`: the drain ends once at most that many changes are left to refresh.
  ChangeDrain(TaskContext& task, std::optional<long long> until);

  bool start() override { return true; }
  std::optional<Done> batch(pqxx::work& tx, long size) override;
  std::optional<BatchPart> next_part(long size) override;
  std::optional<std::pair<BatchPart, BatchPart>> split(const BatchPart& part) override;
  long long process(pqxx::work& tx, const BatchPart& part) override;
  std::optional<BatchPart> set_aside(pqxx::work& tx, const BatchPart& part,
                                     const Failure& failure) override;
  bool sets_aside() const override { return true; }
  bool narrows() const override { return true; }
  TaskOutcome fail(const Failure& failure, const std::optional<BatchPart>& part) override;
  void finish() override {}
  void stop() override {}

  // Refreshes the job's keys that an earlier catch-up set aside, each alone; those that fail
  // again keep their row, with the new error and one more attempt. Returns how many still fail.
  long long retry_set_aside();
  // Once the job's main pass is done: the rows of keys above the cursor that are gone from the
  // leading table leave the log (change_log.h: settle_sql), in one transaction, while this
  // session holds every claim of the job (state_locks.h: JobClaim), so that no main-pass batch
  // is in flight; not at all when a runner holds one.
  void settle();
  // Keys set aside by this drain.
  long long set_aside_keys() const { return m_set_aside; }

 private:
  // Up to `size` keys of the job's log that its key type cannot read (the oldest first).
  std::vector<std::string> unreadable_keys(long size);
  // The job's changes of its `also:` tables, as its keys at or below the cursor.
  void expand(pqxx::work& tx, long size);
  // The logged batch of the statement whose plan is `plan`; none when it refreshed nothing.
  std::optional<Done> logged(pqxx::work& tx, const pqxx::result& plan);
  std::string statement_name(const std::string& what) const;
  // The job's changes left, for the terminal (progress.h), counted every 5 s at most.
  void count_pending(pqxx::work& tx);

  TaskContext& m_task;
  std::optional<long long> m_until;
  long long m_set_aside = 0;
  std::optional<std::chrono::steady_clock::time_point> m_counted;
};

}  // namespace pgxform
