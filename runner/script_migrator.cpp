#include "script_migrator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "database.h"
#include "state_locks.h"

namespace fs = std::filesystem;

namespace pgxform {

ScriptFailed::ScriptFailed(std::string script, std::string sqlstate, const std::string& message)
    : std::runtime_error(message), m_script(std::move(script)), m_sqlstate(std::move(sqlstate)) {}

namespace {

const char* const k_bom = "\xEF\xBB\xBF";
const char* const k_directive = "pgxform:";

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::vector<std::string> version_parts(const std::string& version) {
  std::vector<std::string> parts(1);
  for (char c : version) {
    if (c == '.' || c == '_')
      parts.emplace_back();
    else
      parts.back() += c;
  }
  return parts;
}

bool valid_version(const std::string& version) {
  for (const auto& part : version_parts(version))
    if (part.empty() || !std::all_of(part.begin(), part.end(), is_digit)) return false;
  return true;
}

// Numbers of any length compare as numbers: no leading zeros, then the longer is larger.
int compare_numbers(std::string a, std::string b) {
  a.erase(0, std::min(a.find_first_not_of('0'), a.size()));
  b.erase(0, std::min(b.find_first_not_of('0'), b.size()));
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  const int c = a.compare(b);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

std::string without_bom(std::string text) {
  if (text.compare(0, 3, k_bom) == 0) text.erase(0, 3);
  return text;
}

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\f\v");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r\f\v") - first + 1);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ScriptError({path.string() + ": cannot be read"});
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string script_path(const std::string& dir, const std::string& file) {
  return (fs::path(dir) / file).string();
}

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
      tx.exec_params("SELECT set_config('lock_timeout', $1, true)",
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

// Applied V scripts whose file changed: the problems that stop migrate.
std::vector<std::string> changed_problems(const std::vector<ScriptStatus>& states) {
  std::vector<std::string> problems;
  for (const auto& s : states)
    if (s.state == ScriptState::changed)
      problems.push_back(s.script.path + ": changed since it was applied at " +
                         s.applied_at.value_or("?") + " (checksum " +
                         s.applied_checksum.value_or("?") + " applied, " + s.script.checksum +
                         " on disk): restore it, or run pgxform repair to accept the change");
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

int compare_versions(const std::string& a, const std::string& b) {
  const auto pa = version_parts(a), pb = version_parts(b);
  for (size_t i = 0; i < std::max(pa.size(), pb.size()); ++i) {
    const int c = compare_numbers(i < pa.size() ? pa[i] : "0", i < pb.size() ? pb[i] : "0");
    if (c != 0) return c;
  }
  return 0;
}

std::optional<ScriptFile> parse_script_name(const std::string& file) {
  const std::string suffix = ".sql";
  if (file.size() <= suffix.size() || file.compare(file.size() - 4, 4, suffix) != 0)
    return std::nullopt;
  const bool versioned = file[0] == 'V' && (is_digit(file[1]) || file[1] == '_');
  const bool repeatable = file[0] == 'R' && (is_digit(file[1]) || file[1] == '_');
  if (!versioned && !repeatable) return std::nullopt;

  const std::string stem = file.substr(1, file.size() - 1 - suffix.size());
  const auto separator = stem.find("__");
  ScriptFile script;
  script.file = file;
  script.type = file[0];
  if (versioned) {
    if (separator == std::string::npos || !valid_version(stem.substr(0, separator)))
      throw ScriptError({file + ": not a valid script name: a versioned script is named "
                                "V<version>__<description>.sql, the version numbers joined by "
                                "'.' or '_' (V1__init.sql, V1.2__orders.sql)"});
    script.version = stem.substr(0, separator);
  } else if (separator != 0) {
    throw ScriptError({file + ": not a valid script name: a repeatable script is named "
                              "R__<description>.sql (R__transforms.sql)"});
  }
  script.description = stem.substr(separator + 2);
  std::replace(script.description.begin(), script.description.end(), '_', ' ');
  if (trim(script.description).empty())
    throw ScriptError({file + ": not a valid script name: the description after '__' is empty"});
  return script;
}

std::string script_checksum(const std::string& text) {
  // Every line as LF-terminated and without trailing whitespace. Line breaks are hashed only
  // when more content follows them, so blank lines at the end and the last newline vanish.
  std::uint64_t hash = 14695981039346656037ull;
  auto add = [&hash](char c) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  };
  const std::string body = without_bom(text);
  std::string line;
  size_t line_breaks = 0;
  auto end_line = [&]() {
    line.erase(line.find_last_not_of(" \t\f\v") + 1);
    if (!line.empty()) {
      for (; line_breaks > 0; --line_breaks) add('\n');
      for (char c : line) add(c);
    }
    ++line_breaks;
    line.clear();
  };
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c == '\r') {
      if (i + 1 < body.size() && body[i + 1] == '\n') ++i;
      end_line();
    } else if (c == '\n') {
      end_line();
    } else {
      line += c;
    }
  }
  end_line();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016" PRIx64, hash);
  return hex;
}

Transaction script_transaction(const std::string& text, const std::string& file) {
  const std::string body = without_bom(text);
  std::string first = trim(body.substr(0, body.find_first_of("\r\n")));
  if (first.compare(0, 2, "--") != 0) return Transaction::own;
  first = trim(first.substr(2));
  if (first.compare(0, std::string(k_directive).size(), k_directive) != 0) return Transaction::own;
  const std::string directive = trim(first.substr(std::string(k_directive).size()));
  if (directive == "no-transaction") return Transaction::none;
  throw ScriptError({file + ": line 1: unknown directive '" + directive +
                     "'; the only one is '-- pgxform: no-transaction'"});
}

