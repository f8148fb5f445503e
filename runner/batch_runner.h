// batch_runner: one task's keyset loop — a job, or one slice of a sliced job.
//
// Each batch is ONE transaction holding ONE statement, so a batch costs three round trips
// (BEGIN, the statement, COMMIT) whatever its size. The statement
//   1. finds the batch: the next batch_size keys after the cursor on the key's index
//      (key > last_key [AND key <= slice's hi_key] ORDER BY key LIMIT batch_size; never OFFSET),
//      widened to every row of its last key, so that a key value never spans two batches;
//   2. calls function(first_key, last_key), both bounds inclusive, in the key's own type;
//   3. moves the cursor to last_key — only if it still stands where this runner read it, so a
//      batch can never be applied twice even if two runners raced — and counts rows and batches;
//   4. appends the batch_log row.
// When the statement finds no key, the task is done.
//
// Failures (see retry.h): transient ones are retried with backoff; a broken connection is
// reopened and the task's claim taken again; a COMMIT whose outcome is unknown is settled by
// reading the cursor; a permanent one is recorded on the job with its SQLSTATE and key range.
#pragma once

#include <chrono>
#include <string>

#include "catalog.h"
#include "database.h"
#include "progress.h"
#include "scheduler.h"
#include "state_store.h"

namespace pgxform {

struct RetryPolicy {
  int retries = 5;
  std::chrono::milliseconds backoff{200};
};

struct TaskOutcome {
  enum class Kind { finished, failed, deferred, stopped };
  Kind kind = Kind::finished;
  std::string message;  // for failed: the error, SQLSTATE and key range
};

enum class Slicing { whole_job, slice };

// The SQL of one batch (exposed for the tests and for explain). `first` is the variant for a
// cursor that has no last key yet.
enum class CursorStart { none, after_last_key };
std::string batch_sql(const ResolvedJob& job, const std::string& state_schema_sql, Slicing slicing,
                      CursorStart start);

class BatchRunner {
 public:
  BatchRunner(Session& session, StateStore& store, const ResolvedJob& job, TaskId task,
              std::string list, RetryPolicy retry, Progress& progress);
  TaskOutcome run();

 private:
  // The range the failing batch covered, found again in a fresh transaction.
  std::pair<std::optional<std::string>, std::optional<std::string>> batch_range(
      const Cursor& cursor);
  TaskOutcome fail(const Failure& failure, const Cursor& cursor);

  Session& m_session;
  StateStore& m_store;
  const ResolvedJob& m_job;
  TaskId m_task;
  std::string m_list;
  RetryPolicy m_retry;
  Progress& m_progress;
  Slicing m_slicing;
};

// Runs a one-shot `sql:` step once and only once.
TaskOutcome run_step(Session& session, StateStore& store, const std::string& job,
                     const std::string& sql);

}  // namespace pgxform
