#include "state_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "database.h"
#include "state_sql.h"

namespace pgxform {

namespace {

// The lock that serialises creating and upgrading the state schema, across runners.
const char* const k_ddl_lock =
    "SELECT pg_advisory_xact_lock(hashtext('pgxform ddl'), hashtext($1))";

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t pos = text.find(from); pos != std::string::npos;
       pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
  return text;
}

std::optional<std::string> opt(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::string>();
}

}  // namespace

StateStore::StateStore(pqxx::connection& conn, std::string schema)
    : m_conn(&conn), m_schema(std::move(schema)), m_schema_sql(quote_ident(m_schema)) {}

StateStore::StateStore(Session& session, std::string schema)
    : m_session(&session), m_schema(std::move(schema)), m_schema_sql(quote_ident(m_schema)) {}

int StateStore::schema_version() {
  pqxx::read_transaction tx(conn());
  if (tx.exec_params1("SELECT to_regclass($1) IS NULL", m_schema_sql + ".schema_version")[0]
          .as<bool>())
    return 0;
  return tx.exec("SELECT coalesce(max(version), 0) FROM " + m_schema_sql + ".schema_version")[0][0]
      .as<int>();
}

void StateStore::ensure_schema() {
  const auto& migrations = state_migrations();
  const int newest = migrations.empty() ? 0 : migrations.back().version;
  if (schema_version() == newest) return;  // the common case takes no lock
  pqxx::work tx(conn());
  tx.exec_params(k_ddl_lock, m_schema);
  tx.exec("CREATE SCHEMA IF NOT EXISTS " + m_schema_sql);
  tx.exec("CREATE TABLE IF NOT EXISTS " + m_schema_sql +
          ".schema_version (version integer PRIMARY KEY, name text NOT NULL,"
          " applied_at timestamptz NOT NULL DEFAULT now())");
  const int current =
      tx.exec("SELECT coalesce(max(version), 0) FROM " + m_schema_sql + ".schema_version")[0][0]
          .as<int>();
  if (current > newest)
    throw std::runtime_error("the state schema " + m_schema + " is at version " +
                             std::to_string(current) + ", newer than this pgxform knows (" +
                             std::to_string(newest) + "): use a newer pgxform");
  for (const auto& m : migrations) {
    if (m.version <= current) continue;
    tx.exec(replace_all(m.sql, "@schema@", m_schema_sql));
    tx.exec_params(
        "INSERT INTO " + m_schema_sql + ".schema_version (version, name) VALUES ($1, $2)",
        m.version, std::string(m.name));
  }
  tx.commit();
}

void StateStore::register_jobs(const JobsFile& file) {
  pqxx::work tx(conn());
  for (const auto& list : file.lists)
    for (const auto& job : list.jobs)
      tx.exec_params("INSERT INTO " + m_schema_sql +
                         ".job_state (job, list) VALUES ($1, $2)"
                         " ON CONFLICT (job) DO UPDATE SET list = EXCLUDED.list"
                         " WHERE job_state.list IS DISTINCT FROM EXCLUDED.list",
                     job.name, list.name);
  tx.commit();
}

std::set<std::string> StateStore::done_jobs() {
  std::set<std::string> out;
  if (schema_version() == 0) return out;
  pqxx::read_transaction tx(conn());
  for (const auto& row :
       tx.exec("SELECT job FROM " + m_schema_sql + ".job_state WHERE status = 'done'"))
    out.insert(row[0].as<std::string>());
  return out;
}

