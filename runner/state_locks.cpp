#include "state_locks.h"

#include "errors.h"

namespace pgxform {

namespace {

void call(pqxx::transaction_base& tx, const char* function, const LockKey& key) {
  tx.exec_params(std::string("SELECT ") + function + "(hashtext($1), hashtext($2))", key.space,
                 key.name);
}

}  // namespace

LockKey task_lock(const StateSchema& schema, const TaskId& task) {
  return {schema.name, task.text()};
}

LockKey slicing_lock(const StateSchema& schema, const std::string& job) {
  return {schema.name, job + "#slicing"};
}

LockKey ddl_lock(const StateSchema& schema) {
  return {"pgxform ddl", schema.name};
}

LockKey scripts_lock(const StateSchema& schema) {
  return {"pgxform scripts", schema.name};
}

bool try_session_lock(pqxx::transaction_base& tx, const LockKey& key) {
  return tx
      .exec_params1("SELECT pg_try_advisory_lock(hashtext($1), hashtext($2))", key.space,
                    key.name)[0]
      .as<bool>();
}

void session_lock(pqxx::transaction_base& tx, const LockKey& key) {
  call(tx, "pg_advisory_lock", key);
}

void session_unlock(pqxx::transaction_base& tx, const LockKey& key) {
  call(tx, "pg_advisory_unlock", key);
}

void transaction_lock(pqxx::transaction_base& tx, const LockKey& key) {
  call(tx, "pg_advisory_xact_lock", key);
}

std::string lock_held_sql(const std::string& space, const std::string& name) {
  return "l.locktype = 'advisory' AND l.granted AND l.objsubid = 2"
         " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
         " AND l.classid = (hashtext(" +
         space + ")::bigint & 4294967295)::oid AND l.objid = (hashtext(" + name +
         ")::bigint & 4294967295)::oid";
}

std::string task_name_sql(const std::string& job, const std::string& slice) {
  return "(" + job + " || CASE WHEN " + slice + " = 0 THEN '' ELSE '#' || " + slice + " END)";
}

std::optional<LockHolder> lock_holder(pqxx::transaction_base& tx, const LockKey& key) {
  const pqxx::result r = tx.exec_params(
      "SELECT a.pid, coalesce(a.application_name, '') FROM pg_locks l"
      " JOIN pg_stat_activity a ON a.pid = l.pid WHERE " +
          lock_held_sql("$1", "$2"),
      key.space, key.name);
  if (r.empty()) return std::nullopt;
  return LockHolder{r[0][0].as<int>(), r[0][1].as<std::string>()};
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
