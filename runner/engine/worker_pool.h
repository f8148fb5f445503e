// worker_pool: N threads, each with its own database session, running what the scheduler
// hands out (with task_runner.h's run_task, in a run) and returning every outcome to it. A task
// function reports its own failures as outcomes; one that throws anyway is a failed task,
// never a log line only. Nothing but the scheduler (under one mutex) is shared between
// workers.
//
// The threads are started first, all of them, and wait; only run() lets them take tasks. So a
// system that refuses a thread (ulimit -u, memory) fails the pool before anything ran, and
// the run can stop cleanly before it writes anything.
//
// The calling thread waits and watches the stop level: at level 1 it says at once how many
// batches or steps are in flight and will finish (a signal handler may not log); at level 2 it
// cancels the statements in flight (pg_cancel_backend from a separate connection) so that they
// roll back at once.
//
// A task held by another runner is offered again every half second: the pool says so once per
// task at info level, and again only when the message changes (another holder), the retries at
// debug level. Any session may hold a task's lock, for ever (state_locks.h): with
// give_up_waiting_after(), a task held for that long since it was first found held fails
// (the job is not run, its list stops there, the run exits 1), its message saying why.
//
// The number of workers may change while the pool runs (`pgxform set --threads`): the caller
// gives a function that says how many are wanted (asked once a second, from the calling
// thread). New workers connect first, from the calling thread, and join. For fewer, workers
// are asked to leave (Session::request_leave), idle ones first: a batched task stops after
// the batch in flight and is handed back (TaskOutcome released: not a stop of the run), to be
// taken up from its cursor by a worker that stays; a one-shot step runs to its end. A leaving
// worker closes its session. A worker that cannot be added (no connection, no thread) is said
// and the pool goes on with the ones it has.
//
// A connection costs a fork on the server (tens of ms on a small machine): the caller may lend
// the connection it prepared the run on to the first worker before run(), and use that
// worker's session again once run() returned and the workers stopped.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "database/database.h"
#include "plan/scheduler.h"

namespace pgxform {

struct PoolResult {
  std::vector<std::string> failures;  // one message per failed task
  bool stopped = false;               // a signal stopped the run before the end
};

using TaskFunction = std::function<TaskOutcome(Session&, const TaskId&)>;

class WorkerPool {
 public:
  // Starts `threads` workers, each with a session on `dsn` (connected on first use). Throws
  // InputError naming --threads when the system refuses one of them; none has run anything.
  WorkerPool(int threads, std::string dsn);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs the scheduler's tasks to the end (or a stop); once per pool.
  PoolResult run(Scheduler& scheduler, const TaskFunction& run_task);

  // Before run(): how many workers are wanted now (nullopt: no change), asked once a second.
  void follow_workers(std::function<std::optional<int>()> wanted) { m_wanted = std::move(wanted); }

  // Before run(): a task found held for `wait` fails, its message ending with `why`
  // ("--lock-timeout 30s").
  void give_up_waiting_after(std::chrono::milliseconds wait, std::string why) {
    m_give_up = GiveUp{wait, std::move(why)};
  }

  // Before run(): the first worker's session takes `conn` as its connection.
  void lend(std::unique_ptr<pqxx::connection> conn);
  // After run(): the first worker's session, for the calling thread.
  Session& first_session() { return *m_sessions.front(); }

 private:
  class Work;
  void worker(Session& session);
  void release_workers();
  // From the calling thread, while run() runs: the pool grows or shrinks to `wanted`.
  void resize(Work& work, int wanted);
  bool add_worker(Work& work);

  std::string m_dsn;
  std::vector<std::unique_ptr<Session>> m_sessions;
  std::vector<std::thread> m_threads;
  std::mutex m_gate_mutex;
  std::condition_variable m_gate;
  std::function<std::optional<int>()> m_wanted;
  struct GiveUp {
    std::chrono::milliseconds wait;
    std::string why;
  };
  std::optional<GiveUp> m_give_up;
  Work* m_work = nullptr;  // set by run(): the workers take tasks from it
  bool m_closing = false;  // no run will come: the workers return
};

}  // namespace pgxform
