#include "plan/script_files.h"

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/sql_text.h"
#include "base/text_check.h"

namespace fs = std::filesystem;

namespace pgxform {

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

}  // namespace

std::string read_script(const std::string& path) {
  return without_bom(read_file(path));
}

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

void check_script_text(const std::string& text, const std::string& file, Transaction transaction) {
  if (const auto flaw = text_flaw(text))
    throw ScriptError({file + ":" + std::to_string(line_at(text, flaw->offset)) + ": holds " +
                       flaw->what +
                       " (a script is UTF-8 text, and libpq would cut it at a NUL byte)"});
  if (transaction == Transaction::none) return;
  if (const auto control = find_transaction_control(text))
    throw ScriptError({file + ":" + std::to_string(line_at(text, control->offset)) + ": " +
                       control->command +
                       ": a script runs in one transaction with its history row, so that it is "
                       "applied whole or not at all; it may not end or split that transaction "
                       "(a statement that cannot run in a transaction needs a script of its own "
                       "whose first line is '-- pgxform: no-transaction')"});
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
      check_script_text(text, script->path, script->transaction);
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
    case ScriptState::conflict:
      return "conflict";
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
      // The version is taken by a script of another name (its description: V1.0__a and V1__a
      // are one script): this one was never applied.
      if (file.type == 'V' && h.description != file.description) {
        status.state = ScriptState::conflict;
        status.applied_as = h.script;
      }
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

}  // namespace pgxform
