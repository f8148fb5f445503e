#include "verify_command.h"

#include "batch_sql.h"
#include "catalog.h"
#include "database.h"
#include "exit_code.h"
#include "job_selection.h"
#include "state_locks.h"
#include "state_store.h"

namespace pgxform {

namespace {

constexpr std::size_t k_keys_shown = 10;

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

// The verify: query over the job's processed keys, batch by batch, in one read-only
// transaction. Only what the job has processed can be right or wrong: up to its cursor
// (`limit`; empty: nothing processed yet) unless it is done.
Verification check_job(pqxx::connection& conn, const Job& spec, const ResolvedJob& job,
                       const std::optional<std::string>& limit) {
  Verification v;
  v.job = job.name;
  if (limit && limit->empty()) return v;
  const UpperBound upper = limit ? UpperBound::hi_key : UpperBound::open;
  std::optional<std::string> cursor;
  pqxx::read_transaction tx(conn);
  while (true) {
    const BatchShape shape{Slicing::whole_job,
                           cursor ? CursorStart::after_last_key : CursorStart::none, upper};
    const pqxx::row b =
        tx.exec_params1(bounds_query(job, shape), cursor, job.batch_size, job.name, 0, limit);
    if (b[0].is_null()) break;
    const std::string lo = b[0].as<std::string>(), hi = b[1].as<std::string>();
    const pqxx::result r = tx.exec_params(spec.verify, lo, hi);
    ++v.batches;
    if (!r.empty()) {
      v.offending += static_cast<long long>(r.size());
      v.bad_ranges.emplace_back(lo, hi);
      for (const auto& row : r)
        if (v.first_keys.size() < k_keys_shown)
          v.first_keys.push_back(row[0].is_null() ? "NULL" : row[0].c_str());
    }
    cursor = hi;
  }
  return v;
}

// Re-runs the function over each bad range, the job claimed (a repair re-runs what was
// counted already: the function alone, no counters, no log), and counts what still offends.
void repair_job(pqxx::connection& conn, const StateSchema& schema, const Job& spec,
                const ResolvedJob& job, int slices, Verification& v) {
  const JobClaim claim(conn, schema, job.name, slices);
  for (const auto& range : v.bad_ranges) {
    pqxx::work tx(conn);
    tx.exec_params(call_query(job), range.first, range.second);
    const auto left =
        static_cast<long long>(tx.exec_params(spec.verify, range.first, range.second).size());
    tx.commit();
    v.repairs.push_back({range, left});
  }
}

}  // namespace

long long Verification::repaired() const {
  long long n = 0;
  for (const auto& r : repairs) n += r.left == 0;
  return n;
}

bool Verification::wrong(VerifyMode mode) const {
  return offending > 0 &&
         (mode == VerifyMode::check || repaired() < static_cast<long long>(bad_ranges.size()));
}

void print_verification(std::ostream& out, const Verification& v, VerifyMode mode) {
  for (const auto& r : v.repairs)
    out << v.job << ": re-ran [" << r.range.first << ", " << r.range.second << "], " << r.left
        << " offending left\n";
  out << v.job << ": " << v.batches << " batches checked, " << v.offending << " offending";
  if (!v.first_keys.empty()) {
    out << " (first:";
    for (const auto& k : v.first_keys) out << " " << k;
    out << ")";
  }
  if (mode == VerifyMode::repair)
    out << ", " << v.repaired() << " of " << v.bad_ranges.size() << " batches repaired";
  out << "\n";
}

int verify_command(const VerifyOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  const std::vector<std::string> names = verified_jobs(file, options);
  auto conn = connect(options.dsn);
  StateStore store(*conn, StateSchema(file.state_schema));
  bool wrong = false;
  for (const auto& job : resolve_jobs(*conn, file, names)) {
    const std::optional<JobStatus> state = store.job_status(job.name);
    std::optional<std::string> limit;
    if (state && state->status != "done" && state->slices == 1)
      limit = state->last_key.value_or("");
    Verification v = check_job(*conn, *file.find_job(job.name), job, limit);
    if (options.mode == VerifyMode::repair && !v.bad_ranges.empty())
      repair_job(*conn, store.schema(), *file.find_job(job.name), job, state ? state->slices : 1,
                 v);
    print_verification(out, v, options.mode);
    wrong = wrong || v.wrong(options.mode);
  }
  return wrong ? k_exit_job_failed : k_exit_ok;
}

}  // namespace pgxform
