#include "commands/catch_up_command.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>

#include "base/exit_code.h"
#include "base/stop_signal.h"
#include "capture/capture_check.h"
#include "capture/capture_setup.h"
#include "capture/slot_reader.h"
#include "catalog/catalog.h"
#include "commands/run_command.h"
#include "database/database.h"
#include "database/retry.h"
#include "engine/pool_monitor.h"
#include "engine/task_runner.h"
#include "engine/worker_pool.h"
#include "output/progress.h"
#include "output/progress_display.h"
#include "output/terminal_text.h"
#include "plan/job_selection.h"
#include "plan/jobs_file.h"
#include "state/capture_state.h"
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
  for (const Job* job :
       select_jobs(file, names, JobKinds::batched,
                   command + " works on batched jobs with changes: trigger or logical")) {
    if (job->captures())
      jobs.push_back(job);
    else if (!names.empty())
      throw PreflightError({file.path + ":" + std::to_string(job->line) + ": job '" + job->name +
                            "' has no changes: trigger or logical, so it has no changes to " +
                            (command == "capture" ? "capture" : "catch up")});
  }
  if (jobs.empty())
    throw PreflightError(
        {file.path + ": no job has changes: trigger or logical (see docs/catch-up.md)"});
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

// The started jobs (their main pass began) whose capture is missing now: their changes since it
// went are in no log, and catch-up cannot make their targets complete. Said before any work.
std::map<std::string, std::string> missing_captures(
    pqxx::connection& conn, const StateSchema& schema,
    const std::map<std::string, ResolvedJob>& jobs) {
  std::map<std::string, std::string> out;
  std::set<std::string> started;
  for (const JobStatus& s : StateStore(conn, schema).read_status())
    if (s.batches_done > 0 || s.status == "done") started.insert(s.job);
  pqxx::read_transaction tx(conn);
  for (const auto& [name, job] : jobs)
    if (started.count(name))
      if (auto missing = capture_missing(tx, schema, job)) out[name] = *missing;
  return out;
}

int report_missing(const std::map<std::string, std::string>& missing) {
  for (const auto& [job, why] : missing)
    spdlog::error(
        "{}: capture missing: {}; its changes since then are in no log. Install it again"
        " (pgxform capture {}), then re-cover what changed meanwhile: pgxform reset {} and run"
        " (or pgxform verify {} --repair)",
        job, why, job, job, job);
  return k_exit_job_failed;
}

