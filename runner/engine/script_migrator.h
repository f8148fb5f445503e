// script_migrator: applies the scripts of script_files.h to the database, recording each in
// <state schema>.script_history (script_history.h).
//
// Transactions: each script is sent as ONE simple query (several statements allowed) and runs
// in its own transaction together with the insert of its history row: a script that fails
// mid-way is rolled back whole and not recorded; one whose COMMIT got no answer is settled by
// the history on the next run. A script whose first line is `-- pgxform: no-transaction` runs
// outside a transaction (CREATE INDEX CONCURRENTLY) and is recorded after it succeeded; when it
// fails, whatever its statements did before the failure stays. PostgreSQL runs a query string
// of several statements as one implicit transaction, so such a script holds one statement.
// Scripts run on the caller's connection, and a SET in a script lasts for that session: give
// the migrator a connection of its own.
//
// History: an applied V script is matched to its file by version, an R script by name. A V
// file whose version was applied under another name is a different script (a conflict: two
// migrations sharing one state schema, or a renamed file), never a changed one.
//
// migrate refuses to apply anything while an applied V script is changed (ScriptError naming
// every such file; repair() accepts the new content) or in conflict (repair refuses it too:
// accepting it would record as applied a script that never ran). Missing scripts only warn, and a
// pending V script older than the newest applied one is applied with a warning. Two runners never
// apply at once: migrate and repair hold the scripts lock (state_locks.h) while they work, a
// session lock because each script commits on its own. The wait for it is bounded by
// lock_timeout, after which migrate gives up with ScriptError ("another session is applying
// scripts ..."). The history is read again once the lock is held, since the other runner may
// have applied the scripts meanwhile. info only reads and writes nothing, not even the state
// schema: without a history table every script is pending.
#pragma once

#include <chrono>
#include <pqxx/pqxx>
#include <stdexcept>
#include <string>
#include <vector>

#include "plan/script_files.h"
#include "state/script_history.h"
#include "state/state_schema.h"

namespace pgxform {

// A script failed while it was applied. The scripts before it stay applied; it was rolled
// back and not recorded (unless it ran outside a transaction). The CLI exits 1.
class ScriptFailed : public std::runtime_error {
 public:
  ScriptFailed(std::string script, std::string sqlstate, const std::string& message);
  const std::string& script() const { return m_script; }
  const std::string& sqlstate() const { return m_sqlstate; }  // empty when the error had none

 private:
  std::string m_script;
  std::string m_sqlstate;
};

struct RepairResult {
  std::vector<std::string> updated;  // applied V scripts whose checksum was replaced
  std::vector<std::string> missing;  // in the history, not on disk; left as they are
};

class ScriptMigrator {
 public:
  ScriptMigrator(pqxx::connection& conn, std::string state_schema, std::string dir,
                 std::chrono::milliseconds lock_timeout = std::chrono::seconds(60));

  // Read-only.
  std::vector<ScriptStatus> info();
  // Applies pending V scripts, then new and outdated R scripts; returns the files applied.
  // Throws ScriptError (nothing applied) or ScriptFailed (the scripts before it stay applied).
  std::vector<std::string> migrate();
  // Accepts the on-disk content of changed V scripts as applied. Throws ScriptError.
  RepairResult repair();

 private:
  std::vector<AppliedScript> read_history();
  void apply(const ScriptFile& script);

  pqxx::connection& m_conn;
  StateSchema m_schema;
  std::string m_dir;
  std::chrono::milliseconds m_lock_timeout;
};

}  // namespace pgxform
