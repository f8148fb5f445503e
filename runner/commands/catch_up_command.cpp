#include "commands/catch_up_command.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>

#include "base/exit_code.h"
#include "base/stop_signal.h"
#include "capture/change_capture.h"
#include "catalog/catalog.h"
#include "commands/run_command.h"
#include "database/database.h"
#include "database/retry.h"
#include "engine/pool_monitor.h"
#include "engine/task_runner.h"
#include "engine/worker_pool.h"
#include "output/progress.h"
#include "output/progress_display.h"
#include "plan/job_selection.h"
#include "plan/jobs_file.h"
#include "state/change_log.h"
#include "state/failed_ranges.h"
#include "state/job_identity.h"
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

// The lists to catch up: the file's, with only the capturing jobs, each one catch-up task, and
// their `after:` among those. With --follow every job is a list of its own: all start at once.
std::vector<PlannedList> catch_up_plan(const JobsFile& file, const std::vector<const Job*>& jobs,
                                       Follow follow) {
  std::vector<PlannedList> plan;
  std::set<std::string> chosen, lists;
  for (const Job* job : jobs) chosen.insert(job->name);
  for (const auto& list : file.lists) {
    PlannedList planned{list.name, {}, {}};
    for (const auto& job : list.jobs)
      if (chosen.count(job.name)) {
        const PlannedJob task{job.name, 1, Phase::catch_up};
        if (follow == Follow::yes)
          plan.push_back({job.name, {}, {task}});
        else
          planned.jobs.push_back(task);
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

// The tables of capturing jobs whose triggers are missing: said once per job, before the work.
void warn_uncaptured(pqxx::connection& conn, const StateSchema& schema,
                     const std::map<std::string, ResolvedJob>& jobs) {
  pqxx::read_transaction tx(conn);
  for (const auto& [name, job] : jobs)
    for (const std::string& table : uncaptured_tables(tx, schema, job))
      spdlog::warn(
          "{}: the changes of {} were not captured until now (no trigger): catch-up installs it"
          " now; a change made before was not recorded",
          name, table);
}

// Keys set aside because their refresh failed, of the jobs caught up: how many, of which jobs.
std::map<std::string, long long> keys_set_aside(Session& session, const StateSchema& schema,
                                                const std::vector<const Job*>& jobs) {
  std::map<std::string, long long> out;
  pqxx::read_transaction tx(session.conn());
  for (const Job* job : jobs) {
    const auto keys = unresolved_ranges(tx, schema, job->name, SetAsideKind::catch_up);
    if (!keys.empty()) out[job->name] = static_cast<long long>(keys.size());
  }
  return out;
}

int report(const PoolResult& result, const std::map<std::string, long long>& set_aside,
           Follow follow, long long keys, std::size_t jobs, double seconds) {
  if (!result.failures.empty()) {
    spdlog::error("{} job(s) failed catching up after {:.1f} s:", result.failures.size(), seconds);
    for (const auto& failure : result.failures) spdlog::error("  {}", failure);
    return k_exit_job_failed;
  }
  if (result.stopped && follow == Follow::no) {
    spdlog::warn("stopped by a signal after {:.1f} s; run catch-up again to continue", seconds);
    return k_exit_interrupted;
  }
  if (!set_aside.empty()) {
    for (const auto& [job, count] : set_aside)
      spdlog::error(
          "{}: {} key(s) set aside: their refresh failed (status shows the error); fix the"
          " refresh function or the data, then `pgxform catch-up {}` or `pgxform retry-failed {}`",
          job, count, job, job);
    return k_exit_job_failed;
  }
  spdlog::info("caught up {} {} of {} {} in {:.1f} s", keys, keys == 1 ? "key" : "keys", jobs,
               jobs == 1 ? "job" : "jobs", seconds);
  return k_exit_ok;
}

// The jobs checked before anything is written: the catalog (refresh functions, `also:`), and
// the state, as for a run: catch-up may continue a job's main pass.
Preflight check_catch_up(pqxx::connection& conn, const JobsFile& file,
                         const std::vector<const Job*>& chosen) {
  Preflight preflight = check_catalog(conn, file, names_of(chosen));
  for (const auto& warning : preflight.warnings) spdlog::warn("{}", warning);
  const std::vector<std::string> problems = state_problems(conn, file, preflight.jobs, {});
  if (!problems.empty()) throw PreflightError(problems);
  return preflight;
}

}  // namespace

int catch_up_command(const CatchUpOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  const std::vector<const Job*> chosen = capturing_jobs(file, options.jobs, "catch-up");
  if (options.until && *options.until < 0) throw UsageError("--until must be 0 or more");
  RunMetrics metrics(options.metrics ? MetricsCollection::on : MetricsCollection::off);
  if (options.metrics) {
    metrics.serve(*options.metrics);
    spdlog::info("serving metrics on http://{}/metrics", endpoint_text(*options.metrics));
  }
  auto conn = connect(options.dsn);
  const Preflight preflight = check_catch_up(*conn, file, chosen);
  metrics.declare_jobs(names_of(chosen), {Phase::main, Phase::catch_up}, k_throttle_signals);
  const Follow follow = options.follow ? Follow::yes : Follow::no;
  int threads = options.threads > 0 ? options.threads : file.default_threads;
  // Each job's task keeps its worker while it follows: one worker per job.
  if (follow == Follow::yes) threads = std::max<int>(threads, int(chosen.size()));
  const StateSchema schema(file.state_schema);
  Scheduler scheduler(catch_up_plan(file, chosen, follow));
  const auto monitor =
      std::make_shared<PoolMonitor>(options.dsn, schema, "catch-up", FollowThreads::yes);
  const PoolFigures start = monitor->starting_figures(threads, scheduler.runnable_count(), 1,
                                                      options.reserve_connections);
  if (follow == Follow::yes && start.workers < int(chosen.size()))
    throw PreflightError({"catch-up --follow keeps a worker, and its connection, for each of its " +
                          std::to_string(chosen.size()) + " jobs, and can have " +
                          pool_text(start) +
                          ": follow fewer jobs at once, or lower --reserve-connections"});
  WorkerPool pool(start.workers, options.dsn);
  warn_uncaptured(*conn, schema, preflight.jobs);
  retry_transient([&] { prepare_state(*conn, file, preflight.jobs); });
  spdlog::info("catching up {} {} on {} threads{}", chosen.size(),
               chosen.size() == 1 ? "job" : "jobs", threads,
               follow == Follow::yes ? ", following until a signal" : "");
  install_stop_handlers();
  pool.lend(std::move(conn));
  pool.follow(pool_sizing(monitor, threads, options.reserve_connections));
  Progress progress;
  ProgressDisplay display(progress, display_mode());
  HealthMonitor health;
  const RunContext context{
      file, preflight.jobs, schema, progress, health, metrics, DrainOptions{follow, options.until}};
  const auto started = std::chrono::steady_clock::now();
  const PoolResult result = pool.run(scheduler, [&context](Session& session, const TaskId& task) {
    return run_task_shown(session, context, task);
  });
  display.stop();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  long long keys = 0;
  for (const Job* job : chosen)
    keys += progress.task_rows(TaskId{job->name, 0, Phase::catch_up}.text());
  (void)out;
  return report(result, keys_set_aside(pool.first_session(), schema, chosen), follow, keys,
                chosen.size(), seconds);
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
        << resolved.table_sql;
    for (const ResolvedAlso& also : resolved.also) out << ", " << also.table_sql;
    out << "\n";
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
