#include "engine/script_migrator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "database/database.h"
#include "database/retry.h"
#include "state/state_locks.h"

namespace pgxform {

ScriptFailed::ScriptFailed(std::string script, std::string sqlstate, const std::string& message)
    : std::runtime_error(message), m_script(std::move(script)), m_sqlstate(std::move(sqlstate)) {}

namespace {

// The session lock that makes one runner at a time apply scripts (see the header), held from
// construction to destruction.
class ScriptLock {
 public:
  ScriptLock(pqxx::connection& conn, const StateSchema& schema, std::chrono::milliseconds timeout)
      : m_conn(conn), m_key(scripts_lock(schema)) {
    try {
      // SET LOCAL bounds only this wait: the scripts themselves run without lock_timeout. The
      // session lock outlives the transaction it was taken in.
      pqxx::work tx(m_conn);
      tx.exec_params("SELECT pg_catalog.set_config('lock_timeout', $1, true)",
                     std::to_string(timeout.count()) + "ms");
      session_lock(tx, m_key);
      tx.commit();
    } catch (const pqxx::sql_error& e) {
      if (e.sqlstate() != "55P03") throw;
      throw ScriptError({"another session is applying scripts to this database (state schema " +
                         schema.name + holder() + "): gave up waiting for its lock after " +
                         std::to_string(timeout.count()) + " ms; run again once it is done"});
    }
  }

  ~ScriptLock() {
    try {
      pqxx::nontransaction tx(m_conn);
      session_unlock(tx, m_key);
    } catch (const std::exception& e) {
      // The lock ends with the session anyway; a broken connection already released it.
      spdlog::debug("could not release the scripts lock: {}", e.what());
    }
  }

  ScriptLock(const ScriptLock&) = delete;
  ScriptLock& operator=(const ScriptLock&) = delete;

 private:
  // Who holds the lock, for the message.
  std::string holder() {
    try {
      pqxx::read_transaction tx(m_conn);
      const auto who = lock_holder(tx, m_key);
      if (!who) return "";
      return ", held by backend " + std::to_string(who->pid) +
             (who->application_name.empty() ? "" : " '" + who->application_name + "'");
    } catch (const std::exception&) {
      return "";
    }
  }

