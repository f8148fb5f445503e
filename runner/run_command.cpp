#include "run_command.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>

#include "batch_runner.h"
#include "catalog.h"
#include "database.h"
#include "exit_code.h"
#include "jobs_file.h"
#include "progress.h"
#include "retry.h"
#include "scheduler.h"
#include "script_migrator.h"
#include "state_store.h"
#include "stop_signal.h"
#include "worker_pool.h"

namespace pgxform {

namespace {

// How often a task whose connection broke between batches is tried again.
constexpr int k_task_reconnects = 60;

std::vector<std::string> job_names(const std::vector<PlannedList>& plan) {
  std::vector<std::string> names;
  for (const auto& list : plan)
    for (const auto& job : list.jobs) names.push_back(job.name);
  return names;
}

}  // namespace

int run_command(const RunOptions& options) {
  const JobsFile file = parse_jobs_file(options.file);
  if (options.migrate) {
    // The scripts create the functions the preflight checks, so they go first, on a session of
    // their own: a SET in a script must not outlive it.
    auto scripts = connect(options.dsn);
    ScriptMigrator migrator(*scripts, file.state_schema, file.scripts_dir);
    // Read first: with nothing to apply (or no scripts at all), the run writes nothing yet.
    const auto states = migrator.info();
    if (std::any_of(states.begin(), states.end(), [](const ScriptStatus& s) {
          return s.state != ScriptState::applied && s.state != ScriptState::missing;
        }))
      migrator.migrate();
  }
  auto conn = connect(options.dsn);
  StateStore store(*conn, file.state_schema);

  for (const auto& name : options.accept_changed)
    if (!file.find_job(name))
      throw SelectionError("--accept-changed " + name + ": no job of that name in " + file.path);
  const std::vector<PlannedList> plan =
      select_lists(file, options.only, options.exclude, store.done_jobs());
  const Preflight preflight = check_catalog(*conn, file, job_names(plan));
  for (const auto& warning : preflight.warnings) spdlog::warn("{}", warning);
  std::vector<std::string> problems = store.changed_functions(
      preflight.jobs, {options.accept_changed.begin(), options.accept_changed.end()});
  for (const auto& [name, job] : preflight.jobs) {
    try {
      store.check_slicing(job);
    } catch (const std::runtime_error& e) {
      problems.push_back(file.path + ": " + e.what());
    }
  }
  if (!problems.empty()) throw PreflightError(problems);

  // From here on the run writes.
  store.ensure_schema();
  store.register_jobs(file);
  for (const auto& [name, job] : preflight.jobs) store.ensure_slices(job);
  store.pin_function_versions(preflight.jobs);

  const int threads = options.threads > 0 ? options.threads : file.default_threads;
  spdlog::info("running {} jobs of {} lists from {} on {} threads", job_names(plan).size(),
               plan.size(), file.path, threads);
  install_stop_handlers();
  Scheduler scheduler(plan);
  Progress progress;
  {
    pqxx::read_transaction tx(*conn);
    for (const auto& [name, job] : preflight.jobs) {
      const pqxx::row r = tx.exec_params1(
          "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = to_regclass($1)",
          job.table_sql);
      progress.set_total_rows(name, r[0].as<long long>());
    }
  }
  conn.reset();
  const auto started = std::chrono::steady_clock::now();

  // Tasks whose connection broke outside a batch (a server restart while claiming or finishing),
  // by task: each is tried again after a pause, on a fresh connection, a bounded number of times.
  std::mutex lost_mutex;
  std::map<std::string, int> lost;
  const TaskFunction run_task = [&](Session& session, const TaskId& task) -> TaskOutcome {
    const Job& job = *file.find_job(task.job);
    StateStore task_store(session, file.state_schema);
    auto release = [&] {
      try {
        task_store.release(task);
      } catch (const std::exception&) {
        // The session is gone, and the lock with it.
      }
    };
    try {
      if (!task_store.try_claim(task, job.list))
        return {TaskOutcome::Kind::deferred, task.text() + " is held by another runner"};
      if (job.is_step()) apply_timeouts(session.conn(), job.settings);
      const TaskOutcome outcome =
          job.is_step() ? run_step(task_store, job.name, job.sql)
                        : BatchRunner(session, task_store, preflight.jobs.at(job.name),
                                      job.settings, task, job.list, progress)
                              .run();
      release();
      return outcome;
    } catch (const std::exception& e) {
      release();
      const Failure failure = classify(e);
      if (failure.kind == FailureKind::permanent || failure.kind == FailureKind::cancelled) throw;
      int tries = 0;
      {
        std::lock_guard<std::mutex> lock(lost_mutex);
        tries = ++lost[task.text()];
      }
      if (tries > k_task_reconnects) throw;
      spdlog::warn("{}: {}; trying again on a new connection", task.text(), failure.message);
      try {
        session.reconnect();
      } catch (const std::exception&) {
        // Still down: the next try reconnects again.
      }
      return {TaskOutcome::Kind::deferred, failure.message};
    }
  };
  const PoolResult result = run_pool(threads, options.dsn, scheduler, run_task);

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (result.stopped) {
    spdlog::warn(
        "stopped by a signal after {:.1f} s; the state is consistent: run again to "
        "continue",
        seconds);
    return k_exit_interrupted;
  }
  if (!result.failures.empty()) {
    spdlog::error("{} job(s) failed after {:.1f} s:", result.failures.size(), seconds);
    for (const auto& failure : result.failures) spdlog::error("  {}", failure);
    for (const auto& job : scheduler.blocked_jobs())
      spdlog::error("  {}: not started, a job it depends on failed", job);
    return k_exit_job_failed;
  }
  spdlog::info("all {} jobs done in {:.1f} s", job_names(plan).size(), seconds);
  try {
    auto check = connect(options.dsn);
    pqxx::read_transaction tx(*check);
    const pqxx::row aside = tx.exec1("SELECT count(*), count(DISTINCT job) FROM " +
                                     StateStore(*check, file.state_schema).schema_sql() +
                                     ".failed_batches WHERE resolved_at IS NULL");
    if (aside[0].as<long long>() > 0)
      spdlog::warn(
          "{} key range(s) of {} job(s) are set aside in failed_batches: fix the "
          "function or the data, then `pgxform retry-failed`",
          aside[0].as<long long>(), aside[1].as<long long>());
  } catch (const std::exception& e) {
    spdlog::debug("could not count the set-aside ranges: {}", redact(e.what()));
  }
  return k_exit_ok;
}

}  // namespace pgxform
