// pacing: how a task waits between two batches — the one place, for the main pass and
// catch-up alike, that reads the control table (job_control.h) and the `throttle:` limits
// (health_throttle.h) and makes a task wait for them:
//   paused           no new batch until resumed (said once, again every minute)
//   batch_size,      applied to the task's sizer from the next batch
//   target_batch_ms
//   pause_ms         a sleep between two batches (not before a task's first)
//   throttle:        a wait while the database's health is over a limit
// Every wait is one loop that sleeps at most 100 ms at a time (a stop signal, or the pool
// asking the worker to leave, ends it) and reads the control table again at least once a
// second: `set pause_ms=0`, `resume` or `pause` take effect within a second whatever the task
// was waiting for. While it waits the task says why — in the log, on the terminal (progress.h),
// in the metrics (paused, throttled seconds) and, for status, in the job's row
// (StateStore::set_waiting: "paused ...", "throttled: max_xact_age_s 12 > 10", "pause_ms 5000";
// a pause_ms under a second is not written, so that short pauses cost no write per batch).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "database/database.h"
#include "engine/batch_sizer.h"
#include "engine/health_throttle.h"
#include "output/progress.h"
#include "output/run_metrics.h"
#include "plan/jobs_file.h"
#include "plan/scheduler.h"
#include "state/job_control.h"
#include "state/state_store.h"

namespace pgxform {

class Pacing {
 public:
  Pacing(Session& session, StateStore& store, const Job& job, TaskId task, Progress& progress,
         HealthMonitor& health, RunMetrics& metrics);
  ~Pacing();
  Pacing(const Pacing&) = delete;
  Pacing& operator=(const Pacing&) = delete;

  // Between two batches: waits as above; a new size from the control table goes to `sizer`.
  // False when a stop signal came, or the worker is to leave the pool, while it waited.
  bool between_batches(BatchSizer& sizer);
  // An idle wait of `ms` with nothing to do (catch-up --follow with an empty log), paced the
  // same way: a pause or a throttle holds it longer. False as between_batches.
  bool idle(long long ms);

 private:
  enum class Wait { none, paused, pause_ms, throttled };
  // Waits until the pause is over and `sleep_ms` (the pause_ms, or an idle time) has passed,
  // and no throttle limit is exceeded.
  bool wait(long long sleep_ms, BatchSizer* sizer);
  void read_control();
  void apply_sizes(BatchSizer& sizer);
  // The throttle's reason now, read at most once a second (health_throttle.h).
  std::optional<std::string> throttle_now();
  // Says and records that the task now waits for `wait` (`why`: what status shows, none for a
  // pause, which status reads from the control table itself), or works again.
  void set_wait(Wait wait, const std::optional<std::string>& why);
  void continue_wait(const std::optional<std::string>& why,
                     std::chrono::steady_clock::time_point now);
  void end_wait(std::chrono::steady_clock::time_point now);
  void begin_wait(Wait wait, const std::optional<std::string>& why,
                  std::chrono::steady_clock::time_point now);
  bool stop_requested() const;

  Session& m_session;
  StateStore& m_store;
  const Job& m_job;
  TaskId m_task;
  Progress& m_progress;
  HealthMonitor& m_health;
  RunMetrics& m_metrics;
  JobControl m_control;
  JobControl m_applied;  // the sizes the sizer was last given
  std::optional<std::chrono::steady_clock::time_point> m_control_read;
  bool m_first = true;  // before the task's first batch: no pause_ms
  Wait m_wait = Wait::none;
  std::optional<std::string> m_why;  // what set_wait last recorded
  std::chrono::steady_clock::time_point m_wait_since;
  std::chrono::steady_clock::time_point m_counted;  // throttled seconds counted up to here
  std::chrono::steady_clock::time_point m_said_paused;
};

}  // namespace pgxform