  pqxx::connection& m_conn;
  LockKey m_key;
};

// A V script whose version was applied as a script of another name. Not a changed script:
// repair would record it as applied, and it never ran.
std::string conflict_problem(const ScriptStatus& s, const StateSchema& schema) {
  return s.script.path + ": version " + s.script.version +
         " is applied already as another script, " + s.applied_as.value_or("?") + " (at " +
         s.applied_at.value_or("?") + "), in the state schema " + schema.name +
         ": this is a different script, which was never applied, and repair cannot apply it. "
         "When two migrations share the state schema, give this one a state schema of its own "
         "(state_schema: in its jobs file); when it is that script renamed, give it its old "
         "name back";
}

// Applied V scripts whose file changed, and V scripts whose version another script has: the
// problems that stop migrate.
std::vector<std::string> blocking_problems(const std::vector<ScriptStatus>& states,
                                           const StateSchema& schema) {
  std::vector<std::string> problems;
  for (const auto& s : states)
    if (s.state == ScriptState::changed)
      problems.push_back(s.script.path + ": changed since it was applied at " +
                         s.applied_at.value_or("?") + " (checksum " +
                         s.applied_checksum.value_or("?") + " applied, " + s.script.checksum +
                         " on disk): restore it, or run pgxform repair to accept the change");
    else if (s.state == ScriptState::conflict)
      problems.push_back(conflict_problem(s, schema));
  return problems;
}

void warn_missing(const std::vector<ScriptStatus>& states, const std::string& dir) {
  for (const auto& s : states)
    if (s.state == ScriptState::missing)
      spdlog::warn("{} was applied at {} but is not in {} any more", s.script.file,
                   s.applied_at.value_or("?"), dir);
}

std::vector<ScriptFile> to_apply(const std::vector<ScriptStatus>& states) {
  std::vector<ScriptFile> out;
  for (const auto& s : states)
    if (s.state == ScriptState::pending || s.state == ScriptState::outdated)
      out.push_back(s.script);
  return out;
}

}  // namespace

ScriptMigrator::ScriptMigrator(pqxx::connection& conn, std::string state_schema, std::string dir,
                               std::chrono::milliseconds lock_timeout)
    : m_conn(conn),
      m_schema(std::move(state_schema)),
      m_dir(std::move(dir)),
      m_lock_timeout(lock_timeout) {}

std::vector<AppliedScript> ScriptMigrator::read_history() {
  pqxx::read_transaction tx(m_conn);
  return read_script_history(tx, m_schema);
}

std::vector<ScriptStatus> ScriptMigrator::info() {
  return script_states(scan_scripts(m_dir), read_history());
}

std::vector<std::string> ScriptMigrator::migrate() {
  const auto files = scan_scripts(m_dir);
  ensure_state_schema(m_conn, m_schema);
  auto states = script_states(files, read_history());
  auto problems = blocking_problems(states, m_schema);
  if (!problems.empty()) throw ScriptError(problems);
  // The common case, everything applied, neither waits for nor takes the lock.
  if (to_apply(states).empty()) {
    warn_missing(states, m_dir);
    return {};
  }

  ScriptLock lock(m_conn, m_schema, m_lock_timeout);
  states = script_states(files, read_history());
  problems = blocking_problems(states, m_schema);
  if (!problems.empty()) throw ScriptError(problems);
  warn_missing(states, m_dir);
  std::string newest_applied;
  for (const auto& s : states)
    if (s.script.type == 'V' && s.state != ScriptState::pending &&
        compare_versions(s.script.version, newest_applied) > 0)
      newest_applied = s.script.version;
  const auto pending = to_apply(states);
  if (!pending.empty()) spdlog::info("applying {} script(s) from {}", pending.size(), m_dir);
  std::vector<std::string> applied;
  for (const auto& script : pending) {
    if (script.type == 'V' && !newest_applied.empty() &&
        compare_versions(script.version, newest_applied) < 0)
      spdlog::warn("{} is applied out of order: version {} is applied already", script.file,
                   newest_applied);
    apply(script);
    applied.push_back(script.file);
  }
  return applied;
}

void ScriptMigrator::apply(const ScriptFile& script) {
  // Read again: what is recorded is the checksum of exactly the text that ran.
  const std::string text = read_script(script.path);
  const std::string checksum = script_checksum(text);
  const Transaction transaction = script_transaction(text, script.path);
  check_script_text(text, script.path, transaction);
  AppliedScript applied;
  applied.script = script.file;
  applied.type = script.type;
  applied.version = script.version;
  applied.description = script.description;
  applied.checksum = checksum;

  double ms = 0;
  try {
    if (transaction == Transaction::own) {
      pqxx::work tx(m_conn);
      const auto start = std::chrono::steady_clock::now();
      tx.exec(text);
      ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
               .count();
      applied.duration_ms = ms;
      record_script(tx, m_schema, applied);
      tx.commit();
    } else {
      {
        pqxx::nontransaction tx(m_conn);
        const auto start = std::chrono::steady_clock::now();
        tx.exec(text);
        ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                 .count();
      }
      pqxx::work tx(m_conn);
      applied.duration_ms = ms;
      record_script(tx, m_schema, applied);
      tx.commit();
    }
  } catch (const pqxx::in_doubt_error& e) {
    throw ScriptFailed(script.file, "",
                       script.path + ": the connection was lost while committing it, so whether " +
                           "it was applied is unknown; run again, the history will tell (" +
                           redact(e.what()) + ")");
  } catch (const std::exception& e) {
    const Failure failure = classify(e);
    const std::string& sqlstate = failure.sqlstate;
    std::string message = script.path + " failed" +
                          (sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")") + ": " +
                          failure.message;
    if (transaction == Transaction::own) {
      message += "\nit was rolled back and is not recorded as applied";
      // active_sql_transaction: a statement such as CREATE INDEX CONCURRENTLY.
      if (sqlstate == "25001")
        message +=
            "; a statement that cannot run in a transaction needs a script of its own "
            "whose first line is '-- pgxform: no-transaction'";
    } else {
      message +=
          "\nit ran outside a transaction: what its statements did before the error "
          "stays, and it is not recorded as applied";
      if (sqlstate == "25001")
        message +=
            "; PostgreSQL runs a script of several statements as one transaction, so "
            "give each such statement a script of its own";
    }
    throw ScriptFailed(script.file, sqlstate, message);
  }
  spdlog::info("applied {} in {} ms", script.file, std::llround(ms));
}

RepairResult ScriptMigrator::repair() {
  const auto files = scan_scripts(m_dir);
  ensure_state_schema(m_conn, m_schema);
  ScriptLock lock(m_conn, m_schema, m_lock_timeout);
  const auto history = read_history();
  // A script whose version another script has is not a changed one: nothing to accept.
  std::vector<std::string> conflicts;
  for (const auto& s : script_states(files, history))
    if (s.state == ScriptState::conflict) conflicts.push_back(conflict_problem(s, m_schema));
  if (!conflicts.empty()) throw ScriptError(conflicts);
  RepairResult result;
  pqxx::work tx(m_conn);
  for (const auto& h : history) {
    const auto file = std::find_if(files.begin(), files.end(), [&h](const ScriptFile& f) {
      return f.type == h.type &&
             (h.type == 'V' ? compare_versions(f.version, h.version) == 0 : f.file == h.script);
    });
    if (file == files.end()) {
      result.missing.push_back(h.script);
      spdlog::warn("{} is in the history but not in {}; its row is kept", h.script, m_dir);
      continue;
    }
    // A changed R script is not repaired: migrate applies it again.
    if (h.type != 'V' || file->checksum == h.checksum) continue;
    update_script_checksum(tx, m_schema, h.script, file->checksum);
    result.updated.push_back(file->file);
    spdlog::info("repaired {}: checksum {} recorded (was {})", file->file, file->checksum,
                 h.checksum);
  }
  tx.commit();
  return result;
}

}  // namespace pgxform
