#include "worker_pool.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "stop_signal.h"

namespace pgxform {

namespace {

using Clock = std::chrono::steady_clock;

// A task held by another runner is offered again after this long.
constexpr auto k_deferred_retry = std::chrono::milliseconds(500);

class Pool {
 public:
  Pool(const std::string& dsn, Scheduler& scheduler, const TaskFunction& run_task)
      : m_dsn(dsn), m_scheduler(scheduler), m_run_task(run_task) {}

  void worker(Session& session) {
    while (true) {
      std::optional<TaskId> task = take_task();
      if (!task) return;
      TaskOutcome outcome;
      try {
        outcome = m_run_task(session, *task);
      } catch (const std::exception& e) {
        outcome = {TaskOutcome::Kind::failed, task->text() + ": " + redact(e.what())};
      }
      report(*task, outcome);
    }
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
      if (auto task = m_scheduler.next_task()) return task;
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
        spdlog::info("{}: {}; trying again shortly", task.text(), outcome.message);
        m_scheduler.task_deferred(task);
        break;
      case TaskOutcome::Kind::stopped:
        m_scheduler.task_released(task);
        m_result.stopped = true;
        break;
    }
    m_cv.notify_all();
  }

  const std::string& m_dsn;
  Scheduler& m_scheduler;
  const TaskFunction& m_run_task;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  Clock::time_point m_last_retry = Clock::now();
  PoolResult m_result;
};

// Cancels every worker's statement in flight; they roll back and the workers see level 2.
void cancel_in_flight(const std::string& dsn,
                      const std::vector<std::unique_ptr<Session>>& sessions) {
  try {
    auto conn = connect(dsn);
    pqxx::nontransaction tx(*conn);
    for (const auto& s : sessions)
      if (int pid = s->backend_pid()) tx.exec_params("SELECT pg_cancel_backend($1)", pid);
  } catch (const std::exception& e) {
    spdlog::warn("could not cancel the statements in flight: {}", redact(e.what()));
  }
}

}  // namespace

PoolResult run_pool(int threads, const std::string& dsn, Scheduler& scheduler,
                    const TaskFunction& run_task) {
  Pool pool(dsn, scheduler, run_task);
  std::vector<std::unique_ptr<Session>> sessions;
  for (int i = 0; i < threads; ++i) sessions.push_back(std::make_unique<Session>(dsn));
  std::vector<std::thread> workers;
  std::atomic<int> running{threads};
  for (int i = 0; i < threads; ++i)
    workers.emplace_back([&pool, &running, session = sessions[size_t(i)].get()] {
      pool.worker(*session);
      running.fetch_sub(1);
    });
  bool cancelled = false;
  while (running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (stop_level() >= 2 && !cancelled) {
      spdlog::warn("second signal: cancelling the statements in flight");
      cancel_in_flight(dsn, sessions);
      cancelled = true;
    }
  }
  for (auto& w : workers) w.join();
  return pool.result();
}

}  // namespace pgxform
