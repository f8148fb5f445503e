// script_migrator: versioned SQL scripts, Flyway-style — the schemas and transform functions
// that the jobs need, applied from a directory (the jobs file's `scripts_dir:`) before the run.
//
// Files. Only names of two shapes are scripts; every other file is ignored (legacy_data.sql):
//   V<version>__<description>.sql  applied once, in version order. A version is numbers joined
//                                  by `.` or `_`, compared number by number: 1.2 < 1.10, and
//                                  1 = 1.0 = 01. Two files with one version are an error.
//   R__<description>.sql           re-applied whenever its content changes, after every V
//                                  script, in file-name order.
// A name that starts like a script (`V` or `R`, then a digit or `_`) but is not one is an
// error rather than silently ignored, and so is a directory entry that cannot be read. The
// directory is not searched recursively; a directory that does not exist holds no scripts.
//
// Checksum: FNV-1a 64 of the text with every line ending (CRLF, LF, CR) read as LF, trailing
// whitespace of each line, trailing blank lines and a UTF-8 byte order mark removed; 16 hex
// digits. So an editor that changes line endings or trims spaces changes nothing.
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
// History: <state schema>.script_history (script_history.h), one row per applied script. An
// applied V script is matched to its file by version, an R script by name.
//
// States (info): V applied | pending | changed (its file's checksum differs from the history)
// | missing (in the history, no file); R applied | pending | outdated (changed since applied,
// so migrate applies it again) | missing.
//
// migrate refuses to apply anything while an applied V script is changed (ScriptError naming
// every such file; repair() accepts the new content). Missing scripts only warn, and a pending
// V script older than the newest applied one is applied with a warning. Two runners never
// apply at once: migrate and repair hold the scripts lock (state_locks.h) while they work, a
// session lock because each script commits on its own. The wait for it is bounded by lock_timeout,
// after which migrate gives up with ScriptError ("another session is applying scripts ..."). The
// history is read again once the lock is held, since the other runner may have applied the scripts
// meanwhile. info only reads and writes nothing, not even the state schema: without a history table
// every script is pending.
#pragma once

#include <chrono>
#include <optional>
#include <pqxx/pqxx>
#include <stdexcept>
#include <string>
#include <vector>

#include "errors.h"
#include "script_history.h"
#include "state_schema.h"

namespace pgxform {

// Problems found before anything was applied: bad names, duplicate versions, changed V
// scripts, the lock not obtained. The CLI prints every problem and exits 2.
class ScriptError : public InputError {
 public:
  explicit ScriptError(std::vector<std::string> problems)
      : InputError(std::move(problems), "nothing was applied") {}
};

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

enum class Transaction { own, none };

struct ScriptFile {
  std::string file;         // the file name: V1.2__orders.sql
  char type = 'V';          // 'V' versioned, 'R' repeatable
  std::string version;      // as written: "1.2", "1_2"; empty for R
  std::string description;  // from the name, `_` read as a space: "orders"
  std::string checksum;     // script_checksum of its text
  std::string path;         // where it was read; empty for a script known only to the history
  Transaction transaction = Transaction::own;
};

// -1, 0 or 1. Numbers joined by `.` or `_`, compared as numbers part by part; a missing part
// counts as 0.
int compare_versions(const std::string& a, const std::string& b);

// The script a file name names; none for a file that is not a script. Throws ScriptError for
// a name that starts like a script but is malformed. Fills file, type, version, description.
std::optional<ScriptFile> parse_script_name(const std::string& file);

// See the note above: line endings, trailing whitespace and trailing blank lines don't count.
std::string script_checksum(const std::string& text);

// `none` when the first line is `-- pgxform: no-transaction`. Throws ScriptError (naming
// `file`) for any other `-- pgxform:` directive there, so that a misspelt one is not ignored.
Transaction script_transaction(const std::string& text, const std::string& file);

// Every script of `dir`: V scripts by version, then R scripts by name. Throws ScriptError
// listing every problem (malformed names, duplicate versions, unreadable files).
std::vector<ScriptFile> scan_scripts(const std::string& dir);

enum class ScriptState { pending, applied, changed, outdated, missing };
const char* state_name(ScriptState state);

struct ScriptStatus {
  ScriptFile script;  // for a missing script, what the history knows of it
  ScriptState state = ScriptState::pending;
  std::optional<std::string> applied_at;
  std::optional<double> duration_ms;
  std::optional<std::string> applied_checksum;
};

// Pure: the state of every script, from the files (as scan_scripts orders them) and the
// history. V scripts by version (missing ones among them), then R scripts by name.
std::vector<ScriptStatus> script_states(const std::vector<ScriptFile>& files,
                                        const std::vector<AppliedScript>& history);

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
