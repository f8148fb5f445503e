#include "commands/catch_up_command.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "base/exit_code.h"
#include "base/stop_signal.h"
#include "capture/change_capture.h"
#include "catalog/catalog.h"
#include "database/database.h"
#include "database/retry.h"
#include "engine/change_drain.h"
#include "engine/pool_monitor.h"
#include "engine/task_runner.h"
#include "engine/worker_pool.h"
#include "plan/job_selection.h"
#include "plan/jobs_file.h"
#include "state/job_identity.h"
#include "state/state_locks.h"
#include "state/state_store.h"

namespace pgxform {

namespace {

// The capturing jobs a command works on: those named (each must capture), else every one.
std::vector<const Job*> capturing_jobs(const JobsFile& file, const std::vector<std::string>& names,
                                       const std::string& command) {
  std::vector<const Job*> jobs;
  for (const Job* job : select_jobs(file, names, JobKinds::batched,
                                    command + " works on batched jobs with changes: trigger")) {
    if (job->captures())
      jobs.push_back(job);
    else if (!names.empty())
      throw PreflightError({file.path + ":" + std::to_string(job->line) + ": job '" + job->name +
                            "' has no changes: trigger, so it has no changes to " +
                            (command == "capture" ? "capture" : "catch up")});
  }
  if (jobs.empty())
    throw PreflightError({file.path + ": no job has changes: trigger (see docs/catch-up.md)"});
  return jobs;
}

std::vector<std::string> names_of(const std::vector<const Job*>& jobs) {
  std::vector<std::string> names;
  for (const Job* job : jobs) names.push_back(job->name);
  return names;
}

// The lists to drain: the file's, with only the capturing jobs, and their `after:` among
// those. With --follow every job is a list of its own: all drain at once.
std::vector<PlannedList> drain_plan(const JobsFile& file, const std::vector<const Job*>& jobs,
                                    Follow follow) {
  std::vector<PlannedList> plan;
  std::set<std::string> chosen, lists;
  for (const Job* job : jobs) chosen.insert(job->name);
  for (const auto& list : file.lists) {
    PlannedList planned{list.name, {}, {}};
    for (const auto& job : list.jobs)
      if (chosen.count(job.name)) {
        if (follow == Follow::yes)
          plan.push_back({job.name, {}, {{job.name, 1}}});
        else
          planned.jobs.push_back({job.name, 1});
      }
    if (!planned.jobs.empty()) {
      plan.push_back(planned);
      lists.insert(list.name);
    }
  }
  for (auto& planned : plan)
    if (const JobList* list = file.find_list(planned.name); list && follow == Follow::no)
      for (const auto& a : list->after)
        if (lists.count(a)) planned.after.push_back(a);
  return plan;
}

struct DrainContext {
  const JobsFile& file;
  const std::map<std::string, ResolvedJob>& jobs;
  StateSchema schema;
  HealthMonitor& health;
  DrainOptions options;
  std::mutex mutex;
  std::map<std::string, std::pair<long long, long long>> done;  // job -> batches, keys
};

// One job's drain on a worker: its claim, its settings, reconnecting as run_task does.
TaskOutcome drain_task(Session& session, DrainContext& context, const TaskId& task) {
  const Job& spec = *context.file.find_job(task.job);
  const ResolvedJob& job = context.jobs.at(task.job);
  StateStore store(session, context.schema);
  const LockKey lock = catch_up_lock(context.schema, task.job);
  long long batches = 0, keys = 0;
  TaskOutcome outcome;
  for (int attempt = 1;; ++attempt) {
    const long long before = batches;
    try {
      {
        pqxx::nontransaction tx(session.conn());
        if (!try_session_lock(tx, lock)) {
          const auto holder = lock_holder(tx, lock);
          return {TaskOutcome::Kind::deferred,
                  task.job + ": catch-up is held by another runner" +
                      (holder ? " (" + holder_name(*holder) + ")" : std::string())};
        }
      }
      apply_session_settings(session.conn(), spec.settings);
      outcome = ChangeDrain(session, store, job, spec, context.health, context.options)
                    .run(batches, keys);
      pqxx::nontransaction tx(session.conn());
      session_unlock(tx, lock);
      break;
    } catch (const std::exception& e) {
      const Failure failure = classify(e);
      if (batches > before) attempt = 1;
      if ((failure.kind != FailureKind::connection_lost && failure.kind != FailureKind::in_doubt) ||
          attempt > k_reconnect_attempts)
        return {TaskOutcome::Kind::failed, task.job + ": catch-up: " + failure.message};
      spdlog::warn("{}: catch-up: {} (attempt {} of {}): reconnecting", task.job, failure.message,
                   attempt, k_reconnect_attempts);
      std::this_thread::sleep_for(reconnect_delay(attempt - 1));
      if (stop_level() >= 1) return {TaskOutcome::Kind::stopped, ""};
      try {
        session.reconnect();  // the lock went with the old session
      } catch (const std::exception& again) {
        spdlog::debug("{}: reconnecting failed: {}", task.job, redact(again.what()));
      }
    }
  }
  if (batches > 0 || outcome.kind == TaskOutcome::Kind::finished)
    spdlog::info("{}: caught up {} {} in {} {}", task.job, keys, keys == 1 ? "key" : "keys",
                 batches, batches == 1 ? "batch" : "batches");
  std::lock_guard<std::mutex> guard(context.mutex);
  context.done[task.job] = {batches, keys};
  return outcome;
}

}  // namespace

int catch_up_command(const CatchUpOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  const std::vector<const Job*> chosen = capturing_jobs(file, options.jobs, "catch-up");
  if (options.until && *options.until < 0) throw UsageError("--until must be 0 or more");
  auto conn = connect(options.dsn);
  const Preflight preflight = check_catalog(*conn, file, names_of(chosen));
  for (const auto& warning : preflight.warnings) spdlog::warn("{}", warning);
  const StateSchema schema(file.state_schema);
  check_identities(*conn, schema, file, preflight.jobs);
  const Follow follow = options.follow ? Follow::yes : Follow::no;
  const std::vector<PlannedList> plan = drain_plan(file, chosen, follow);
  int threads = options.threads > 0 ? options.threads : file.default_threads;
  // Each job's drain keeps its worker while it follows: one worker per job.
  if (follow == Follow::yes) threads = std::max<int>(threads, int(chosen.size()));
  Scheduler scheduler(plan);
  const auto monitor =
      std::make_shared<PoolMonitor>(options.dsn, schema, "catch-up", FollowThreads::no);
  const PoolFigures start = monitor->starting_figures(threads, scheduler.runnable_count(), 1,
                                                      options.reserve_connections);
  if (follow == Follow::yes && start.workers < int(chosen.size()))
    throw PreflightError({"catch-up --follow keeps a worker, and its connection, for each of its " +
                          std::to_string(chosen.size()) + " jobs, and can have " +
                          pool_text(start) +
                          ": follow fewer jobs at once, or lower --reserve-connections"});
  WorkerPool pool(start.workers, options.dsn);
  retry_transient([&] {
    StateStore store(*conn, schema);
    store.ensure_schema();
    store.register_jobs(file);
    pin_identities(*conn, schema, file, preflight.jobs);
  });
  {
    pqxx::read_transaction tx(*conn);
    for (const auto& [name, job] : preflight.jobs)
      if (capture_triggers(tx, schema, name, job.table_sql) < k_capture_triggers)
        spdlog::warn(
            "{}: its changes are not captured (no trigger on {}): run `pgxform capture {}`"
            " or `pgxform run`, which installs it",
            name, job.table_sql, name);
  }
  spdlog::info("catching up {} {} on {} threads{}", chosen.size(),
               chosen.size() == 1 ? "job" : "jobs", threads,
               follow == Follow::yes ? ", following until a signal" : "");
  install_stop_handlers();
  pool.lend(std::move(conn));
  pool.follow(pool_sizing(monitor, threads, options.reserve_connections));
  HealthMonitor health;
  DrainContext context{file, preflight.jobs, schema, health, {follow, options.until}, {}, {}};
  const auto started = std::chrono::steady_clock::now();
  const PoolResult result = pool.run(scheduler, [&context](Session& session, const TaskId& task) {
    return drain_task(session, context, task);
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  long long keys = 0;
  for (const auto& [job, figures] : context.done) keys += figures.second;
  if (!result.failures.empty()) {
    spdlog::error("{} job(s) failed catching up after {:.1f} s:", result.failures.size(), seconds);
    for (const auto& failure : result.failures) spdlog::error("  {}", failure);
    return k_exit_job_failed;
  }
  if (result.stopped && follow == Follow::no) {
    spdlog::warn("stopped by a signal after {:.1f} s; run catch-up again to continue", seconds);
    return k_exit_interrupted;
  }
  spdlog::info("caught up {} {} of {} {} in {:.1f} s", keys, keys == 1 ? "key" : "keys",
               chosen.size(), chosen.size() == 1 ? "job" : "jobs", seconds);
  (void)out;
  return k_exit_ok;
}

int capture_command(const CaptureOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  auto conn = connect(options.dsn);
  const StateSchema schema(file.state_schema);
  if (options.action == CaptureAction::drop) {
    // Any job of the file: its triggers go even after its changes: trigger was removed.
    std::vector<const Job*> jobs = options.jobs.empty()
                                       ? capturing_jobs(file, {}, "capture")
                                       : select_jobs(file, options.jobs, JobKinds::batched,
                                                     "a one-shot step has no capture triggers");
    std::map<std::string, PendingChanges> pending;
    {
      pqxx::read_transaction tx(*conn);
      pending = pending_changes(tx, schema);
    }
    for (const Job* job : jobs) {
      const int dropped = drop_capture(*conn, schema, job->name, job->settings.lock_timeout);
      out << job->name << ": " << (dropped > 0 ? "capture dropped" : "no capture trigger");
      if (pending.count(job->name))
        out << "; " << pending[job->name].count << " changes still pending";
      out << "\n";
    }
    return k_exit_ok;
  }
  const std::vector<const Job*> jobs = capturing_jobs(file, options.jobs, "capture");
  const Preflight preflight = check_catalog(*conn, file, names_of(jobs));
  for (const auto& warning : preflight.warnings) spdlog::warn("{}", warning);
  // The change log is kept by job name: a job recorded on another table must not get its own.
  check_identities(*conn, schema, file, preflight.jobs);
  retry_transient([&] {
    StateStore store(*conn, schema);
    store.ensure_schema();
    store.register_jobs(file);
    pin_identities(*conn, schema, file, preflight.jobs);
  });
  StateStore store(*conn, schema);
  for (const Job* job : jobs) {
    const ResolvedJob& resolved = preflight.jobs.at(job->name);
    const int changed = install_capture(*conn, schema, resolved, job->settings.lock_timeout);
    out << job->name << ": " << (changed > 0 ? "capture installed on " : "capture already on ")
        << resolved.table_sql << "\n";
    if (changed > 0)
      if (const auto status = store.job_status(job->name); status && status->last_key)
        spdlog::warn(
            "{}: its main pass had reached key {} before its changes were captured: changes "
            "made below it before now are not in the change log (docs/catch-up.md)",
            job->name, *status->last_key);
  }
  return k_exit_ok;
}

}  // namespace pgxform
