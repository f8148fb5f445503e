#include "commands/verify_command.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <memory>

#include "base/exit_code.h"
#include "base/output_format.h"
#include "catalog/table_stats.h"
#include "database/database.h"
#include "engine/pool_monitor.h"
#include "engine/worker_pool.h"
#include "output/terminal_text.h"
#include "plan/job_selection.h"
#include "plan/scheduler.h"
#include "state/job_identity.h"
#include "state/state_locks.h"
#include "state/state_store.h"

namespace pgxform {

namespace {

// The jobs to verify: those named (each must have a verify: query), else every job that has one.
std::vector<std::string> verified_jobs(const JobsFile& file, const VerifyOptions& options) {
  std::vector<std::string> names;
  for (const Job* job : select_jobs(file, options.jobs, JobKinds::any)) {
    if (job->verify.empty()) {
      if (options.jobs.empty()) continue;
      throw PreflightError({file.path + ": job '" + job->name + "' has no verify: query"});
    }
    if (options.mode == VerifyMode::repair && !job->idempotent)
      throw PreflightError({"verify --repair re-runs batches, and job '" + job->name +
                            "' is not marked idempotent: true; repair it by hand, or mark it"});
    names.push_back(job->name);
  }
  if (names.empty()) throw PreflightError({file.path + ": no job has a verify: query"});
  return names;
}

// What to verify of each job. Only what a job has processed can be right or wrong: up to its
// cursor while it is not done (a sliced job has no one cursor: its whole table), everything
// once it is done or when it has no state.
std::vector<VerifyTarget> verify_targets(pqxx::connection& conn, const JobsFile& file,
                                         const std::vector<std::string>& names) {
  std::map<std::string, JobStatus> states;
  for (auto& s : StateStore(conn, StateSchema(file.state_schema)).read_status())
    states.emplace(s.job, std::move(s));
  std::vector<VerifyTarget> targets;
  for (auto& job : resolve_jobs(conn, file, names)) {
    VerifyTarget t;
    t.spec = file.find_job(job.name);
    const auto state = states.find(job.name);
    if (state != states.end()) {
      t.slices = state->second.slices;
      if (state->second.status != "done" && state->second.slices == 1)
        t.limit = state->second.last_key.value_or("");
    }
    {
      pqxx::read_transaction tx(conn);
      t.expected_rows = estimated_rows(tx, job);
    }
    // Up to its cursor, the rows the job counted are the rows to check.
    if (state != states.end() && (t.limit || !t.expected_rows))
      t.expected_rows = double(state->second.rows_done);
    t.job = std::move(job);
    targets.push_back(std::move(t));
  }
  return targets;
}

// Each job's verification (and repair), the jobs in parallel on `threads` workers; in the
// order of `targets`.
std::vector<Verification> verify_in_parallel(const JobsFile& file,
                                             const std::vector<VerifyTarget>& targets,
                                             const VerifyOptions& options, int threads) {
  std::vector<Verification> results(targets.size());
  std::vector<PlannedList> lists;  // one per job: no job waits for another
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const std::string& name = targets[i].job.name;
    lists.push_back({name, {}, {{name, 1}}});
    index[name] = i;
    results[i].job = name;
  }
  Scheduler scheduler(lists);
  const auto monitor = std::make_shared<PoolMonitor>(options.dsn, StateSchema(file.state_schema),
                                                     "verify", FollowThreads::no);
  const PoolFigures start = monitor->starting_figures(threads, scheduler.runnable_count(), 0,
                                                      options.reserve_connections);
  WorkerPool pool(start.workers, options.dsn);
  pool.follow(pool_sizing(monitor, threads, options.reserve_connections));
  // Each task writes only its own job's result; the pool's end (its threads joined) publishes
  // them to this thread.
  pool.run(scheduler, [&](Session& session, const TaskId& task) {
    const std::size_t i = index.at(task.job);
    Verification& v = results[i];
    try {
      v = verify_job(session.conn(), targets[i], options.progress_every);
      if (options.mode == VerifyMode::repair && !v.error && !v.bad_ranges.empty())
        repair_job(session.conn(), targets[i], v);
    } catch (const std::exception& e) {
      v.error = redact(e.what());  // no connection: verify_job reports its own failures
    }
    if (v.error)
      return TaskOutcome{TaskOutcome::Kind::failed, v.job + ": verify failed " + *v.error};
    return TaskOutcome{};
  });
  return results;
}

// A job whose recorded state is another table's (job_identity.h): repairing would re-run
// batches on the strength of another table's cursor, so --repair is refused; a plain verify
// reads only, and says so.
void check_recorded(pqxx::connection& conn, const JobsFile& file,
                    const std::vector<VerifyTarget>& targets, VerifyMode mode) {
  std::vector<ResolvedJob> jobs;
  for (const auto& t : targets) jobs.push_back(t.job);
  const StateSchema schema(file.state_schema);
  if (mode == VerifyMode::repair) {
    check_identities(conn, schema, file, jobs);
    return;
  }
  try {
    check_identities(conn, schema, file, jobs);
  } catch (const PreflightError& e) {
    for (const auto& problem : e.problems())
      spdlog::warn("{}; its cursor limits what is verified", problem);
  }
}

const char* verify_plural(long long n) {
  return n == 1 ? "" : "s";
}

}  // namespace

