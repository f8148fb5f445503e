#include "commands/run_command.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>

#include "base/exit_code.h"
#include "base/stop_signal.h"
#include "capture/capture_check.h"
#include "capture/capture_setup.h"
#include "catalog/catalog.h"
#include "catalog/table_stats.h"
#include "commands/script_commands.h"
#include "database/database.h"
#include "database/retry.h"
#include "engine/bound_finder.h"
#include "engine/health_throttle.h"
#include "engine/pool_monitor.h"
#include "engine/task_runner.h"
#include "engine/worker_pool.h"
#include "output/progress.h"
#include "output/progress_display.h"
#include "plan/jobs_file.h"
#include "plan/scheduler.h"
#include "state/failed_ranges.h"
#include "state/job_control.h"
#include "state/job_identity.h"
#include "state/state_store.h"

namespace pgxform {

namespace {

std::vector<std::string> job_names(const std::vector<PlannedList>& plan) {
  std::vector<std::string> names;
  for (const auto& list : plan)
    for (const auto& job : list.jobs) names.push_back(job.name);
  return names;
}

// What the run will do, checked against the database and the state before anything is
// written: throws an InputError (exit 2) for every problem found.
struct RunPlan {
  std::vector<PlannedList> lists;
  Preflight preflight;
};

RunPlan check_run(pqxx::connection& conn, const JobsFile& file, const RunOptions& options) {
  StateStore store(conn, StateSchema(file.state_schema));
  for (const auto& name : options.accept_changed)
    if (!file.find_job(name))
      throw SelectionError("--accept-changed " + name + ": no job of that name in " + file.path);
  RunPlan run;
  run.lists = select_lists(file, options.only, options.exclude, store.done_jobs());
  run.preflight = check_catalog(conn, file, job_names(run.lists));
  for (const auto& warning : run.preflight.warnings) spdlog::warn("{}", warning);
  std::vector<std::string> problems =
      state_problems(conn, file, run.preflight.jobs,
                     {options.accept_changed.begin(), options.accept_changed.end()});
  for (std::string& p : capture_problems(conn, file, run.preflight.jobs)) problems.push_back(p);
  if (!problems.empty()) throw PreflightError(problems);
  return run;
}

// The planner's estimate of each job's rows, for the progress's projections (0 when unknown),
// and the rows each job had done before this run, for its percent.
void estimate_rows(pqxx::connection& conn, const JobsFile& file, const RunPlan& run,
                   Progress& progress) {
  for (const auto& s : StateStore(conn, StateSchema(file.state_schema)).read_status())
    progress.set_job_rows(s.job, s.rows_done);
  pqxx::read_transaction tx(conn);
  for (const auto& [name, job] : run.preflight.jobs)
    progress.set_total_rows(name, (long long)estimated_rows(tx, job).value_or(0));
}

}  // namespace

void set_job_rows_metrics(pqxx::connection& conn, const JobsFile& file,
                          const std::map<std::string, ResolvedJob>& jobs, RunMetrics& metrics) {
  std::map<std::string, JobStatus> states;
  for (auto& s : StateStore(conn, StateSchema(file.state_schema)).read_status())
    states.emplace(s.job, std::move(s));
  pqxx::read_transaction tx(conn);
  for (const auto& [name, job] : jobs) {
    const auto s = states.find(name);
    if (s == states.end()) {
      metrics.set_job_rows(name, 0, estimated_rows(tx, job));
      continue;
    }
    const JobStatus& state = s->second;
    metrics.set_job_rows(
        name, state.rows_done,
        state.status == "done"
            ? std::optional<double>(double(state.rows_done))
            : estimated_total_rows(tx, job, state.rows_done, state.last_key, state.slices));
  }
}

namespace {

// After a run that finished: the ranges that on_error: skip set aside wait for retry-failed.
void warn_set_aside(Session& session, const JobsFile& file) {
  try {
    pqxx::read_transaction tx(session.conn());
    const SetAside aside = count_unresolved(tx, StateSchema(file.state_schema));
    if (aside.ranges > 0)
      spdlog::warn(
          "{} key range(s) of {} job(s) are set aside in failed_batches: fix the "
          "function or the data, then `pgxform retry-failed`",
          aside.ranges, aside.jobs);
  } catch (const std::exception& e) {
    spdlog::debug("could not count the set-aside ranges: {}", redact(e.what()));
  }
}

int report_result(const PoolResult& result, const Scheduler& scheduler, std::size_t jobs,
                  double seconds, const std::string& who) {
  if (result.stopped) {
    spdlog::warn(
        "{}stopped by a signal after {:.1f} s; the state is consistent: run again to "
        "continue",
        who, seconds);
    return k_exit_interrupted;
  }
  if (!result.failures.empty()) {
    spdlog::error("{}{} job(s) failed after {:.1f} s:", who, result.failures.size(), seconds);
    for (const auto& failure : result.failures) spdlog::error("  {}{}", who, failure);
    for (const auto& job : scheduler.blocked_jobs())
      spdlog::error("  {}{}: not started, a job it depends on failed", who, job);
    return k_exit_job_failed;
  }
  spdlog::info("{}all {} jobs done in {:.1f} s", who, jobs, seconds);
  return k_exit_ok;
}

}  // namespace

std::vector<std::string> state_problems(pqxx::connection& conn, const JobsFile& file,
                                        const std::map<std::string, ResolvedJob>& jobs,
                                        const std::set<std::string>& accepted) {
  StateStore store(conn, StateSchema(file.state_schema));
  // First of all: a job whose state is another table's has no function version or slices of
  // its own to compare (an InputError of its own).
  check_identities(conn, store.schema(), file, jobs);
  std::vector<std::string> problems = store.changed_functions(jobs, accepted);
  for (const auto& [name, job] : jobs)
    if (auto problem = store.slicing_problem(job)) problems.push_back(file.path + ": " + *problem);
  std::vector<std::string> names;
  for (const auto& [name, job] : jobs) names.push_back(name);
  pqxx::read_transaction tx(conn);
  for (auto& problem : throttle_blind_spots(tx, file, names))
    problems.push_back(std::move(problem));
  return problems;
}

void prepare_state(pqxx::connection& conn, const JobsFile& file,
                   const std::map<std::string, ResolvedJob>& jobs, const std::string& command) {
  StateStore store(conn, StateSchema(file.state_schema));
  store.ensure_schema();
  store.register_jobs(file);
  pin_identities(conn, store.schema(), file, jobs);
  for (const auto& [name, job] : jobs) store.ensure_slices(job);
  store.pin_function_versions(jobs);
  // Before the first batch of a capturing job, so that every change the main pass does not see
  // is in its change log (capture_setup.h).
  for (const CaptureInstalled& installed : install_captures(conn, file, jobs, command))
    if (!installed.done.empty())
      spdlog::info("{}: capturing the changes of {} for catch-up ({})", installed.job,
                   jobs.at(installed.job).table_sql, capture_name(jobs.at(installed.job).capture));
}

std::unique_ptr<SlotReader> slot_reader_for(const JobsFile& file, RunMetrics& metrics) {
  for (const auto& list : file.lists)
    for (const auto& job : list.jobs)
      if (job.changes == ChangeCapture::logical)
        return std::make_unique<SlotReader>(StateSchema(file.state_schema),
                                            file.max_slot_retained_mb, metrics);
  return nullptr;
}

namespace {

// The live settings an earlier `pgxform set` left in the control table apply to this run too:
// said at its start, with how to clear them, so that none is a surprise later.
void say_overrides(pqxx::connection& conn, const StateSchema& schema) {
  pqxx::read_transaction tx(conn);
  for (const auto& text : read_overrides(tx, schema))
    spdlog::info("in force from pgxform set: {} (pgxform set ... KEY=default clears it)", text);
}

}  // namespace

int run_command(const RunOptions& options) {
  const JobsFile file = parse_jobs_file(options.file);
  RunMetrics metrics(options.metrics ? MetricsCollection::on : MetricsCollection::off);
  if (options.metrics) {
    metrics.serve(*options.metrics);
    spdlog::info("serving metrics on http://{}/metrics", endpoint_text(*options.metrics));
  }
  return run_jobs(options, file, metrics, nullptr);
}

int run_jobs(const RunOptions& options, const JobsFile& file, RunMetrics& metrics,
             const FleetPart* fleet) {
  const std::string who = fleet ? fleet->target + ": " : "";
  // The scripts create the functions the preflight checks, so they go first, on a session of
  // their own: a SET in a script must not outlive it.
  if (options.migrate)
    migrate_pending(options.dsn, file,
                    options.lock_timeout ? options.lock_timeout->wait : std::chrono::seconds(60));
  auto conn = connect(options.dsn);
  const RunPlan run = check_run(*conn, file, options);
  std::vector<std::string> batched;
  for (const auto& [name, job] : run.preflight.jobs) batched.push_back(name);
  metrics.declare_jobs(batched, {Phase::main}, k_throttle_signals);
  const int threads = options.threads > 0 ? options.threads : file.default_threads;
  Scheduler scheduler(run.lists);
  // No more workers than tasks can run, nor than the server has connections free for beyond
  // the reserve (worker_pool.h); the run's own connection is lent to the first.
  const auto monitor = std::make_shared<PoolMonitor>(options.dsn, StateSchema(file.state_schema),
                                                     "run", FollowThreads::yes);
  const PoolFigures start = monitor->starting_figures(*conn, threads, scheduler.runnable_count(), 1,
                                                      options.reserve_connections);
  // The workers' threads exist before anything is written: a system that refuses one stops
  // the run here, cleanly.
  WorkerPool pool(fleet ? fleet->draw(start.workers) : start.workers, options.dsn);
  if (options.lock_timeout) {
    // The setup lock's wait (state_locks.h: transaction_lock) ends at the session's
    // lock_timeout; the first worker's job settings set their own when it takes this session.
    pqxx::nontransaction(*conn).exec_params(
        "SELECT pg_catalog.set_config('lock_timeout', $1, false)",
        std::to_string(options.lock_timeout->wait.count()) + "ms");
    pool.give_up_waiting_after(options.lock_timeout->wait,
                               "--lock-timeout " + options.lock_timeout->text);
  }
  retry_transient([&] { prepare_state(*conn, file, run.preflight.jobs, "run"); });
  const std::unique_ptr<SlotReader> slot = slot_reader_for(file, metrics);
  if (slot) slot->measure(*conn);

  const std::size_t jobs = job_names(run.lists).size();
  if (fleet)
    spdlog::info("{}running {} jobs of {} lists from {}", who, jobs, run.lists.size(), file.path);
  else
    spdlog::info("running {} jobs of {} lists from {} on {} threads", jobs, run.lists.size(),
                 file.path, threads);
  say_overrides(*conn, StateSchema(file.state_schema));
  if (!fleet) install_stop_handlers();
  Progress progress;
  estimate_rows(*conn, file, run, progress);
  set_job_rows_metrics(*conn, file, run.preflight.jobs, metrics);
  pool.lend(std::move(conn));
  PoolSizing sizing = pool_sizing(monitor, threads, options.reserve_connections);
  if (fleet) sizing.draw = fleet->draw;
  pool.follow(std::move(sizing));
  std::optional<ProgressDisplay> display;
  if (!fleet) display.emplace(progress, display_mode());

  const auto started = std::chrono::steady_clock::now();
  HealthMonitor health;
  BoundFinder bounds(options.dsn);
  const RunContext context{file,
                           run.preflight.jobs,
                           StateSchema(file.state_schema),
                           progress,
                           health,
                           metrics,
                           {},
                           slot.get(),
                           &bounds};
  const PoolResult result = pool.run(scheduler, [&context](Session& session, const TaskId& task) {
    return run_task_shown(session, context, task);
  });
  if (display) display->stop();
  spdlog::debug("{} batches took their last key found beforehand ({} walks)", bounds.taken(),
                bounds.walks());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const int exit_code = report_result(result, scheduler, jobs, seconds, who);
  if (exit_code == k_exit_ok) warn_set_aside(pool.first_session(), file);
  return exit_code;
}

}  // namespace pgxform
