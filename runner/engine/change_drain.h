// change_drain: one job's catch-up — draining its change_log (change_capture.h) through its
// refresh function, batch after batch, on a session that holds the job's catch-up claim
// (state_locks.h: catch_up_lock; one drainer per job, beside any number of `run`s).
//
// A batch is ONE statement in one transaction (drain_sql): it picks the first log rows of the
// job at or below its cursor, in id order, until batch_size distinct keys, together with every
// other row of those keys; calls refresh_function with the keys (sorted, distinct); deletes
// exactly the rows it picked; and appends a batch_log row marked catch_up. Then COMMIT. So:
//   - a kill at any moment loses no change and applies none twice: the refresh and the
//     deletion of what it consumed commit together or not at all;
//   - a key changed again while the batch runs keeps its newer log row: the statement deletes
//     the rows its own snapshot saw, and the refresh function's statements, which take their
//     snapshots later (READ COMMITTED), saw at least those changes;
//   - keys above the job's cursor stay in the log for the main pass, which reads their rows'
//     latest versions anyway; once the cursor passes them they are at or below it and are
//     refreshed — again, harmlessly — by the next catch-up. A row changed while a main-pass
//     batch over it is in flight is therefore never lost. A job whose main pass is done
//     (status done) has every key at or below its cursor.
//
// Between batches, as batch_runner.h: the control table (pause, batch_size, pause_ms) and the
// `throttle:` limits. A transient failure is retried in place; a lost connection or an
// in-doubt COMMIT is thrown to the caller, which reconnects and drains on: the log says what
// committed. A permanent one (the refresh function failed) ends the drain with the error,
// SQLSTATE and the batch's keys, recorded on the job's state row (its status unchanged).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "catalog/catalog.h"
#include "database/database.h"
#include "database/retry.h"
#include "engine/health_throttle.h"
#include "plan/jobs_file.h"
#include "plan/scheduler.h"
#include "state/job_control.h"
#include "state/state_store.h"

namespace pgxform {

// The batch statement: $1 the job, $2 the batch's size (distinct keys). One row: consumed (log
// rows deleted), and first_key, last_key, rows (keys), rows_written of the logged batch (NULL
// when there was nothing to drain).
std::string drain_sql(const ResolvedJob& job, const StateSchema& schema);
// The keys the next batch would refresh: $1, $2 as above; one row of first, last, count.
std::string drain_keys_sql(const ResolvedJob& job, const StateSchema& schema);
// The job's log rows at or below its cursor: $1 the job; one row, the count.
std::string drainable_sql(const ResolvedJob& job, const StateSchema& schema);

// How a drain ends when the log is empty.
enum class Follow { no, yes };  // yes: wait for more changes until a stop signal

struct DrainOptions {
  Follow follow = Follow::no;
  std::optional<long long> until;  // stop once at most this many changes are drainable
};

class ChangeDrain {
 public:
  ChangeDrain(Session& session, StateStore& store, const ResolvedJob& job, const Job& spec,
              HealthMonitor& health, DrainOptions options);
  // Drains until done (or a stop); counts its committed batches and keys. Throws what the
  // caller must handle: a lost connection, an in-doubt COMMIT.
  TaskOutcome run(long long& batches, long long& keys);

 private:
  enum class Result { ok, empty, permanent, stopped };
  Result next_batch(Failure& failure, long long& keys);
  bool follow_control();
  bool wait_for_health();
  long long drainable();

  Session& m_session;
  StateStore& m_store;
  const ResolvedJob& m_job;
  const Job& m_spec;
  HealthMonitor& m_health;
  DrainOptions m_options;
  JobControl m_control;
  std::optional<std::chrono::steady_clock::time_point> m_control_read;
  long m_batch_size;
};

}  // namespace pgxform