void StateStore::ensure_slices(const ResolvedJob& job) {
  pqxx::work tx(conn());
  tx.exec_params("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", m_schema,
                 job.name + "#slicing");
  const pqxx::row state = tx.exec_params1(
      "SELECT slices, batches_done, (SELECT count(*) FROM " + m_schema_sql +
          ".job_slice s WHERE s.job = j.job) FROM " + m_schema_sql + ".job_state j WHERE job = $1",
      job.name);
  const int stored = state[2].as<int>();
  const long long batches = state[1].as<long long>();
  if (stored == job.parallel || (job.parallel == 1 && stored == 0)) return;
  if (batches > 0) {
    tx.abort();
    check_slicing(job);  // throws: the job started with other slices
    return;
  }
  tx.exec_params("DELETE FROM " + m_schema_sql + ".job_slice WHERE job = $1", job.name);
  if (job.parallel == 1) {
    tx.exec_params("UPDATE " + m_schema_sql + ".job_state SET slices = 1 WHERE job = $1", job.name);
    tx.commit();
    return;
  }
  // K-1 boundaries, evenly spaced in the key's distribution: from the planner's histogram
  // when the table was analyzed, else from one ordered pass over the key.
  pqxx::result bounds =
      tx.exec_params("WITH h AS (SELECT (s.histogram_bounds::text)::" + job.key_type +
                         "[] AS b FROM pg_stats s WHERE s.schemaname = $1 AND s.tablename = $2"
                         " AND s.attname = $3 AND s.histogram_bounds IS NOT NULL LIMIT 1)"
                         " SELECT (b[1 + (i * (array_length(b, 1) - 1)) / $4])::text FROM h,"
                         " generate_series(1, $4 - 1) i ORDER BY i",
                     job.table_schema, job.table_name, job.key_name, job.parallel);
  if (bounds.empty())
    bounds = tx.exec_params(
        "SELECT unnest(percentile_disc(ARRAY(SELECT i::float8 / $1 FROM"
        " generate_series(1, $1 - 1) i)) WITHIN GROUP (ORDER BY " +
            job.key_sql + "))::text FROM " + job.table_sql,
        job.parallel);
  if (bounds.size() + 1 != size_t(job.parallel) ||
      std::any_of(bounds.begin(), bounds.end(),
                  [](const pqxx::row& r) { return r[0].is_null(); })) {
    // An empty table: slices are cut once it has rows. Nothing is stored until then.
    tx.commit();
    return;
  }
  for (int i = 0; i < job.parallel; ++i) {
    std::optional<std::string> lo, hi;
    if (i > 0) lo = bounds[i - 1][0].as<std::string>();
    if (i < job.parallel - 1) hi = bounds[i][0].as<std::string>();
    tx.exec_params(
        "INSERT INTO " + m_schema_sql +
            ".job_slice (job, slice, lo_key, hi_key, last_key) VALUES ($1, $2, $3, $4, $3)",
        job.name, i, lo, hi);
  }
  tx.exec_params("UPDATE " + m_schema_sql + ".job_state SET slices = $2 WHERE job = $1", job.name,
                 job.parallel);
  tx.commit();
}

bool StateStore::try_claim(const TaskId& task, const std::string& list) {
  pqxx::work tx(conn());
  // A session-level lock: it outlives this transaction and is held while the task runs.
  if (!tx.exec_params1("SELECT pg_try_advisory_lock(hashtext($1), hashtext($2))", m_schema,
                       task.text())[0]
           .as<bool>())
    return false;
  tx.exec_params("UPDATE " + m_schema_sql +
                     ".job_state SET runner = $2, list = $3,"
                     " started_at = coalesce(started_at, now()), updated_at = now(),"
                     " status = CASE WHEN status IN ('pending', 'failed') THEN 'running'"
                     " ELSE status END WHERE job = $1",
                 task.job, runner_identity(), list);
  tx.exec_params("UPDATE " + m_schema_sql +
                     ".job_slice SET runner = $3, updated_at = now(),"
                     " status = CASE WHEN status IN ('pending', 'failed') THEN 'running'"
                     " ELSE status END WHERE job = $1 AND slice = $2",
                 task.job, task.slice, runner_identity());
  tx.commit();
  return true;
}

void StateStore::release(const TaskId& task) {
  pqxx::nontransaction tx(conn());
  tx.exec_params("SELECT pg_advisory_unlock(hashtext($1), hashtext($2))", m_schema, task.text());
}

void StateStore::check_slicing(const ResolvedJob& job) {
  if (schema_version() == 0) return;
  pqxx::read_transaction tx(conn());
  const pqxx::result r = tx.exec_params(
      "SELECT batches_done, (SELECT count(*) FROM " + m_schema_sql +
          ".job_slice s WHERE s.job = j.job) FROM " + m_schema_sql + ".job_state j WHERE job = $1",
      job.name);
  if (r.empty()) return;
  const int stored = r[0][1].as<int>();
  if (r[0][0].as<long long>() > 0 && std::max(stored, 1) != job.parallel)
    throw std::runtime_error("job '" + job.name + "': parallel changed from " +
                             std::to_string(std::max(stored, 1)) + " to " +
                             std::to_string(job.parallel) +
                             " after it started; restore it, or reset the job to start again");
}

