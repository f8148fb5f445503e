#include "engine/batch_runner.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "base/stop_signal.h"
#include "capture/pgoutput.h"
#include "capture/slot_reader.h"
#include "state/batch_log.h"

namespace pgxform {

std::string describe(const Failure& failure) {
  return (failure.sqlstate.empty() ? "" : "SQLSTATE " + failure.sqlstate + ": ") + failure.message;
}

BatchRunner::BatchRunner(TaskContext& task, Pacing& pacing, BatchPhase& phase)
    : m_task(task), m_pacing(pacing), m_phase(phase), m_sizer(sizing_of(task.spec.settings)) {}

BatchRunner::Step BatchRunner::transact(const Work& work) {
  const JobSettings& settings = m_task.spec.settings;
  for (int attempt = 0;; ++attempt) {
    try {
      const BusySession busy(m_task.session);  // a stop waits for it (worker_pool.h)
      pqxx::work tx(m_task.session.conn());
      // A logical message the slot's reader recognises: what this transaction writes to a
      // captured table is pgxform's own, as the triggers ignore pgxform's sessions.
      if (m_task.slot)
        tx.exec_params("SELECT pg_catalog.pg_logical_emit_message(true, $1, '')",
                       k_own_writes_prefix);
      work(tx);
      return {};
    } catch (const std::exception& e) {
      const Failure failure = classify(e);
      switch (failure.kind) {
        case FailureKind::connection_lost:
        case FailureKind::in_doubt:
          throw;
        case FailureKind::cancelled:
          return {stop_level() >= 2 ? Step::Kind::stopped : Step::Kind::permanent, failure};
        case FailureKind::permanent:
          return {Step::Kind::permanent, failure};
        case FailureKind::transient:
          if (attempt >= settings.retries) return {Step::Kind::permanent, failure};
      }
      spdlog::warn("{}: {} (attempt {} of {}), retrying", m_task.task.text(), describe(failure),
                   attempt + 1, settings.retries);
      // Waiting to retry is no batch in flight: the next attempt starts the clock again.
      m_task.progress.batch_ended(m_task.task.text());
      std::this_thread::sleep_for(
          backoff_delay(attempt, std::chrono::milliseconds(settings.retry_backoff_ms)));
    }
  }
}

BatchRunner::Step BatchRunner::next_batch(bool& finished) {
  finished = false;
  const long size = m_sizer.size();
  std::optional<BatchPhase::Done> done;
  auto started = std::chrono::steady_clock::now();
  // In flight until it commits or fails: the display, the metrics and the warnings of a batch
  // far past its target (progress.h) count it meanwhile.
  const InFlight in_flight(m_task.progress, m_task.task.text(), double(m_sizer.target_ms()));
  Step step = transact([&](pqxx::work& tx) {
    started = std::chrono::steady_clock::now();  // the attempt that commits, not its retries
    m_task.progress.batch_started(m_task.task.text(), double(m_sizer.target_ms()));
    done = m_phase.batch(tx, size);
    // libpqxx throws in_doubt_error when the COMMIT gets no answer: task_runner reconnects and
    // the cursor (or the log), read again, tells whether it went through.
  });
  if (step.kind != Step::Kind::ok) return step;
  if (!done) {
    finished = true;
    return step;
  }
  if (m_committed) ++*m_committed;
  // The whole transaction as the client saw it: what a lock held for a batch lasts.
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  m_sizer.batch_done(done->rows, ms);
  m_task.progress.batch_done(m_task.task.text(), m_task.job.name, m_task.task.phase, done->rows,
                             size, ms, done->last_key);
  m_task.metrics.batch_done(m_task.job.name, m_task.task.phase, done->rows, size, ms / 1000);
  return step;
}

BatchRunner::Step BatchRunner::process(const BatchPart& part) {
  return transact([&](pqxx::work& tx) {
    const long long rows = m_phase.process(tx, part);
    if (m_committed) ++*m_committed;
    m_task.progress.range_done(m_task.task.text(), m_task.task.phase, rows);
    m_task.metrics.range_done(m_task.job.name, m_task.task.phase, rows);
  });
}

BatchRunner::Step BatchRunner::skip(const BatchPart& part, const Failure& failure) {
  return transact([&](pqxx::work& tx) {
    const std::optional<BatchPart> aside = m_phase.set_aside(tx, part, failure);
    if (!aside) return;
    m_task.progress.range_set_aside(m_task.task.text());
    m_task.metrics.batch_failed(m_task.job.name, m_task.task.phase);
    spdlog::warn("{}: set aside [{}, {}]: {}", m_task.task.text(), aside->first, aside->last,
                 describe(failure));
  });
}

BatchRunner::Step BatchRunner::set_aside(const BatchPart& part, const Failure& failure) {
  if (!m_phase.narrows()) return skip(part, failure);
  const auto halves = m_phase.split(part);
  if (!halves) return skip(part, failure);
  // Left to right, so that the cursor only ever moves forward.
  for (const BatchPart* half : {&halves->first, &halves->second}) {
    if (stop_level() >= 1) return {Step::Kind::stopped, failure};
    Step step = process(*half);
    if (step.kind == Step::Kind::permanent) step = set_aside(*half, step.failure);
    if (step.kind != Step::Kind::ok) return step;
  }
  return {};
}

TaskOutcome BatchRunner::stopped() {
  m_phase.stop();
  if (stop_level() >= 1) return {TaskOutcome::Kind::stopped, ""};
  spdlog::info("{}: handed back after its batch (fewer threads); it goes on from its cursor",
               m_task.task.text());
  return {TaskOutcome::Kind::released, ""};
}

void BatchRunner::read_slot() {
  if (!m_task.slot) return;
  const bool main = m_task.task.phase == Phase::main;
  try {
    m_task.slot->read_if_due(m_task.session, main ? k_run_interval : k_catch_up_interval);
  } catch (const std::exception& e) {
    const Failure failure = classify(e);
    // The main pass does not need the slot: it goes on, and status says the capture is missing.
    // Catch-up cannot be caught up without it.
    if (!main || failure.kind == FailureKind::connection_lost ||
        failure.kind == FailureKind::in_doubt)
      throw;
    spdlog::error("{}: could not read the replication slot: {}", m_task.task.text(),
                  describe(failure));
  }
}

void BatchRunner::size_from_history() {
  if (m_history_read || m_task.task.phase != Phase::main || m_sizer.target_ms() <= 0) return;
  m_history_read = true;
  pqxx::read_transaction tx(m_task.session.conn());
  const std::optional<double> ms_per_row =
      recent_ms_per_row(tx, m_task.store.schema(), m_task.job.name, m_task.job.function_version);
  tx.commit();
  if (!ms_per_row) return;
  m_sizer = BatchSizer(sizing_of(m_task.spec.settings), ms_per_row);
  spdlog::debug("{}: {:.4f} ms a row in the job's recent batches: the first batch takes {} keys",
                m_task.task.text(), *ms_per_row, m_sizer.size());
}

TaskOutcome BatchRunner::run(long long& committed) {
  m_committed = &committed;
  if (!m_phase.start()) {
    m_phase.finish();
    return {TaskOutcome::Kind::finished, ""};
  }
  size_from_history();
  while (true) {
    if (stop_level() >= 1 || m_task.session.leave_requested() || !m_pacing.between_batches(m_sizer))
      return stopped();
    read_slot();
    bool finished = false;
    Step step = next_batch(finished);
    if (step.kind == Step::Kind::permanent && m_phase.sets_aside()) {
      if (const auto part = m_phase.next_part(m_sizer.size()))
        step = set_aside(*part, step.failure);
    }
    switch (step.kind) {
      case Step::Kind::ok:
        break;
      case Step::Kind::permanent:
        return m_phase.fail(step.failure, m_phase.next_part(m_sizer.size()));
      case Step::Kind::stopped:
        m_phase.stop();
        return {TaskOutcome::Kind::stopped, ""};
    }
    if (finished) {
      m_phase.finish();
      return {TaskOutcome::Kind::finished, ""};
    }
  }
}

}  // namespace pgxform
