#include "state/state_locks.h"

#include "base/errors.h"
#include "base/sql_text.h"
#include "database/database.h"

namespace pgxform {

namespace {

// @function@: one of PostgreSQL's advisory-lock functions.
void call(pqxx::transaction_base& tx, const char* function, const LockKey& key) {
  tx.exec_params(fill_sql("SELECT @function@(pg_catalog.hashtext($1), pg_catalog.hashtext($2))",
                          {{"@function@", function}}),
                 key.space, key.name);
}

}  // namespace

// A slice's lock is named by its job and number joined by the unit separator (U+001F), which
// no job name may hold (text_check.h): "a#1" as a job's name can never meet slice 1 of "a".
constexpr char k_slice_separator = '\x1f';

LockKey task_lock(const StateSchema& schema, const TaskId& task) {
  return {schema.name,
          task.slice == 0 ? task.job : task.job + k_slice_separator + std::to_string(task.slice)};
}

LockKey setup_lock(const StateSchema& schema) {
  return {"pgxform ddl", schema.name};
}

LockKey catch_up_lock(const StateSchema& schema, const std::string& job) {
  return {"pgxform catch-up " + schema.name, job};
}

LockKey scripts_lock(const StateSchema& schema) {
  return {"pgxform scripts", schema.name};
}

bool try_session_lock(pqxx::transaction_base& tx, const LockKey& key) {
  return tx
      .exec_params1(
          "SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext($1), "
          "pg_catalog.hashtext($2))",
          key.space, key.name)[0]
      .as<bool>();
}

void session_lock(pqxx::transaction_base& tx, const LockKey& key) {
  call(tx, "pg_catalog.pg_advisory_lock", key);
}

void session_unlock(pqxx::transaction_base& tx, const LockKey& key) {
  call(tx, "pg_catalog.pg_advisory_unlock", key);
}

void transaction_lock(pqxx::transaction_base& tx, const LockKey& key) {
  call(tx, "pg_catalog.pg_advisory_xact_lock", key);
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
    SELECT a.pid, coalesce(a.application_name, '')
    FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
    WHERE @held@)";
  const pqxx::result r =
      tx.exec_params(fill_sql(k_sql, {{"@held@", lock_held_sql("$1", "$2")}}), key.space, key.name);
  if (r.empty()) return std::nullopt;
  return LockHolder{r[0][0].as<int>(), r[0][1].as<std::string>()};
}

std::string holder_name(const LockHolder& holder) {
  const std::string& app = holder.application_name;
  if (app.compare(0, k_application_prefix.size(), k_application_prefix) == 0)
    return app.substr(k_application_prefix.size());
  return "backend " + std::to_string(holder.pid) + (app.empty() ? "" : " '" + app + "'");
}

JobClaim::JobClaim(pqxx::connection& conn, const StateSchema& schema, const std::string& job,
                   int slices)
    : m_conn(conn) {
  pqxx::nontransaction tx(conn);
  for (int s = 0; s < std::max(1, slices); ++s) {
    const LockKey key = task_lock(schema, TaskId{job, s});
    if (!try_session_lock(tx, key)) {
      for (const auto& held : m_held) session_unlock(tx, held);
      throw JobHeldError(job);
    }
    m_held.push_back(key);
  }
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
