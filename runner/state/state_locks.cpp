#include "state/state_locks.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "base/errors.h"
#include "base/sql_text.h"
#include "database/database.h"
#include "database/retry.h"

namespace pgxform {

namespace {

// @function@: one of PostgreSQL's advisory-lock functions.
pqxx::row call(pqxx::transaction_base& tx, const char* function, const LockKey& key) {
  return tx.exec_params1(
      fill_sql("SELECT @function@(pg_catalog.hashtext($1), pg_catalog.hashtext($2))",
               {{"@function@", function}}),
      key.space, key.name);
}

// A lock as a message names it.
std::string lock_name(const LockKey& key) {
  if (key.space == "pgxform ddl") return "the setup lock of state schema " + key.name;
  if (key.space == "pgxform scripts") return "the scripts lock of state schema " + key.name;
  return "the advisory lock ('" + key.space + "', '" + key.name + "')";
}

// The holders of the tasks of a state schema: $1 its name, $2 the runners' application_name
// prefix. A task is a job without slices, or one slice of a job (job_slice).
const char* const k_task_holders_sql = R"(
WITH task AS (
  SELECT j.job, 0 AS slice, j.runner FROM @job_state@ j
  WHERE NOT EXISTS (SELECT 1 FROM @job_slice@ s WHERE s.job = j.job)
  UNION ALL
  SELECT s.job, s.slice, s.runner FROM @job_slice@ s)
SELECT t.job, t.slice, a.pid, coalesce(a.usename::text, ''), coalesce(a.application_name, ''),
       pg_catalog.host(a.client_addr), pg_catalog.date_trunc('second', a.backend_start)::text,
       a.state, pg_catalog.date_trunc('second', a.state_change)::text,
       t.runner IS NOT NULL AND a.application_name = $2 || t.runner,
       CASE WHEN a.state IN ('active', 'idle in transaction') THEN
         pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - a.xact_start)::float8 END,
       CASE WHEN a.wait_event IS NOT NULL THEN a.wait_event_type || ':' || a.wait_event END,
       pg_catalog.array_to_string(pg_catalog.pg_blocking_pids(a.pid), ',')
FROM task t
JOIN pg_catalog.pg_locks l ON @held@
JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
ORDER BY t.job, t.slice)";

}  // namespace

int recorded_slices(pqxx::transaction_base& tx, const StateSchema& schema, const std::string& job) {
  const std::string table = schema.table("job_slice");
  if (tx.exec_params1("SELECT pg_catalog.to_regclass($1) IS NULL", table)[0].as<bool>()) return 0;
  return tx
      .exec_params1(schema.fill("SELECT coalesce(pg_catalog.max(slice) + 1, 0) FROM @job_slice@ "
                                "WHERE job = $1"),
                    job)[0]
      .as<int>();
}

// A slice's lock is named by its job and number joined by the unit separator (U+001F), which
// no job name may hold (text_check.h): "a#1" as a job's name can never meet slice 1 of "a".
constexpr char k_slice_separator = '\x1f';

LockKey task_lock(const StateSchema& schema, const TaskId& task) {
  if (task.phase == Phase::catch_up) return catch_up_lock(schema, task.job);
  return {schema.name,
          task.slice == 0 ? task.job : task.job + k_slice_separator + std::to_string(task.slice)};
}

LockKey setup_lock(const StateSchema& schema) {
  return {"pgxform ddl", schema.name};
}

LockKey split_lock(const StateSchema& schema, const std::string& job) {
  return {"pgxform split " + schema.name, job};
}

LockKey claim_lock(const StateSchema& schema, const std::string& job) {
  return {"pgxform claim " + schema.name, job};
}

LockKey catch_up_lock(const StateSchema& schema, const std::string& job) {
  return {"pgxform catch-up " + schema.name, job};
}

LockKey scripts_lock(const StateSchema& schema) {
  return {"pgxform scripts", schema.name};
}

LockKey slot_lock(const StateSchema& schema) {
  return {"pgxform slot", schema.name};
}

bool try_session_lock(pqxx::transaction_base& tx, const LockKey& key) {
  return call(tx, "pg_catalog.pg_try_advisory_lock", key)[0].as<bool>();
}

void session_lock(pqxx::transaction_base& tx, const LockKey& key) {
  call(tx, "pg_catalog.pg_advisory_lock", key);
}

void session_unlock(pqxx::transaction_base& tx, const LockKey& key) {
  call(tx, "pg_catalog.pg_advisory_unlock", key);
}

bool try_transaction_lock_shared(pqxx::transaction_base& tx, const LockKey& key) {
  return call(tx, "pg_catalog.pg_try_advisory_xact_lock_shared", key)[0].as<bool>();
}