void print_verification(std::ostream& out, const Verification& v, VerifyMode mode) {
  // Keys and errors come from the data and the server: on one line each (terminal_text.h).
  for (const auto& r : v.repairs)
    out << v.job << ": re-ran [" << terminal_text(r.range.first) << ", "
        << terminal_text(r.range.second) << "], " << r.left << " offending left\n";
  out << v.job << ": " << v.batches << " batches checked, " << v.offending << " offending";
  if (!v.first_keys.empty()) {
    out << " (first:";
    for (const auto& k : v.first_keys) out << " " << terminal_text(k);
    out << ")";
  }
  if (mode == VerifyMode::repair)
    out << ", " << v.repaired() << " of " << v.bad_ranges.size() << " batches repaired";
  out << ", " << v.rows << " rows in " << fixed(v.seconds, 1) << " s";
  // The error's first line: the rest (LINE, CONTEXT) is in the log.
  if (v.error) out << ", then failed " << terminal_text(v.error->substr(0, v.error->find('\n')));
  out << "\n";
}

void print_verify_total(std::ostream& out, const std::vector<Verification>& all, double seconds,
                        int threads) {
  long long batches = 0, rows = 0, offending = 0, failed = 0;
  for (const auto& v : all) {
    batches += v.batches;
    rows += v.rows;
    offending += v.offending;
    failed += v.error.has_value();
  }
  out << all.size() << " job" << verify_plural((long long)all.size()) << " verified in "
      << fixed(seconds, 1) << " s on " << threads << " thread" << verify_plural(threads) << ": "
      << batches << " batches, " << rows << " rows, " << offending << " offending";
  if (failed > 0) out << ", " << failed << " failed";
  out << "\n";
}

int verify_command(const VerifyOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  const std::vector<std::string> names = verified_jobs(file, options);
  auto conn = connect(options.dsn);
  const std::vector<VerifyTarget> targets = verify_targets(*conn, file, names);
  check_recorded(*conn, file, targets, options.mode);
  // Held until the end, on this connection: no runner works on a job being repaired.
  std::vector<std::unique_ptr<JobClaim>> claims;
  if (options.mode == VerifyMode::repair)
    for (const auto& t : targets)
      claims.push_back(
          std::make_unique<JobClaim>(*conn, StateSchema(file.state_schema), t.job.name, t.slices));
  const int threads = std::max(
      1, std::min(options.threads > 0 ? options.threads : file.default_threads, int(names.size())));
  spdlog::info("verifying {} job{} on {} thread{}", names.size(),
               verify_plural((long long)names.size()), threads, verify_plural(threads));
  const auto started = std::chrono::steady_clock::now();
  const std::vector<Verification> results = verify_in_parallel(file, targets, options, threads);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  bool wrong = false;
  for (const auto& v : results) {
    print_verification(out, v, options.mode);
    wrong = wrong || v.wrong(options.mode);
  }
  print_verify_total(out, results, seconds, threads);
  return wrong ? k_exit_job_failed : k_exit_ok;
}

}  // namespace pgxform
