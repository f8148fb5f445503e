#include "job_commands.h"

#include <spdlog/spdlog.h>

#include <memory>

#include "batch_sql.h"
#include "catalog.h"
#include "database.h"
#include "exit_code.h"
#include "jobs_file.h"
#include "retry.h"
#include "state_store.h"

namespace pgxform {

namespace {

// The jobs named (all batched jobs when none), resolved against the catalog.
std::vector<ResolvedJob> resolve(pqxx::connection& conn, const JobsFile& file,
                                 const std::vector<std::string>& names) {
  for (const auto& name : names)
    if (!file.find_job(name)) throw PreflightError({file.path + ": no job named '" + name + "'"});
  const Preflight preflight = check_catalog(conn, file, names);
  std::vector<ResolvedJob> jobs;
  for (const auto& list : file.lists)
    for (const auto& job : list.jobs)
      if (auto it = preflight.jobs.find(job.name); it != preflight.jobs.end())
        jobs.push_back(it->second);
  return jobs;
}

std::string cast(const std::string& param, const ResolvedJob& job) {
  return "(" + param + "::text)::" + job.key_type;
}

// Calls the function over [$1, $2] and logs the batch, without moving any cursor ($3: the job).
std::string rerun_range_sql(const ResolvedJob& job, const std::string& state) {
  return "WITH r AS MATERIALIZED (SELECT (SELECT count(*) FROM " + job.table_sql + " t WHERE t." +
         job.key_sql + " BETWEEN " + cast("$1", job) + " AND " + cast("$2", job) + ") AS rows, " +
         job.function_sql + "(" + cast("$1", job) + ", " + cast("$2", job) +
         ")::text AS result),"
         " j AS (UPDATE " +
         state +
         ".job_state j SET rows_done = j.rows_done + r.rows, batches_done = j.batches_done + 1,"
         " updated_at = clock_timestamp() FROM r WHERE j.job = $3"
         " RETURNING j.batches_done, j.fn_version)"
         " INSERT INTO " +
         state +
         ".batch_log (job, batch_no, first_key, last_key, rows, rows_written, started_at,"
         " duration_ms, fn_version) SELECT $3, j.batches_done, $1, $2, r.rows,"
         " NULLIF(r.result, '')::bigint, statement_timestamp(),"
         " 1000 * extract(epoch FROM clock_timestamp() - statement_timestamp()), j.fn_version"
         " FROM r, j RETURNING rows";
}

// Holds the advisory locks of every task of a job for the life of the object, or throws.
class JobLock {
 public:
  JobLock(pqxx::connection& conn, const std::string& schema, const std::string& job, int slices)
      : m_conn(conn), m_schema(schema), m_job(job) {
    pqxx::nontransaction tx(conn);
    for (int s = 0; s < std::max(1, slices); ++s) {
      const std::string task = TaskId{job, s}.text();
      if (!tx.exec_params1("SELECT pg_try_advisory_lock(hashtext($1), hashtext($2))", schema,
                           task)[0]
               .as<bool>())
        throw PreflightError({"job '" + job +
                              "' is held by a running pgxform (see pgxform status); "
                              "stop it first"});
      m_tasks.push_back(task);
    }
  }
  ~JobLock() {
    try {
      pqxx::nontransaction tx(m_conn);
      for (const auto& task : m_tasks)
        tx.exec_params("SELECT pg_advisory_unlock(hashtext($1), hashtext($2))", m_schema, task);
    } catch (const std::exception&) {
      // The session ends soon, and its locks with it.
    }
  }

