#include "engine/worker_pool.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <system_error>

#include "base/errors.h"
#include "base/stop_signal.h"

namespace pgxform {

namespace {

using Clock = std::chrono::steady_clock;

// A task held by another runner is offered again after this long.
constexpr auto k_deferred_retry = std::chrono::milliseconds(500);
// After a worker could not be added, the pool tries to grow again after this long.
constexpr auto k_growth_backoff = std::chrono::seconds(10);

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
  Work(Scheduler& scheduler, const TaskFunction& run_task, std::optional<GiveUp> give_up)
      : m_scheduler(scheduler), m_run_task(run_task), m_give_up(std::move(give_up)) {}

  void work(Session& session) {
    bool leaving = false;
    while (const std::optional<TaskId> task = take_task(session, leaving)) {
      TaskOutcome outcome;
      try {
        outcome = m_run_task(session, *task);
      } catch (const std::exception& e) {
        outcome = {TaskOutcome::Kind::failed, task->text() + ": " + redact(e.what())};
      }
      report(session, *task, outcome);
    }
    // A worker the pool no longer wants gives its connection back to the server now.
    if (leaving) session.close();
  }

  // Waits until every worker is done, or `limit` has passed; true while some still work.
  bool wait_running(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock(m_mutex);
    return !m_cv.wait_for(lock, limit, [this] { return m_live.empty(); });
  }
  // A worker about to start (counted before its thread exists, so that the run cannot end
  // in between), and one whose thread could not start after all.
  void join(Session& session) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_live.push_back(&session);
  }
  void quit(Session& session) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_live.erase(std::find(m_live.begin(), m_live.end(), &session));
    m_cv.notify_all();
  }
  // The workers that stay: in the pool and not asked to leave.
  int staying() {
    std::lock_guard<std::mutex> lock(m_mutex);
    return count_staying();
  }
  // Asks workers to leave, idle ones first, or takes such requests back, until `wanted` stay;
  // returns how many workers must be added for that.
  int resize_to(int wanted) {
    std::lock_guard<std::mutex> lock(m_mutex);
    int staying = count_staying();
    for (const bool busy_too : {false, true})
      for (auto it = m_live.rbegin(); it != m_live.rend() && staying > wanted; ++it)
        if (!(*it)->leave_requested() && (busy_too || !m_busy.count(*it))) {
          (*it)->request_leave(true);
          --staying;
        }
    for (Session* s : m_live)
      if (staying < wanted && s->leave_requested()) {
        s->request_leave(false);
        ++staying;
      }
    m_cv.notify_all();  // an idle worker asked to leave leaves at once
    return std::max(0, wanted - staying);
  }
  // The workers that stay and have not connected yet: each will take a connection.
  int unconnected() {
    std::lock_guard<std::mutex> lock(m_mutex);
    return int(std::count_if(m_live.begin(), m_live.end(), [](const Session* s) {
      return !s->leave_requested() && s->backend_pid() == 0;
    }));
  }
  // The tasks that can run now (Scheduler::runnable_count).
  int runnable() {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_scheduler.runnable_count();
  }

  PoolResult result() {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_result;
  }

 private:
  int count_staying() const {
    return int(std::count_if(m_live.begin(), m_live.end(),
                             [](const Session* s) { return !s->leave_requested(); }));
  }

  // The next task for a worker, or nullopt when it is to leave: the run stopped or
  // finished, or the pool asked it to (`leaving`, see resize_to). A leaving worker is
  // counted out here, under the lock.
  std::optional<TaskId> take_task(Session& session, bool& leaving) {
    std::unique_lock<std::mutex> lock(m_mutex);
    const auto leave = [&] {
      m_live.erase(std::find(m_live.begin(), m_live.end(), &session));
      m_cv.notify_all();
      return std::nullopt;
    };
    while (true) {
      if (stop_level() >= 1) {
        m_result.stopped = m_result.stopped || !m_scheduler.is_finished();
        return leave();
      }
      if (session.leave_requested()) {
        leaving = true;
        return leave();
      }
      if (auto task = m_scheduler.next_task()) {
        m_busy.insert(&session);
        return task;
      }
      if (m_scheduler.is_finished()) return leave();
      m_cv.wait_for(lock, std::chrono::milliseconds(100));
      if (m_scheduler.has_deferred() && Clock::now() - m_last_retry > k_deferred_retry) {
        m_last_retry = Clock::now();
        m_scheduler.retry_deferred();
      }
    }
  }

  void report(Session& session, const TaskId& task, const TaskOutcome& outcome) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_busy.erase(&session);
    if (outcome.kind != TaskOutcome::Kind::deferred) {
      m_said_held.erase(task.text());
      m_held_since.erase(task.text());
    }
    if (outcome.kind == TaskOutcome::Kind::deferred && held_too_long(task)) {
      const std::string message = outcome.message + ": gave up waiting for it after " +
                                  m_give_up->why +
                                  "; it was not run (pgxform status says who "
                                  "holds it and since when)";
      m_scheduler.task_failed(task);
      m_result.failures.push_back(message);
      spdlog::error("{}", message);
      m_cv.notify_all();
      return;
    }
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
      case TaskOutcome::Kind::released:
        m_scheduler.task_released(task);
        break;
    }
    m_cv.notify_all();
  }

  // Whether a task found held has been held since longer than give_up_waiting_after allows.
  bool held_too_long(const TaskId& task) {
    const auto since = m_held_since.try_emplace(task.text(), Clock::now()).first->second;
    return m_give_up && Clock::now() - since >= m_give_up->wait;
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
  std::vector<Session*> m_live;  // the workers in the pool: those that have not left
  std::set<Session*> m_busy;     // ... and those of them running a task
  std::map<std::string, std::string> m_said_held;  // task -> its last "held" message said
  std::optional<GiveUp> m_give_up;
  std::map<std::string, Clock::time_point> m_held_since;  // task -> when first found held
};

