// script_files: the DBAs' SQL scripts as files, Flyway-style — the schemas and transform
// functions that the jobs need, in a directory (the jobs file's `scripts_dir:`). Pure: names,
// versions, checksums, the text rules and the states; script_migrator.h applies them.
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
// Text: UTF-8 without a NUL byte (libpq would cut the script there); a script that runs in a
// transaction of its own may hold no statement that ends or splits it (sql_text.h).
//
// Checksum: FNV-1a 64 of the text with every line ending (CRLF, LF, CR) read as LF, trailing
// whitespace of each line, trailing blank lines and a UTF-8 byte order mark removed; 16 hex
// digits. So an editor that changes line endings or trims spaces changes nothing.
//
// States (info): V applied | pending | changed (its file's checksum differs from the history)
// | conflict (its version was applied as a script of another description: a different
// script, such as another migration's V1 in a shared state schema, which repair must never
// accept; V1.0__a.sql and V1__a.sql are one script) |
// missing (in the history, no file); R applied | pending | outdated (changed since applied,
// so migrate applies it again) | missing.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/errors.h"

namespace pgxform {

// Problems found before anything was applied: bad names, duplicate versions, changed V
// scripts, the lock not obtained. The CLI prints every problem and exits 2.
class ScriptError : public InputError {
 public:
  explicit ScriptError(std::vector<std::string> problems)
      : InputError(std::move(problems), "nothing was applied") {}
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

// Throws ScriptError naming the file and line unless `text` is UTF-8 without a NUL byte and, for
// a script that runs in its own transaction, holds no statement that ends it (sql_text.h).
void check_script_text(const std::string& text, const std::string& file, Transaction transaction);

// Every script of `dir`: V scripts by version, then R scripts by name. Throws ScriptError
// listing every problem (malformed names, duplicate versions, unreadable files, bad text).
std::vector<ScriptFile> scan_scripts(const std::string& dir);

// One row of script_history.
struct AppliedScript {
  std::string script;
  char type = 'V';
  std::string version;  // empty for R
  std::string description;
  std::string checksum;
  std::string applied_at;
  double duration_ms = 0;
};

enum class ScriptState { pending, applied, changed, outdated, missing, conflict };
const char* state_name(ScriptState state);

struct ScriptStatus {
  ScriptFile script;  // for a missing script, what the history knows of it
  ScriptState state = ScriptState::pending;
  std::optional<std::string> applied_at;
  std::optional<double> duration_ms;
  std::optional<std::string> applied_checksum;
  // conflict: the name of the script applied as this version (the history's row).
  std::optional<std::string> applied_as;
};

// The state of every script, from the files (as scan_scripts orders them) and the
// history. V scripts by version (missing ones among them), then R scripts by name.
std::vector<ScriptStatus> script_states(const std::vector<ScriptFile>& files,
                                        const std::vector<AppliedScript>& history);

// The text of a script file, its byte order mark removed. Throws ScriptError when it cannot be
// read.
std::string read_script(const std::string& path);

}  // namespace pgxform
