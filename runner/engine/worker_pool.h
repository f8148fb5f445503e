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
// The number of workers changes while the pool runs, once a second, from the calling thread:
// the pool has no more workers than it is asked for (`threads`: --threads, defaults.threads,
// `pgxform set --threads`), than the tasks that can run now (the scheduler's runnable_count: a
// worker beyond them would only hold a connection), or than it can have without taking more
// connections than the server has free less a reserve (connection_budget.h,
// --reserve-connections): pool_size() below. Whenever that is fewer than asked, the log says
// why: "3 workers: 3 tasks can run, 42 connections free (1024 threads asked, 5 kept in
// reserve)". New workers connect first, from the calling thread, and join. For fewer, workers
// are asked to leave (Session::request_leave), idle ones first: a batched task stops after the
// batch in flight and is handed back (TaskOutcome released: not a stop of the run), to be taken
// up from its cursor by a worker that stays; a one-shot step runs to its end. A leaving worker
// closes its session. A worker that cannot be added (no connection, no thread) is said and the
// pool goes on with the ones it has.
//
// In a fleet run, the pools of all targets draw their workers from one budget
// (PoolSizing::draw, fleet_budget.h), asked after pool_size() each second: a pool may have
// fewer than pool_size() because other targets hold the fleet's workers (not said here: the
// fleet says it).
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
#include "state/runner_pool.h"

namespace pgxform {

struct PoolResult {
  std::vector<std::string> failures;  // one message per failed task
  bool stopped = false;               // a signal stopped the run before the end
};

using TaskFunction = std::function<TaskOutcome(Session&, const TaskId&)>;

// The workers a pool should have, from `figures` (its workers now are those whose connections
// it holds): no more than asked, than the tasks that can run (at least one), or than its workers
// now plus the connections free beyond the reserve, when those are known; never fewer than one,
// so that the work goes on.
int pool_size(const PoolFigures& figures);

// What may change the size of a running pool, asked once a second from the calling thread.
struct PoolLimits {
  std::optional<int> threads;           // `set --threads` now; none: not set
  bool threads_read = false;            // false: not read (an error): the threads stay as they are
  std::optional<int> connections_free;  // connection_budget.h; none: unknown
};

struct PoolSizing {
  int threads = 1;                     // asked when the pool starts
  int reserve = 0;                     // connections left free for others (--reserve-connections)
  std::function<PoolLimits()> limits;  // none: threads fixed, connections unknown
  std::function<void(const PoolFigures&)> on_figures;  // each second, for status (may be empty)
  // A fleet run's budget (fleet_budget.h): given the workers this pool could have now
  // (pool_size), the workers it may have (at least 1). Empty: no budget, the pool takes them.
  std::function<int(int)> draw;
};

class WorkerPool {
 public:
  // Starts `workers` workers (pool_size() of the figures at the start), each with a session on
  // `dsn` (connected on first use). Throws InputError naming --threads when the system refuses
  // one of them; none has run anything.
  WorkerPool(int workers, std::string dsn);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs the scheduler's tasks to the end (or a stop); once per pool.
  PoolResult run(Scheduler& scheduler, const TaskFunction& run_task);

  // Before run(): how the pool's size follows what it is asked and what the server has free.
  // Without it, the pool keeps the workers it started with, less those no task needs.
  void follow(PoolSizing sizing) {
    m_own_threads = sizing.threads;
    m_sizing = std::move(sizing);
  }

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
  // From the calling thread, once a second while run() runs: the pool's size follows its
  // figures (pool_size), said when asked for more than it takes.
  void follow_figures(Work& work);
  // The pool grows or shrinks to `wanted`.
  void resize(Work& work, int wanted);
  bool add_worker(Work& work);

  std::string m_dsn;
  std::vector<std::unique_ptr<Session>> m_sessions;
  std::vector<std::thread> m_threads;
  std::mutex m_gate_mutex;
  std::condition_variable m_gate;
  PoolSizing m_sizing;
  int m_own_threads = 1;                  // the threads the command was started with
  std::optional<int> m_connections_free;  // as last asked
  std::optional<PoolFigures> m_said;      // the figures last said, when fewer than asked
  std::optional<std::chrono::steady_clock::time_point> m_no_growth_until;
  struct GiveUp {
    std::chrono::milliseconds wait;
    std::string why;
  };
  std::optional<GiveUp> m_give_up;
  Work* m_work = nullptr;  // set by run(): the workers take tasks from it
  bool m_closing = false;  // no run will come: the workers return
};

}  // namespace pgxform
