#include "commands/retry_failed_command.h"

#include <memory>

#include "base/exit_code.h"
#include "database/database.h"
#include "database/retry.h"
#include "engine/batch_sql.h"
#include "engine/change_drain.h"
#include "output/terminal_text.h"
#include "plan/job_selection.h"
#include "state/batch_log.h"
#include "state/failed_ranges.h"
#include "state/job_identity.h"
#include "state/state_locks.h"
#include "state/state_store.h"

namespace pgxform {

namespace {

struct JobRanges {
  const ResolvedJob* job;
  std::vector<FailedRange> ranges;
};

// The unresolved ranges of each job, every such job claimed.
std::vector<JobRanges> claim_jobs(StateStore& store, const std::vector<ResolvedJob>& jobs,
                                  std::vector<std::unique_ptr<JobClaim>>& claims) {
  std::vector<JobRanges> work;
  for (const auto& job : jobs) {
    std::vector<FailedRange> ranges;
    {
      pqxx::read_transaction tx(store.conn());
      ranges = unresolved_ranges(tx, store.schema(), job.name);
    }
    if (ranges.empty()) continue;
    const auto state = store.job_status(job.name);
    claims.push_back(std::make_unique<JobClaim>(store.conn(), store.schema(), job.name,
                                                state ? state->slices : 1));
    work.push_back({&job, std::move(ranges)});
  }
  return work;
}

// One range again, with its batch_log row and its resolution, in one transaction. Returns the
// rows it processed; none when another session works on it, or resolved it meanwhile.
std::optional<long long> redo(StateStore& store, const ResolvedJob& job, const FailedRange& range) {
  pqxx::work tx(store.conn());
  if (!take_range(tx, store.schema(), range.id)) return std::nullopt;
  if (range.catch_up) {
    // A key whose refresh failed in catch-up: refreshed again, as catch-up would.
    const std::optional<long long> keys = refresh_set_aside_key(tx, store.schema(), job, range.id);
    tx.commit();
    return keys;
  }
  const pqxx::result plan = tx.exec_params(
      range_sql(job, store.schema(), slicing_of(job), CursorMove::stay),
      std::optional<std::string>(), range.first_key, job.name, range.slice, range.last_key);
  const pqxx::result logged = log_batch(tx, store.schema(), job.name, plan);
  if (logged.empty() || logged[0]["logged"].as<long long>() != 1)
    throw std::runtime_error("job '" + job.name + "' has no state row for slice " +
                             std::to_string(range.slice));
  resolve_range(tx, store.schema(), range.id);
  tx.commit();
  return logged[0]["rows"].as<long long>();
}

}  // namespace

int retry_failed_command(const RetryFailedOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  auto conn = connect(options.dsn);
  const auto jobs = resolve_jobs(*conn, file, options.jobs);
  StateStore store(*conn, StateSchema(file.state_schema));
  if (store.version() == 0) {
    out << "nothing recorded yet\n";
    return k_exit_ok;
  }
  // A job whose recorded state is another table's has no ranges of this one to retry.
  check_identities(*conn, store.schema(), file, jobs);
  store.ensure_schema();
  // Every job is claimed before anything is written, so that a job a runner holds (whose
  // function may be another version) stops the command first.
  std::vector<std::unique_ptr<JobClaim>> claims;
  const std::vector<JobRanges> work = claim_jobs(store, jobs, claims);
  int resolved = 0, failing = 0;
  for (const auto& [job, ranges] : work)
    for (const auto& range : ranges) {
      const std::string where = job->name + ": [" + terminal_text(range.first_key) + ", " +
                                terminal_text(range.last_key) + "] ";
      try {
        const auto rows = redo(store, *job, range);
        if (!rows) continue;
        ++resolved;
        out << where << "resolved, " << *rows << " rows\n";
      } catch (const std::exception& e) {
        const Failure failure = classify(e);
        if (failure.kind == FailureKind::connection_lost) throw;
        ++failing;
        pqxx::work tx(*conn);
        record_retry_failure(tx, store.schema(), range.id, failure);
        tx.commit();
        out << where << "still failing"
            << (failure.sqlstate.empty() ? "" : " (SQLSTATE " + failure.sqlstate + ")") << ": "
            << terminal_text(failure.message, Lines::indented) << "\n";
      }
    }
  // A job whose keys set aside by catch-up are all refreshed now loses its catch-up error.
  for (const auto& [job, ranges] : work) store.clear_catch_up_error(job->name);
  out << resolved << " range(s) resolved, " << failing << " still failing\n";
  return failing ? k_exit_job_failed : k_exit_ok;
}

}  // namespace pgxform
