// worker_pool: N threads, each with its own database session, running what the scheduler
// hands out (with task_runner.h's run_task, in a run) and returning every outcome to it. A task
// function reports its own failures as outcomes; one that throws anyway is a failed task,
// never a log line only. Nothing but the scheduler (under one mutex) is shared between
// workers.
//
// The calling thread waits and watches the stop level: at level 2 it cancels the statements
// in flight (pg_cancel_backend from a separate connection) so that they roll back at once.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "database.h"
#include "scheduler.h"

namespace pgxform {

struct PoolResult {
  std::vector<std::string> failures;  // one message per failed task
  bool stopped = false;               // a signal stopped the run before the end
};

using TaskFunction = std::function<TaskOutcome(Session&, const TaskId&)>;

PoolResult run_pool(int threads, const std::string& dsn, Scheduler& scheduler,
                    const TaskFunction& run_task);

}  // namespace pgxform