std::vector<ScriptFile> scan_scripts(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return {};
  if (!fs::is_directory(dir, ec))
    throw ScriptError({dir + ": the scripts directory is not a directory"});

  std::vector<std::string> problems;
  std::vector<ScriptFile> versioned, repeatable;
  fs::directory_iterator it(dir, ec);
  if (ec) throw ScriptError({dir + ": cannot read the scripts directory: " + ec.message()});
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    std::optional<ScriptFile> script;
    try {
      script = parse_script_name(name);
    } catch (const ScriptError& e) {
      problems.push_back(script_path(dir, e.what()));  // the message starts with the name
      continue;
    }
    if (!script) continue;
    try {
      if (!entry.is_regular_file())
        throw ScriptError({script_path(dir, name) + ": not a regular file"});
      const std::string text = read_file(entry.path());
      script->path = script_path(dir, name);
      script->checksum = script_checksum(text);
      script->transaction = script_transaction(text, script->path);
      (script->type == 'V' ? versioned : repeatable).push_back(*script);
    } catch (const ScriptError& e) {
      problems.insert(problems.end(), e.problems().begin(), e.problems().end());
    }
  }

  std::sort(versioned.begin(), versioned.end(), [](const ScriptFile& a, const ScriptFile& b) {
    const int c = compare_versions(a.version, b.version);
    return c != 0 ? c < 0 : a.file < b.file;
  });
  for (size_t i = 1; i < versioned.size(); ++i)
    if (compare_versions(versioned[i - 1].version, versioned[i].version) == 0)
      problems.push_back(versioned[i - 1].path + " and " + versioned[i].file +
                         ": two scripts with version " + versioned[i].version +
                         "; a version is applied once, so give one of them another");
  std::sort(repeatable.begin(), repeatable.end(),
            [](const ScriptFile& a, const ScriptFile& b) { return a.file < b.file; });
  if (!problems.empty()) {
    std::sort(problems.begin(), problems.end());
    throw ScriptError(problems);
  }
  versioned.insert(versioned.end(), repeatable.begin(), repeatable.end());
  return versioned;
}

const char* state_name(ScriptState state) {
  switch (state) {
    case ScriptState::pending:
      return "pending";
    case ScriptState::applied:
      return "applied";
    case ScriptState::changed:
      return "changed";
    case ScriptState::outdated:
      return "outdated";
    case ScriptState::missing:
      return "missing";
  }
  return "?";
}

std::vector<ScriptStatus> script_states(const std::vector<ScriptFile>& files,
                                        const std::vector<AppliedScript>& history) {
  std::vector<ScriptStatus> versioned, repeatable;
  std::vector<bool> matched(history.size(), false);
  for (const auto& file : files) {
    ScriptStatus status;
    status.script = file;
    for (size_t i = 0; i < history.size(); ++i) {
      const AppliedScript& h = history[i];
      if (h.type != file.type) continue;
      if (file.type == 'V' ? compare_versions(h.version, file.version) != 0 : h.script != file.file)
        continue;
      matched[i] = true;
      status.applied_at = h.applied_at;
      status.duration_ms = h.duration_ms;
      status.applied_checksum = h.checksum;
      status.state = h.checksum == file.checksum ? ScriptState::applied
                     : file.type == 'V'          ? ScriptState::changed
                                                 : ScriptState::outdated;
      break;
    }
    (file.type == 'V' ? versioned : repeatable).push_back(status);
  }
  for (size_t i = 0; i < history.size(); ++i) {
    if (matched[i]) continue;
    const AppliedScript& h = history[i];
    ScriptStatus status;
    status.script.file = h.script;
    status.script.type = h.type;
    status.script.version = h.version;
    status.script.description = h.description;
    status.script.checksum = h.checksum;
    status.state = ScriptState::missing;
    status.applied_at = h.applied_at;
    status.duration_ms = h.duration_ms;
    status.applied_checksum = h.checksum;
    (h.type == 'V' ? versioned : repeatable).push_back(status);
  }
  std::stable_sort(versioned.begin(), versioned.end(),
                   [](const ScriptStatus& a, const ScriptStatus& b) {
                     return compare_versions(a.script.version, b.script.version) < 0;
                   });
  std::stable_sort(
      repeatable.begin(), repeatable.end(),
      [](const ScriptStatus& a, const ScriptStatus& b) { return a.script.file < b.script.file; });
  versioned.insert(versioned.end(), repeatable.begin(), repeatable.end());
  return versioned;
}

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
  auto problems = changed_problems(states);
  if (!problems.empty()) throw ScriptError(problems);
  // The common case, everything applied, neither waits for nor takes the lock.
  if (to_apply(states).empty()) {
    warn_missing(states, m_dir);
    return {};
  }

  ScriptLock lock(m_conn, m_schema, m_lock_timeout);
  states = script_states(files, read_history());
  problems = changed_problems(states);
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
  const std::string text = without_bom(read_file(script.path));
  const std::string checksum = script_checksum(text);
  const Transaction transaction = script_transaction(text, script.path);
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
    const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
    const std::string sqlstate = sql ? sql->sqlstate() : "";
    std::string message = redact(e.what());
    message.erase(message.find_last_not_of(" \n") + 1);
    message = script.path + " failed" + (sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")") +
              ": " + message;
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
