#include "worker_pool.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <map>
#include <system_error>

#include "errors.h"
#include "stop_signal.h"

namespace pgxform {

namespace {

using Clock = std::chrono::steady_clock;

// A task held by another runner is offered again after this long.
constexpr auto k_deferred_retry = std::chrono::milliseconds(500);

// Cancels every worker's statement in flight; they roll back and the workers see level 2.
void cancel_in_flight(const std::string& dsn,
                      const std::vector<std::unique_ptr<Session>>& sessions) {
  try {
    auto conn = connect(dsn);
    pqxx::nontransaction tx(*conn);
    for (const auto& s : sessions)
      if (int pid = s->backend_pid())
        tx.exec_params("SELECT pg_catalog.pg_cancel_backend($1)", pid);
  } catch (const std::exception& e) {
    spdlog::warn("could not cancel the statements in flight: {}", redact(e.what()));
  }
}

// Said at the first signal, from the calling thread (a signal handler may not log): the tasks
// in flight each finish their batch, or their step, and stop.
void announce_stop(int in_flight) {
  if (in_flight == 0)
    spdlog::warn("stopping: nothing in flight");
  else
    spdlog::warn("stopping: {} {} in flight will finish; Ctrl-C again to cancel {}", in_flight,
                 in_flight == 1 ? "batch/step" : "batches/steps", in_flight == 1 ? "it" : "them");
}

}  // namespace

// One run's shared state: the scheduler under one mutex, and the outcomes so far.
class WorkerPool::Work {
 public:
  Work(Scheduler& scheduler, const TaskFunction& run_task)
      : m_scheduler(scheduler), m_run_task(run_task) {}

  void work(Session& session) {
    while (const std::optional<TaskId> task = take_task()) {
      TaskOutcome outcome;
      try {
        outcome = m_run_task(session, *task);
      } catch (const std::exception& e) {
        outcome = {TaskOutcome::Kind::failed, task->text() + ": " + redact(e.what())};
      }
      report(*task, outcome);
    }
    std::lock_guard<std::mutex> lock(m_mutex);
    m_running.fetch_sub(1);
    m_cv.notify_all();
  }

  // Waits until every worker is done, or `limit` has passed; true while some still work.
  bool wait_running(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock(m_mutex);
    return !m_cv.wait_for(lock, limit, [this] { return m_running.load() == 0; });
  }
  void set_workers(int n) { m_running.store(n); }
  // The tasks taken and not yet reported: each runs a batch or a step right now.
  int in_flight() {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_in_flight;
  }

  PoolResult result() {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_result;
  }

 private:
  std::optional<TaskId> take_task() {
    std::unique_lock<std::mutex> lock(m_mutex);
    while (true) {
      if (stop_level() >= 1) {
        m_result.stopped = m_result.stopped || !m_scheduler.is_finished();
        return std::nullopt;
      }
      if (auto task = m_scheduler.next_task()) {
        ++m_in_flight;
        return task;
      }
      if (m_scheduler.is_finished()) {
        m_cv.notify_all();
        return std::nullopt;
      }
      m_cv.wait_for(lock, std::chrono::milliseconds(100));
      if (m_scheduler.has_deferred() && Clock::now() - m_last_retry > k_deferred_retry) {
        m_last_retry = Clock::now();
        m_scheduler.retry_deferred();
      }
    }
  }

  void report(const TaskId& task, const TaskOutcome& outcome) {
    std::lock_guard<std::mutex> lock(m_mutex);
    --m_in_flight;
    if (outcome.kind != TaskOutcome::Kind::deferred) m_said_held.erase(task.text());
    switch (outcome.kind) {
      case TaskOutcome::Kind::finished:
        m_scheduler.task_finished(task);
        break;
      case TaskOutcome::Kind::failed:
        m_scheduler.task_failed(task);
        m_result.failures.push_back(outcome.message);
        spdlog::error("{}", outcome.message);
        break;
      case TaskOutcome::Kind::deferred:
        say_held(task, outcome.message);
        m_scheduler.task_deferred(task);
        break;
      case TaskOutcome::Kind::stopped:
        m_scheduler.task_released(task);
        m_result.stopped = true;
        break;
    }
    m_cv.notify_all();
  }

  // A held task is asked for twice a second: the operator hears of it once, and again only
  // when what the message says changed (another holder, or it was free a moment); every
  // retry is a debug line.
  void say_held(const TaskId& task, const std::string& message) {
    auto [said, first] = m_said_held.try_emplace(task.text(), message);
    if (first || said->second != message) {
      said->second = message;
      spdlog::info("{}; trying again shortly", message);
    } else {
      spdlog::debug("{}; trying again", message);
    }
  }

  Scheduler& m_scheduler;
  const TaskFunction& m_run_task;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  Clock::time_point m_last_retry = Clock::now();
  PoolResult m_result;
  std::atomic<int> m_running{0};
  int m_in_flight = 0;
  std::map<std::string, std::string> m_said_held;  // task -> its last "held" message said
};

WorkerPool::WorkerPool(int threads, std::string dsn) : m_dsn(std::move(dsn)) {
  for (int i = 0; i < threads; ++i) m_sessions.push_back(std::make_unique<Session>(m_dsn));
  try {
    for (auto& session : m_sessions)
      m_threads.emplace_back([this, s = session.get()] { worker(*s); });
  } catch (const std::system_error& e) {
    const std::size_t started = m_threads.size();
    release_workers();
    throw InputError({"--threads " + std::to_string(threads) + ": the system refused thread " +
                      std::to_string(started + 1) + " (" + e.what() + "); run with fewer threads"},
                     "nothing was written");
  }
}

WorkerPool::~WorkerPool() {
  release_workers();
}

void WorkerPool::release_workers() {
  {
    std::lock_guard<std::mutex> lock(m_gate_mutex);
    m_closing = true;
  }
  m_gate.notify_all();
  for (auto& t : m_threads)
    if (t.joinable()) t.join();
}

void WorkerPool::worker(Session& session) {
  Work* work = nullptr;
  {
    std::unique_lock<std::mutex> lock(m_gate_mutex);
    m_gate.wait(lock, [this] { return m_work != nullptr || m_closing; });
    work = m_work;
  }
  if (work) work->work(session);
}

void WorkerPool::lend(std::unique_ptr<pqxx::connection> conn) {
  std::lock_guard<std::mutex> lock(m_gate_mutex);  // the workers wait on it until run()
  m_sessions.front()->adopt(std::move(conn));
}

PoolResult WorkerPool::run(Scheduler& scheduler, const TaskFunction& run_task) {
  Work work(scheduler, run_task);
  work.set_workers(int(m_threads.size()));
  {
    std::lock_guard<std::mutex> lock(m_gate_mutex);
    m_work = &work;
  }
  m_gate.notify_all();
  bool announced = false;
  bool cancelled = false;
  // Woken when the last worker is done (not at the next tick), and every 50 ms for a signal.
  while (work.wait_running(std::chrono::milliseconds(50))) {
    if (stop_level() >= 1 && !announced) {
      announce_stop(work.in_flight());
      announced = true;
    }
    if (stop_level() >= 2 && !cancelled) {
      spdlog::warn("second signal: cancelling the statements in flight");
      cancel_in_flight(m_dsn, m_sessions);
      cancelled = true;
    }
  }
  release_workers();
  return work.result();
}

}  // namespace pgxform