 private:
  pqxx::connection& m_conn;
  std::string m_schema;
  std::string m_job;
  std::vector<std::string> m_tasks;
};

// The job's slices as job_state records them; none when the job was never registered.
std::optional<int> recorded_slices(pqxx::connection& conn, const std::string& state,
                                   const std::string& job) {
  pqxx::read_transaction tx(conn);
  const auto r = tx.exec_params("SELECT slices FROM " + state + ".job_state WHERE job = $1", job);
  if (r.empty()) return std::nullopt;
  return r[0][0].as<int>();
}

}  // namespace

int retry_failed_command(const JobCommandOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  auto conn = connect(options.dsn);
  const auto jobs = resolve(*conn, file, options.jobs);
  StateStore store(*conn, file.state_schema);
  if (store.schema_version() == 0) {
    out << "nothing recorded yet\n";
    return k_exit_ok;
  }
  store.ensure_schema();
  const std::string& state = store.schema_sql();
  // Every job with ranges to retry is claimed first, so that a job held by a runner (whose
  // function may be another version) stops the command before it writes anything.
  std::vector<std::pair<const ResolvedJob*, pqxx::result>> work;
  std::vector<std::unique_ptr<JobLock>> locks;
  for (const auto& job : jobs) {
    pqxx::result ranges;
    {
      pqxx::read_transaction tx(*conn);
      ranges =
          tx.exec_params("SELECT id, first_key, last_key FROM " + state +
                             ".failed_batches WHERE job = $1 AND resolved_at IS NULL ORDER BY id",
                         job.name);
    }
    if (ranges.empty()) continue;
    locks.push_back(std::make_unique<JobLock>(*conn, file.state_schema, job.name,
                                              recorded_slices(*conn, state, job.name).value_or(1)));
    work.emplace_back(&job, ranges);
  }
  int resolved = 0, failing = 0;
  for (const auto& [job_ptr, ranges] : work) {
    const ResolvedJob& job = *job_ptr;
    for (const auto& range : ranges) {
      const long long id = range[0].as<long long>();
      const std::string first = range[1].as<std::string>(), last = range[2].as<std::string>();
      try {
        pqxx::work tx(*conn);
        // SKIP LOCKED: a range that another retry-failed is working on is its business.
        if (tx.exec_params("SELECT 1 FROM " + state +
                               ".failed_batches WHERE id = $1 AND resolved_at IS NULL"
                               " FOR UPDATE SKIP LOCKED",
                           id)
                .empty())
          continue;
        const auto rows =
            tx.exec_params1(rerun_range_sql(job, state), first, last, job.name)[0].as<long long>();
        tx.exec_params("UPDATE " + state +
                           ".failed_batches SET resolved_at = now(), attempts = attempts + 1"
                           " WHERE id = $1",
                       id);
        tx.commit();
        ++resolved;
        out << job.name << ": [" << first << ", " << last << "] resolved, " << rows << " rows\n";
      } catch (const std::exception& e) {
        const Failure failure = classify(e);
        if (failure.kind == FailureKind::connection_lost) throw;
        ++failing;
        pqxx::work tx(*conn);
        tx.exec_params(
            "UPDATE " + state +
                ".failed_batches SET attempts = attempts + 1, error = $2,"
                " sqlstate = $3 WHERE id = $1",
            id, failure.message,
            failure.sqlstate.empty() ? std::nullopt : std::optional<std::string>(failure.sqlstate));
        tx.commit();
        out << job.name << ": [" << first << ", " << last << "] still failing"
            << (failure.sqlstate.empty() ? "" : " (SQLSTATE " + failure.sqlstate + ")") << ": "
            << failure.message << "\n";
      }
    }
  }
  out << resolved << " range(s) resolved, " << failing << " still failing\n";
  return failing ? k_exit_job_failed : k_exit_ok;
}

int reset_command(const JobCommandOptions& options, const std::optional<std::string>& to_key,
                  std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  if (options.jobs.size() != 1)
    throw PreflightError({"reset takes exactly one job (pgxform reset JOB [--to KEY])"});
  const std::string& name = options.jobs.front();
  const Job* job = file.find_job(name);
  if (!job) throw PreflightError({file.path + ": no job named '" + name + "'"});
  auto conn = connect(options.dsn);
  StateStore store(*conn, file.state_schema);
  if (store.schema_version() == 0) {
    out << name << ": nothing recorded yet\n";
    return k_exit_ok;
  }
  store.ensure_schema();
  const std::string& state = store.schema_sql();
  const std::optional<int> recorded = recorded_slices(*conn, state, name);
  if (!recorded) {
    out << name << ": nothing recorded yet\n";
    return k_exit_ok;
  }
  const int slices = *recorded;
  if (to_key && (job->is_step() || slices > 1))
    throw PreflightError({"reset --to works on a job without slices; reset " + name +
                          " without --to to start it again"});
  const std::optional<ResolvedJob> resolved =
      to_key ? std::optional<ResolvedJob>(resolve(*conn, file, {name}).front()) : std::nullopt;
  JobLock lock(*conn, file.state_schema, name, slices);
  pqxx::work tx(*conn);
  if (to_key) {
    try {
      pqxx::subtransaction check(tx, "key");
      check.exec_params("SELECT " + cast("$1", *resolved), *to_key);
      check.commit();
    } catch (const pqxx::sql_error& e) {
      throw PreflightError({"'" + *to_key + "' is not a valid " + resolved->key_type + " key for " +
                            name + " (SQLSTATE " + e.sqlstate() + ")"});
    }
    tx.exec_params("UPDATE " + state +
                       ".job_state SET last_key = $2, status = 'pending', finished_at = NULL,"
                       " updated_at = now(), error = NULL, sqlstate = NULL, error_first_key = NULL,"
                       " error_last_key = NULL WHERE job = $1",
                   name, *to_key);
    tx.exec_params("DELETE FROM " + state +
                       ".failed_batches WHERE job = $1 AND resolved_at IS NULL" + " AND " +
                       cast("first_key", *resolved) + " > " + cast("$2", *resolved),
                   name, *to_key);
    tx.commit();
    out << name << ": the next run continues after key " << *to_key << "\n";
    return k_exit_ok;
  }
  tx.exec_params("DELETE FROM " + state + ".batch_log WHERE job = $1", name);
  tx.exec_params("DELETE FROM " + state + ".job_slice WHERE job = $1", name);
  tx.exec_params("DELETE FROM " + state + ".failed_batches WHERE job = $1 AND resolved_at IS NULL",
                 name);
  tx.exec_params("UPDATE " + state +
                     ".job_state SET last_key = NULL, rows_done = 0, batches_done = 0, slices = 1,"
                     " fn_version = NULL,"
                     " status = 'pending', started_at = NULL, finished_at = NULL,"
                     " updated_at = now(), error = NULL, sqlstate = NULL, error_first_key = NULL,"
                     " error_last_key = NULL WHERE job = $1",
                 name);
  tx.commit();
  out << name << ": reset; the next run starts it from its first key\n";
  return k_exit_ok;
}

int verify_command(const JobCommandOptions& options, VerifyMode mode, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  std::vector<std::string> names = options.jobs;
  for (const auto& name : names) {
    const Job* job = file.find_job(name);
    if (!job) throw PreflightError({file.path + ": no job named '" + name + "'"});
    if (job->verify.empty())
      throw PreflightError({file.path + ": job '" + name + "' has no verify: query"});
  }
  if (names.empty())
    for (const auto& list : file.lists)
      for (const auto& job : list.jobs)
        if (!job.verify.empty()) names.push_back(job.name);
  if (names.empty()) throw PreflightError({file.path + ": no job has a verify: query"});
  if (mode == VerifyMode::repair)
    for (const auto& name : names)
      if (!file.find_job(name)->idempotent)
        throw PreflightError({"verify --repair re-runs batches, and job '" + name +
                              "' is not marked idempotent: true; repair it by hand, or mark it"});
  auto conn = connect(options.dsn);
  StateStore store(*conn, file.state_schema);
  const auto jobs = resolve(*conn, file, names);
  const bool have_state = store.schema_version() > 0;
  bool wrong = false;
  for (const auto& job : jobs) {
    const Job& spec = *file.find_job(job.name);
    // Only what the job has processed can be right or wrong: up to its cursor unless done.
    std::optional<std::string> limit;
    if (have_state) {
      pqxx::read_transaction tx(*conn);
      const auto r = tx.exec_params("SELECT status, last_key, slices FROM " + store.schema_sql() +
                                        ".job_state WHERE job = $1",
                                    job.name);
      if (!r.empty() && r[0][0].as<std::string>() != "done" && r[0][2].as<int>() == 1)
        limit = r[0][1].is_null() ? std::optional<std::string>("") : r[0][1].as<std::string>();
    }
    long long batches = 0, offending = 0, repaired = 0;
    std::vector<std::string> first_keys;
    std::vector<std::pair<std::string, std::string>> bad_ranges;
    std::optional<std::string> cursor;
    const UpperBound upper = limit ? UpperBound::hi_key : UpperBound::open;
    const BatchShape first{Slicing::whole_job, CursorStart::none, upper};
    const BatchShape next{Slicing::whole_job, CursorStart::after_last_key, upper};
    while (!(limit && limit->empty())) {
      pqxx::read_transaction tx(*conn);
      const pqxx::row b = tx.exec_params1(bounds_query(job, cursor ? next : first), cursor,
                                          job.batch_size, job.name, 0, limit);
      if (b[0].is_null()) break;
      const std::string lo = b[0].as<std::string>(), hi = b[1].as<std::string>();
      const pqxx::result r = tx.exec_params(spec.verify, lo, hi);
      ++batches;
      if (!r.empty()) {
        offending += static_cast<long long>(r.size());
        bad_ranges.emplace_back(lo, hi);
        for (const auto& row : r)
          if (first_keys.size() < 10)
            first_keys.push_back(row[0].is_null() ? "NULL" : row[0].c_str());
      }
      cursor = hi;
    }
    if (mode == VerifyMode::repair && !bad_ranges.empty()) {
      // Not while a runner works on the job: a repair re-runs its function too.
      std::optional<int> slices;
      if (have_state) slices = recorded_slices(*conn, store.schema_sql(), job.name);
      JobLock lock(*conn, file.state_schema, job.name, slices.value_or(1));
      for (const auto& [lo, hi] : bad_ranges) {
        pqxx::work tx(*conn);
        // A repair re-runs what was counted already: the function alone, no counters, no log.
        tx.exec_params("SELECT " + job.function_sql + "(" + cast("$1", job) + ", " +
                           cast("$2", job) + ")::text",
                       lo, hi);
        const long long left = static_cast<long long>(tx.exec_params(spec.verify, lo, hi).size());
        tx.commit();
        out << job.name << ": re-ran [" << lo << ", " << hi << "], " << left << " offending left\n";
        repaired += left == 0;
      }
    }
    out << job.name << ": " << batches << " batches checked, " << offending << " offending";
    if (!first_keys.empty()) {
      out << " (first:";
      for (const auto& k : first_keys) out << " " << k;
      out << ")";
    }
    if (mode == VerifyMode::repair)
      out << ", " << repaired << " of " << bad_ranges.size() << " batches repaired";
    out << "\n";
    if (offending > 0 &&
        (mode == VerifyMode::check || repaired < static_cast<long long>(bad_ranges.size())))
      wrong = true;
  }
  return wrong ? k_exit_job_failed : k_exit_ok;
}

}  // namespace pgxform