void transaction_lock(pqxx::transaction_base& tx, const LockKey& key) {
  if (call(tx, "pg_catalog.pg_try_advisory_xact_lock", key)[0].as<bool>()) return;
  // Another runner's setup takes a moment; any other session may hold it for ever.
  const std::optional<LockHolder> holder = lock_holder(tx, key);
  const std::string who = holder ? holder_name(*holder) : "another session";
  spdlog::info("waiting for {}, held by {}", lock_name(key), who);
  try {
    call(tx, "pg_catalog.pg_advisory_xact_lock", key);
  } catch (const pqxx::sql_error& e) {
    if (classify(e).sqlstate != "55P03") throw;
    throw LockWaitError("gave up waiting for " + lock_name(key) + ", held by " + who +
                        (holder ? " (backend " + std::to_string(holder->pid) + ")" : "") +
                        ": run again once it is done, or end that session");
  }
}

std::string lock_held_sql(const std::string& space, const std::string& name) {
  static const char* const k_sql = R"(
    l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
    AND l.database = (SELECT oid FROM pg_catalog.pg_database
                      WHERE datname = pg_catalog.current_database())
    AND l.classid = (pg_catalog.hashtext(@space@)::bigint & 4294967295)::oid
    AND l.objid = (pg_catalog.hashtext(@name@)::bigint & 4294967295)::oid)";
  return fill_sql(k_sql, {{"@space@", space}, {"@name@", name}});
}

std::string task_name_sql(const std::string& job, const std::string& slice) {
  return fill_sql(
      "(@job@ || CASE WHEN @slice@ = 0 THEN '' ELSE pg_catalog.chr(@separator@) || @slice@ END)",
      {{"@job@", job},
       {"@slice@", slice},
       {"@separator@", std::to_string(int(k_slice_separator))}});
}

std::optional<LockHolder> lock_holder(pqxx::transaction_base& tx, const LockKey& key) {
  static const char* const k_sql = R"(
    SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
           a.usename IS DISTINCT FROM current_user
    FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
    WHERE @held@)";
  const pqxx::result r =
      tx.exec_params(fill_sql(k_sql, {{"@held@", lock_held_sql("$1", "$2")}}), key.space, key.name);
  if (r.empty()) return std::nullopt;
  return LockHolder{r[0][0].as<int>(), r[0][1].as<std::string>(), r[0][2].as<std::string>(),
                    r[0][3].as<bool>()};
}

std::string holder_name(const LockHolder& holder) {
  const std::string& app = holder.application_name;
  const std::string role = holder.other_role ? ", role " + holder.role : "";
  if (app.compare(0, k_application_prefix.size(), k_application_prefix) == 0)
    return app.substr(k_application_prefix.size()) + role;
  return "backend " + std::to_string(holder.pid) + (app.empty() ? "" : " '" + app + "'") + role;
}

std::vector<TaskHolder> task_holders(pqxx::transaction_base& tx, const StateSchema& schema) {
  const std::string sql = fill_sql(
      k_task_holders_sql, {{"@job_state@", schema.table("job_state")},
                           {"@job_slice@", schema.table("job_slice")},
                           {"@held@", lock_held_sql("$1", task_name_sql("t.job", "t.slice"))}});
  const auto text = [](const pqxx::field& f) {
    return f.is_null() ? std::nullopt : std::optional<std::string>(f.as<std::string>());
  };
  std::vector<TaskHolder> out;
  for (const auto& r : tx.exec_params(sql, schema.name, k_application_prefix)) {
    TaskHolder h;
    h.job = r[0].as<std::string>();
    h.slice = r[1].as<int>();
    h.pid = r[2].as<int>();
    h.role = r[3].as<std::string>();
    h.application_name = r[4].as<std::string>();
    h.client_addr = text(r[5]);
    h.connected_at = text(r[6]);
    h.state = text(r[7]);
    h.state_since = text(r[8]);
    h.recorded = r[9].as<bool>();
    if (!r[10].is_null()) h.in_flight_s = r[10].as<double>();
    h.wait_event = text(r[11]);
    const std::string pids = r[12].is_null() ? "" : r[12].as<std::string>();
    for (std::size_t at = 0; at < pids.size();) {
      std::size_t next = pids.find(',', at);
      if (next == std::string::npos) next = pids.size();
      h.blocked_by.push_back(std::stoi(pids.substr(at, next - at)));
      at = next + 1;
    }
    out.push_back(std::move(h));
  }
  return out;
}

JobClaim::JobClaim(pqxx::connection& conn, const StateSchema& schema, const std::string& job,
                   int slices)
    : m_conn(conn) {
  pqxx::nontransaction tx(conn);
  const auto take = [&](const LockKey& key) {
    if (!try_session_lock(tx, key)) {
      for (const auto& held : m_held) session_unlock(tx, held);
      m_held.clear();
      throw JobHeldError(job);
    }
    m_held.push_back(key);
  };
  // First the claim lock: no split of the job commits from here on, and none is under way.
  take(claim_lock(schema, job));
  const int tasks = std::max({1, slices, recorded_slices(tx, schema, job)});
  for (int s = 0; s < tasks; ++s) take(task_lock(schema, TaskId{job, s}));
  take(catch_up_lock(schema, job));
}

JobClaim::~JobClaim() {
  try {
    pqxx::nontransaction tx(m_conn);
    for (const auto& key : m_held) session_unlock(tx, key);
  } catch (const std::exception&) {
    // The session ends soon, and its locks with it.
  }
}

}  // namespace pgxform