// The jobs whose log lacks changes (capture_state.h: capture_lost), of those caught up.
std::map<std::string, std::string> lost_captures(Session& session, const StateSchema& schema,
                                                 const std::vector<const Job*>& jobs) {
  std::map<std::string, std::string> out;
  pqxx::read_transaction tx(session.conn());
  const std::map<std::string, std::string> lost = captures_lost(tx, schema);
  for (const Job* job : jobs)
    if (const auto it = lost.find(job->name); it != lost.end()) out[job->name] = it->second;
  return out;
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
           const std::map<std::string, std::string>& lost, Follow follow, long long keys,
           std::size_t jobs, double seconds) {
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
  if (!lost.empty()) {
    for (const auto& [job, why] : lost)
      spdlog::error(
          "{}: caught up, but its log lacks changes: {}; re-cover them: pgxform reset {} and run"
          " (or pgxform verify {} --repair)",
          job, why, job, job);
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
  std::vector<std::string> problems = state_problems(conn, file, preflight.jobs, {});
  for (std::string& p : capture_problems(conn, file, preflight.jobs)) problems.push_back(p);
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
  const std::map<std::string, std::string> missing =
      missing_captures(*conn, schema, preflight.jobs);
  if (!missing.empty()) return report_missing(missing);
  Scheduler scheduler(catch_up_plan(file, chosen, follow));
  const auto monitor =
      std::make_shared<PoolMonitor>(options.dsn, schema, "catch-up", FollowThreads::yes);
  const PoolFigures start = monitor->starting_figures(*conn, threads, scheduler.runnable_count(), 1,
                                                      options.reserve_connections);
  if (follow == Follow::yes && start.workers < int(chosen.size()))
    throw PreflightError({"catch-up --follow keeps a worker, and its connection, for each of its " +
                          std::to_string(chosen.size()) + " jobs, and can have " +
                          pool_text(start) +
                          ": follow fewer jobs at once, or lower --reserve-connections"});
  WorkerPool pool(start.workers, options.dsn);
  retry_transient([&] { prepare_state(*conn, file, preflight.jobs, "catch-up"); });
  const std::unique_ptr<SlotReader> slot = slot_reader_for(file, metrics);
  if (slot) slot->measure(*conn);
  set_job_rows_metrics(*conn, file, preflight.jobs, metrics);
  spdlog::info("catching up {} {} on {} threads{}", chosen.size(),
               chosen.size() == 1 ? "job" : "jobs", threads,
               follow == Follow::yes ? ", following until a signal" : "");
  install_stop_handlers();
  pool.lend(std::move(conn));
  pool.follow(pool_sizing(monitor, threads, options.reserve_connections));
  Progress progress;
  ProgressDisplay display(progress, display_mode());
  HealthMonitor health;
  const RunContext context{file,
                           preflight.jobs,
                           schema,
                           progress,
                           health,
                           metrics,
                           DrainOptions{follow, options.until},
                           slot.get()};
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
  // A connection of its own: a worker's may have broken with a restart and never reopened.
  Session after(options.dsn);
  return report(result, keys_set_aside(after, schema, chosen), lost_captures(after, schema, chosen),
                follow, keys, chosen.size(), seconds);
}

namespace {

// `capture --drop [--orphans]`: what it drops and says, nothing checked before.
int drop_capture_command(const CaptureOptions& options, const JobsFile& file,
                         pqxx::connection& conn, std::ostream& out) {
  if (options.orphans) {
    const std::vector<std::string> dropped = drop_capture_orphans(conn, file);
    // Names read from the catalog (a function's comment): escaped for the terminal.
    for (const std::string& d : dropped) out << terminal_text(d) << "\n";
    if (dropped.empty()) out << "no capture of a job this file does not name\n";
    return k_exit_ok;
  }
  // Any job of the file: its capture goes even after its changes: line was removed.
  const std::vector<const Job*> jobs =
      options.jobs.empty()
          ? capturing_jobs(file, {}, "capture")
          : select_jobs(file, options.jobs, JobKinds::batched, "a one-shot step has no capture");
  std::map<std::string, PendingChanges> pending;
  {
    pqxx::read_transaction tx(conn);
    pending = pending_changes(tx, StateSchema(file.state_schema));
  }
  for (const Job* job : jobs) {
    const std::vector<std::string> dropped = drop_captures(conn, file, job->name);
    out << job->name << ": " << (dropped.empty() ? "no capture" : "capture dropped");
    if (pending.count(job->name))
      out << "; " << pending[job->name].count << " changes still pending";
    out << "\n";
    for (const std::string& d : dropped) spdlog::info("{}: {}", job->name, d);
  }
  return k_exit_ok;
}

}  // namespace

int capture_command(const CaptureOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  if (options.orphans && options.action != CaptureAction::drop)
    throw UsageError("--orphans goes with --drop: capture --drop --orphans");
  if (options.orphans && !options.jobs.empty())
    throw UsageError("capture --drop --orphans drops what no job of the file uses: name no job");
  auto conn = connect(options.dsn);
  if (options.action == CaptureAction::drop) return drop_capture_command(options, file, *conn, out);
  const std::vector<const Job*> jobs = capturing_jobs(file, options.jobs, "capture");
  const Preflight preflight = check_catalog(*conn, file, names_of(jobs));
  for (const auto& warning : preflight.warnings) spdlog::warn("{}", warning);
  const std::vector<std::string> problems = capture_problems(*conn, file, preflight.jobs);
  if (!problems.empty()) throw PreflightError(problems);
  // The change log is kept by job name: a job recorded on another table must not get its own.
  const StateSchema schema(file.state_schema);
  check_identities(*conn, schema, file, preflight.jobs);
  retry_transient([&] {
    StateStore store(*conn, StateSchema(file.state_schema));
    store.ensure_schema();
    store.register_jobs(file);
    pin_identities(*conn, schema, file, preflight.jobs);
  });
  for (const CaptureInstalled& installed :
       install_captures(*conn, file, preflight.jobs, "pgxform capture")) {
    const ResolvedJob& resolved = preflight.jobs.at(installed.job);
    out << installed.job << ": "
        << (installed.done.empty() ? "capture already on " : "capture installed on ")
        << resolved.table_sql;
    for (const ResolvedAlso& also : resolved.also) out << ", " << also.table_sql;
    out << " (changes: " << capture_name(resolved.capture) << ")\n";
    for (const std::string& d : installed.done) spdlog::info("{}: {}", installed.job, d);
  }
  return k_exit_ok;
}

}  // namespace pgxform
