#include "engine/pacing.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "base/stop_signal.h"

namespace pgxform {

namespace {

using Clock = std::chrono::steady_clock;

// The longest single sleep: a stop signal or a leaving worker is seen within it.
constexpr auto k_step = std::chrono::milliseconds(100);
// A pause_ms this long or longer is written to the job's row for status; a shorter one is not
// (one write per batch for a pause nobody can see).
constexpr long long k_pause_shown_ms = 1000;

const std::string k_throttled = "throttled: ";

// The signal a throttle's wait names: "max_xact_age_s" of "throttled: max_xact_age_s 12 > 10".
std::string signal_of(const std::string& why) {
  const std::string reason =
      why.substr(why.compare(0, k_throttled.size(), k_throttled) == 0 ? k_throttled.size() : 0);
  return reason.substr(0, reason.find(' '));
}

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

Pacing::Pacing(Session& session, StateStore& store, const Job& job, TaskId task, Progress& progress,
               HealthMonitor& health, RunMetrics& metrics)
    : m_session(session),
      m_store(store),
      m_job(job),
      m_task(std::move(task)),
      m_progress(progress),
      m_health(health),
      m_metrics(metrics) {}

Pacing::~Pacing() {
  try {
    set_wait(Wait::none, std::nullopt);
  } catch (const std::exception& e) {
    // The session broke: its task is over, and status shows no holder to wait for.
    spdlog::debug("{}: could not clear what it waited for: {}", m_task.text(), redact(e.what()));
  }
}

bool Pacing::stop_requested() const {
  return stop_level() >= 1 || m_session.leave_requested();
}

void Pacing::read_control() {
  pqxx::nontransaction tx(m_session.conn());
  m_control = resolve_control(read_control_rows(tx, m_store.schema(), m_job.name, m_job.list),
                              m_job.name, m_job.list);
  m_control_read = Clock::now();
}

void Pacing::apply_sizes(BatchSizer& sizer) {
  if (m_control.batch_size == m_applied.batch_size &&
      m_control.target_batch_ms == m_applied.target_batch_ms)
    return;
  m_applied = m_control;
  BatchSizing sizing = sizing_of(m_job.settings);
  if (m_control.target_batch_ms) sizing.target_ms = *m_control.target_batch_ms;
  if (m_control.batch_size) sizing.first = *m_control.batch_size;
  // A size given now is the next batch's; time sizing goes on from it. A new target alone
  // keeps what the batches so far said a row costs.
  sizer = BatchSizer(sizing, m_control.batch_size ? std::nullopt : sizer.ms_per_row());
  spdlog::info("{}: batches of {} keys{} from now on (control)", m_task.text(), sizer.size(),
               sizing.target_ms > 0
                   ? ", then sized to last " + std::to_string(sizing.target_ms) + " ms"
                   : std::string());
}

std::optional<std::string> Pacing::throttle_now() {
  if (!m_job.settings.throttle.any()) return std::nullopt;
  return throttle_reason(m_health.signals(m_session.conn()), m_job.settings.throttle);
}

void Pacing::set_wait(Wait wait, const std::optional<std::string>& why) {
  const auto now = Clock::now();
  // Throttled seconds are counted as they pass (once a second), so that a long wait shows in
  // the metrics.
  if (m_wait == Wait::throttled && m_why &&
      (wait != Wait::throttled || now - m_counted >= std::chrono::seconds(1))) {
    m_metrics.throttled(m_job.name, m_task.phase, signal_of(*m_why),
                        seconds_between(m_counted, now));
    m_counted = now;
  }
  if (wait == m_wait) {
    continue_wait(why, now);
    return;
  }
  end_wait(now);
  begin_wait(wait, why, now);
}

void Pacing::continue_wait(const std::optional<std::string>& why, Clock::time_point now) {
  if (m_wait == Wait::paused && now - m_said_paused >= std::chrono::minutes(1)) {
    spdlog::info("{}: still paused ({})", m_task.text(), m_control.paused_by);
    m_said_paused = now;
  }
  if (m_wait == Wait::throttled && signal_of(*why) != signal_of(*m_why)) {
    spdlog::info("{}: {}", m_task.text(), *why);
    m_store.set_waiting(m_task, why);
  }
  if (m_wait == Wait::pause_ms && why != m_why) m_store.set_waiting(m_task, why);
  if (m_wait == Wait::throttled || m_wait == Wait::pause_ms) {
    m_progress.set_waiting(m_task.text(), why);
    m_why = why;
  }
}

void Pacing::end_wait(Clock::time_point now) {
  if (m_wait == Wait::paused) {
    m_metrics.set_paused(m_job.name, m_task.phase, Paused::no);
    spdlog::info("{}: resumed", m_task.text());
  } else if (m_wait == Wait::throttled) {
    spdlog::info("{}: no longer throttled, after {:.1f} s", m_task.text(),
                 seconds_between(m_wait_since, now));
  }
  if (m_why) m_store.set_waiting(m_task, std::nullopt);
  if (m_wait != Wait::none) m_progress.set_waiting(m_task.text(), std::nullopt);
  m_wait = Wait::none;
  m_why.reset();
}

void Pacing::begin_wait(Wait wait, const std::optional<std::string>& why, Clock::time_point now) {
  m_wait = wait;
  m_wait_since = now;
  m_counted = now;
  if (wait == Wait::paused) {
    spdlog::info("{}: paused ({}): no new batch until pgxform resume {}", m_task.text(),
                 m_control.paused_by, m_job.name);
    m_metrics.set_paused(m_job.name, m_task.phase, Paused::yes);
    m_progress.set_waiting(m_task.text(), "paused (" + m_control.paused_by + ")");
    m_said_paused = now;
    return;
  }
  if (wait == Wait::throttled) spdlog::info("{}: {}; waiting", m_task.text(), *why);
  if (why) {
    m_store.set_waiting(m_task, why);
    m_progress.set_waiting(m_task.text(), why);
    m_why = why;
  }
}

bool Pacing::wait(long long sleep_ms, BatchSizer* sizer) {
  const auto started = Clock::now();
  while (true) {
    if (stop_requested()) {
      set_wait(Wait::none, std::nullopt);
      return false;
    }
    if (!m_control_read || Clock::now() - *m_control_read >= std::chrono::seconds(1))
      read_control();
    if (sizer) apply_sizes(*sizer);
    // Between two batches the pause is pause_ms as the control table says it now, so that a
    // new value applies to the sleep under way (none before the task's first batch); an idle
    // wait is the caller's.
    const long long pause = sizer ? (m_first ? 0 : m_control.pause_ms) : sleep_ms;
    const long long left =
        pause -
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    std::optional<std::string> reason;
    if (m_control.paused) {
      set_wait(Wait::paused, std::nullopt);
    } else if (left > 0) {
      set_wait(Wait::pause_ms, sizer && pause >= k_pause_shown_ms
                                   ? std::optional<std::string>("pause_ms " + std::to_string(pause))
                                   : std::nullopt);
    } else if ((reason = throttle_now())) {
      set_wait(Wait::throttled, k_throttled + *reason);
    } else {
      set_wait(Wait::none, std::nullopt);
      return true;
    }
    std::this_thread::sleep_for(
        left > 0 ? std::min<std::chrono::milliseconds>(k_step, std::chrono::milliseconds(left))
                 : std::chrono::milliseconds(k_step));
  }
}

bool Pacing::between_batches(BatchSizer& sizer) {
  const bool go = wait(0, &sizer);
  m_first = false;
  return go;
}

bool Pacing::idle(long long ms) {
  return wait(ms, nullptr);
}

}  // namespace pgxform