WorkerPool::WorkerPool(int workers, std::string dsn) : m_dsn(std::move(dsn)) {
  for (int i = 0; i < workers; ++i) m_sessions.push_back(std::make_unique<Session>(m_dsn));
  try {
    for (auto& session : m_sessions)
      m_threads.emplace_back([this, s = session.get()] { worker(*s); });
  } catch (const std::system_error& e) {
    const std::size_t started = m_threads.size();
    release_workers();
    throw InputError(
        {"--threads: the system refused thread " + std::to_string(started + 1) + " of " +
         std::to_string(workers) + " (" + e.what() + "); run with fewer threads"},
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

bool WorkerPool::add_worker(Work& work) {
  auto session = std::make_unique<Session>(m_dsn);
  try {
    session->conn();  // here, so that a refused connection is said once and costs no task
  } catch (const std::exception& e) {
    spdlog::warn("threads: could not add a worker: {}", redact(e.what()));
    return false;
  }
  Session* s = session.get();
  m_sessions.push_back(std::move(session));
  work.join(*s);
  try {
    m_threads.emplace_back([this, s] { worker(*s); });
  } catch (const std::system_error& e) {
    work.quit(*s);
    spdlog::warn("threads: the system refused another thread ({})", e.what());
    return false;
  }
  return true;
}

void WorkerPool::resize(Work& work, int wanted) {
  // A worker that could not be added is not tried again at every tick: the server refused a
  // connection, or the system a thread, and saying so once a second helps nobody.
  if (wanted > work.staying() && m_no_growth_until && Clock::now() < *m_no_growth_until) return;
  for (int missing = work.resize_to(wanted); missing > 0; --missing)
    if (!add_worker(work)) {
      spdlog::warn("threads: going on with {}", work.staying());
      m_no_growth_until = Clock::now() + k_growth_backoff;
      return;
    }
}

int pool_size(const PoolFigures& f) {
  int size = std::min(f.threads, std::max(1, f.tasks));
  if (size > f.workers && f.connections_free)
    size = std::min(size, f.workers + std::max(0, *f.connections_free - f.reserve));
  return std::max(1, size);
}

void WorkerPool::follow_figures(Work& work) {
  if (m_sizing.limits) {
    const PoolLimits limits = m_sizing.limits();
    // Not set (or cleared with set --threads default): the threads this runner started with.
    const int wanted =
        limits.threads_read ? limits.threads.value_or(m_own_threads) : m_sizing.threads;
    if (wanted != m_sizing.threads) {
      const char* const why = limits.threads ? "set --threads" : "set --threads default";
      if (wanted < work.staying())
        spdlog::info("threads: {} -> {} ({}); the workers that leave finish their batch",
                     m_sizing.threads, wanted, why);
      else
        spdlog::info("threads: {} -> {} ({})", m_sizing.threads, wanted, why);
      m_sizing.threads = wanted;
      m_no_growth_until.reset();
    }
    m_connections_free = limits.connections_free;
    // A worker that has not connected yet (it is about to, with its first task) is not among
    // the server's sessions: its connection is as good as taken.
    if (m_connections_free)
      m_connections_free = std::max(0, *m_connections_free - work.unconnected());
  }
  PoolFigures figures{work.staying(), m_sizing.threads, work.runnable(), m_connections_free,
                      m_sizing.reserve};
  const int could = pool_size(figures);
  const int size = m_sizing.draw ? m_sizing.draw(could) : could;
  if (size != figures.workers) resize(work, size);
  figures.workers = work.staying();
  // Said when the pool has fewer workers than asked, and again when that changes; not when
  // a fleet's budget holds it back (the fleet run says that).
  if (figures.workers >= figures.threads || size < could) {
    m_said.reset();
  } else if (!m_said || m_said->workers != figures.workers || m_said->threads != figures.threads) {
    spdlog::info("{}", pool_text(figures));
    m_said = figures;
  }
  if (m_sizing.on_figures) m_sizing.on_figures(figures);
}

void WorkerPool::lend(std::unique_ptr<pqxx::connection> conn) {
  std::lock_guard<std::mutex> lock(m_gate_mutex);  // the workers wait on it until run()
  m_sessions.front()->adopt(std::move(conn));
}

PoolResult WorkerPool::run(Scheduler& scheduler, const TaskFunction& run_task) {
  Work work(scheduler, run_task, m_give_up);
  for (auto& session : m_sessions) work.join(*session);
  {
    std::lock_guard<std::mutex> lock(m_gate_mutex);
    m_work = &work;
  }
  m_gate.notify_all();
  bool announced = false;
  bool cancelled = false;
  auto next_ask = Clock::now();
  // The pool's figures at once (the log says at the start why it has fewer workers than asked),
  // then once a second. Woken when the last worker is done (not at the next tick), and every
  // 50 ms for a signal.
  follow_figures(work);
  next_ask += std::chrono::seconds(1);
  while (work.wait_running(std::chrono::milliseconds(50))) {
    if (stop_level() == 0 && Clock::now() >= next_ask) {
      next_ask = Clock::now() + std::chrono::seconds(1);
      follow_figures(work);
    }
    if (stop_level() >= 1 && !announced) {
      // Only the batches and steps under way: a task between two batches (pausing, or a
      // catch-up --follow waiting for changes) stops at once.
      announce_stop(int(std::count_if(m_sessions.begin(), m_sessions.end(),
                                      [](const auto& s) { return s->busy(); })));
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