std::vector<std::string> StateStore::changed_functions(
    const std::map<std::string, ResolvedJob>& jobs, const std::set<std::string>& accepted) {
  std::vector<std::string> problems;
  if (schema_version() < 4) return problems;
  pqxx::read_transaction tx(conn());
  for (const auto& [name, job] : jobs) {
    if (job.function_version.empty() || accepted.count(name)) continue;
    const pqxx::result r =
        tx.exec_params("SELECT fn_version FROM " + m_schema_sql +
                           ".job_state WHERE job = $1 AND status <> 'done' AND batches_done > 0"
                           " AND fn_version IS DISTINCT FROM $2 AND fn_version IS NOT NULL",
                       name, job.function_version);
    if (!r.empty())
      problems.push_back("job '" + name + "': function " + job.function_sql +
                         " changed since the job started (version " +
                         r[0][0].as<std::string>().substr(0, 12) + ", now " +
                         job.function_version.substr(0, 12) +
                         "); its batches would be split between two versions. Restore the "
                         "function, or run with --accept-changed " +
                         name + ", or `pgxform reset " + name + "` to start the job again");
  }
  return problems;
}

void StateStore::pin_function_versions(const std::map<std::string, ResolvedJob>& jobs) {
  pqxx::work tx(conn());
  for (const auto& [name, job] : jobs) {
    if (job.function_version.empty()) continue;
    const pqxx::result r = tx.exec_params(
        "UPDATE " + m_schema_sql +
            ".job_state j SET fn_version = $2 FROM (SELECT fn_version AS old FROM " + m_schema_sql +
            ".job_state WHERE job = $1 FOR UPDATE) o WHERE j.job = $1"
            " AND j.fn_version IS DISTINCT FROM $2 RETURNING o.old",
        name, job.function_version);
    if (!r.empty() && !r[0][0].is_null())
      spdlog::warn("job '{}': function version {} replaces {} from here on", name,
                   job.function_version.substr(0, 12), r[0][0].as<std::string>().substr(0, 12));
  }
  tx.commit();
}

std::optional<Cursor> StateStore::read_cursor(const TaskId& task, bool sliced) {
  pqxx::read_transaction tx(conn());
  const pqxx::result r =
      sliced ? tx.exec_params("SELECT last_key, hi_key, status FROM " + m_schema_sql +
                                  ".job_slice WHERE job = $1 AND slice = $2",
                              task.job, task.slice)
             : tx.exec_params("SELECT last_key, NULL, status FROM " + m_schema_sql +
                                  ".job_state WHERE job = $1",
                              task.job);
  if (r.empty()) return std::nullopt;
  return Cursor{opt(r[0][0]), opt(r[0][1]), r[0][2].as<std::string>()};
}

void StateStore::mark_done(const TaskId& task, bool sliced) {
  pqxx::work tx(conn());
  // Slices finishing at the same moment each see the other still running unless they take
  // turns: the job's row lock orders them, and the last one marks the job done.
  tx.exec_params("SELECT 1 FROM " + m_schema_sql + ".job_state WHERE job = $1 FOR UPDATE",
                 task.job);
  if (sliced)
    tx.exec_params("UPDATE " + m_schema_sql +
                       ".job_slice SET status = 'done', updated_at = now()"
                       " WHERE job = $1 AND slice = $2",
                   task.job, task.slice);
  tx.exec_params("UPDATE " + m_schema_sql +
                     ".job_state j SET status = 'done', updated_at = now(),"
                     " finished_at = CASE WHEN status = 'done' THEN finished_at ELSE now() END,"
                     " error = NULL, sqlstate = NULL, error_first_key = NULL, error_last_key = NULL"
                     " WHERE job = $1 AND NOT EXISTS (SELECT 1 FROM " +
                     m_schema_sql + ".job_slice s WHERE s.job = j.job AND s.status <> 'done')",
                 task.job);
  tx.commit();
}

void StateStore::mark_failed(const TaskId& task, bool sliced, const Failure& failure,
                             const std::optional<std::string>& first_key,
                             const std::optional<std::string>& last_key) {
  pqxx::work tx(conn());
  if (sliced)
    tx.exec_params("UPDATE " + m_schema_sql +
                       ".job_slice SET status = 'failed', updated_at = now()"
                       " WHERE job = $1 AND slice = $2",
                   task.job, task.slice);
  std::optional<std::string> sqlstate;
  if (!failure.sqlstate.empty()) sqlstate = failure.sqlstate;
  tx.exec_params("UPDATE " + m_schema_sql +
                     ".job_state SET status = 'failed', updated_at = now(), error = $2,"
                     " sqlstate = $3, error_first_key = $4, error_last_key = $5 WHERE job = $1",
                 task.job, failure.message, sqlstate, first_key, last_key);
  tx.commit();
}

void StateStore::mark_stopped(const TaskId& task, bool sliced) {
  pqxx::work tx(conn());
  if (sliced)
    tx.exec_params("UPDATE " + m_schema_sql +
                       ".job_slice SET status = 'pending', updated_at = now()"
                       " WHERE job = $1 AND slice = $2 AND status = 'running'",
                   task.job, task.slice);
  tx.exec_params("UPDATE " + m_schema_sql +
                     ".job_state SET status = 'pending', updated_at = now()"
                     " WHERE job = $1 AND status = 'running'",
                 task.job);
  tx.commit();
}

bool StateStore::run_step_once(const std::string& job, const std::string& sql) {
  pqxx::work tx(conn());
  const auto status =
      tx.exec_params1("SELECT status FROM " + m_schema_sql + ".job_state WHERE job = $1 FOR UPDATE",
                      job)[0]
          .as<std::string>();
  if (status == "done") return false;
  tx.exec(sql);
  tx.exec_params("UPDATE " + m_schema_sql +
                     ".job_state SET status = 'done', batches_done = batches_done + 1,"
                     " updated_at = now(), finished_at = now(), error = NULL, sqlstate = NULL,"
                     " error_first_key = NULL, error_last_key = NULL WHERE job = $1",
                 job);
  tx.commit();
  return true;
}

std::vector<JobStatus> StateStore::read_status() {
  std::vector<JobStatus> out;
  const int version = schema_version();
  if (version == 0) return out;
  const std::string set_aside =
      version >= 2 ? "(SELECT count(*) FROM " + m_schema_sql +
                         ".failed_batches f WHERE f.job = j.job AND f.resolved_at IS NULL)"
                   : "0";
  pqxx::read_transaction tx(conn());
  // The holder of a job is whoever holds one of its tasks' advisory locks now; pg_locks shows
  // the two int4 keys as unsigned oids.
  const pqxx::result rows = tx.exec_params(
      "SELECT j.job, j.list, j.status, j.last_key, j.rows_done, j.batches_done, j.slices,"
      " (SELECT count(*) FROM " +
          m_schema_sql +
          ".job_slice s WHERE s.job = j.job"
          "  AND s.status = 'done'),"
          " j.started_at::text, j.updated_at::text, j.finished_at::text, j.error, j.sqlstate,"
          " j.error_first_key, j.error_last_key,"
          " (SELECT string_agg(DISTINCT substr(a.application_name, 9), ', ')"
          "  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
          "  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2"
          "  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
          "  AND l.classid = (hashtext($1)::bigint & 4294967295)::oid"
          "  AND l.objid IN (SELECT (hashtext(j.job || CASE WHEN g = 0 THEN '' ELSE '#' || g END)"
          "   ::bigint & 4294967295)::oid FROM generate_series(0, j.slices - 1) g)), " +
          set_aside + " FROM " + m_schema_sql + ".job_state j",
      m_schema);
  for (const auto& r : rows) {
    JobStatus s;
    s.job = r[0].as<std::string>();
    s.list = r[1].as<std::string>();
    s.status = r[2].as<std::string>();
    s.last_key = opt(r[3]);
    s.rows_done = r[4].as<long long>();
    s.batches_done = r[5].as<long long>();
    s.slices = r[6].as<int>();
    s.slices_done = r[7].as<int>();
    s.started_at = opt(r[8]);
    s.updated_at = opt(r[9]);
    s.finished_at = opt(r[10]);
    s.error = opt(r[11]);
    s.sqlstate = opt(r[12]);
    s.error_first_key = opt(r[13]);
    s.error_last_key = opt(r[14]);
    s.runner = opt(r[15]);
    s.set_aside = r[16].as<long long>();
    out.push_back(s);
  }
  return out;
}

}  // namespace pgxform
