#include "plan/targets_file.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <set>

#include "base/name_suggestion.h"
#include "base/redaction.h"
#include "base/setting_limits.h"
#include "base/text_check.h"

namespace pgxform {

namespace {

constexpr std::size_t k_max_targets_bytes = 16 * 1024 * 1024;

int node_line(const YAML::Node& node) {
  return node.Mark().is_null() ? 0 : node.Mark().line + 1;
}

// A target's name goes into log lines, status and file names of reports: a short plain word.
std::optional<std::string> name_problem(const std::string& name) {
  if (name.empty() || name.size() > 63) return "must be 1 to 63 characters";
  for (const char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
      return "may hold only letters, digits, '_', '-' and '.'";
  return std::nullopt;
}

std::optional<int> max_threads_value(const std::string& text) {
  char* end = nullptr;
  const long n = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || n < k_threads.min || n > k_threads.max) return std::nullopt;
  return int(n);
}

const std::string k_max_threads_text =
    "must be a number of threads from 1 to " + std::to_string(k_threads.max);

class TargetsReader {
 public:
  explicit TargetsReader(std::string path) : m_path(std::move(path)) {}

  [[noreturn]] void fail(int line, const std::string& message) const {
    throw TargetsFileError(m_path, line, message);
  }

  void check_fields(const YAML::Node& map, const std::set<std::string>& allowed,
                    const std::string& where) const {
    if (!map.IsMap()) fail(node_line(map), where + " must be a mapping");
    std::set<std::string> seen;
    for (const auto& entry : map) {
      const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "";
      if (!seen.insert(key).second)
        fail(node_line(entry.first), "field '" + printable(key) + "' appears twice in " + where);
      if (!allowed.count(key)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail(node_line(entry.first),
             "unknown field '" + printable(key) + "' in " + where + " (allowed: " + list + ")");
      }
    }
  }

  std::optional<std::string> text(const YAML::Node& map, const std::string& field,
                                  const std::string& where) const {
    const YAML::Node value = map[field];
    if (!value) return std::nullopt;
    if (!value.IsScalar() || value.Scalar().empty())
      fail(node_line(value), "'" + field + "' in " + where + " must be a non-empty string");
    if (const auto flaw = text_flaw(value.Scalar()))
      fail(node_line(value), "'" + field + "' in " + where + " holds " + flaw->what);
    return value.Scalar();
  }

  FleetTarget target(const YAML::Node& node, int index) const {
    const std::string where = "target " + std::to_string(index + 1);
    check_fields(node, {"name", "dsn", "service", "max_threads", "host"}, where);
    FleetTarget t;
    t.line = node_line(node);
    const auto name = text(node, "name", where);
    if (!name) fail(t.line, "missing required field 'name' in " + where);
    t.name = *name;
    const auto dsn = text(node, "dsn", where);
    const auto service = text(node, "service", where);
    if (dsn.has_value() == service.has_value())
      fail(t.line, "target '" + printable(t.name) + "' needs either 'dsn' or 'service'");
    if (service && name_problem(*service))
      fail(node_line(node["service"]),
           "'service' of target '" + printable(t.name) + "' " + *name_problem(*service));
    t.dsn = dsn ? *dsn : "service=" + *service;
    if (const auto threads = text(node, "max_threads", where)) {
      t.max_threads = max_threads_value(*threads);
      if (!t.max_threads)
        fail(node_line(node["max_threads"]), "'max_threads' " + k_max_threads_text);
    }
    t.host = text(node, "host", where).value_or("");
    return t;
  }

  const std::string& path() const { return m_path; }

 private:
  std::string m_path;
};

// What every target must be, from the file or from the query: a good unique name, no password.
void check_target(const std::string& path, const FleetTarget& t, std::set<std::string>& names,
                  const std::string& where) {
  if (const auto problem = name_problem(t.name))
    throw TargetsFileError(path, t.line,
                           where + ": the name '" + printable(t.name) + "' " + *problem);
  if (!names.insert(t.name).second)
    throw TargetsFileError(path, t.line, where + ": the name '" + t.name + "' appears twice");
  if (dsn_has_password(t.dsn)) {
    // Its password must not reach a message, whatever else is said of it.
    register_secrets_from(t.dsn);
    throw TargetsFileError(path, t.line,
                           where + " ('" + t.name +
                               "'): a password in a connection string is refused: put it in "
                               "libpq's passfile (~/.pgpass, PGPASSFILE) or PGPASSWORD");
  }
}

TargetsFile read_root(const TargetsReader& r, const YAML::Node& root) {
  TargetsFile file;
  file.path = r.path();
  r.check_fields(root, {"targets", "targets_query", "max_threads_per_host"}, "the targets file");
  if (const YAML::Node list = root["targets"]) {
    if (!list.IsSequence()) r.fail(node_line(list), "'targets' must be a list");
    for (std::size_t i = 0; i < list.size(); ++i) file.targets.push_back(r.target(list[i], int(i)));
  }
  if (const YAML::Node query = root["targets_query"]) {
    r.check_fields(query, {"dsn", "sql"}, "targets_query");
    TargetsQuery q;
    // The line of its key: a block mapping's own mark is that of its first key, below it.
    for (const auto& entry : root)
      if (entry.first.IsScalar() && entry.first.Scalar() == "targets_query")
        q.line = node_line(entry.first);
    q.dsn = r.text(query, "dsn", "targets_query").value_or("");
    const auto sql = r.text(query, "sql", "targets_query");
    if (!sql) r.fail(q.line, "missing required field 'sql' in targets_query");
    q.sql = *sql;
    if (dsn_has_password(q.dsn)) {
      register_secrets_from(q.dsn);
      r.fail(node_line(query["dsn"]),
             "targets_query: a password in a connection string is refused: put it in libpq's "
             "passfile (~/.pgpass, PGPASSFILE) or PGPASSWORD");
    }
    file.query = q;
  }
  if (const auto per_host = r.text(root, "max_threads_per_host", "the targets file")) {
    file.max_threads_per_host = max_threads_value(*per_host);
    if (!file.max_threads_per_host)
      r.fail(node_line(root["max_threads_per_host"]),
             "'max_threads_per_host' " + k_max_threads_text);
  }
  if (file.targets.empty() && !file.query)
    r.fail(node_line(root),
           "the targets file names no target: give 'targets', 'targets_query' or both");
  std::set<std::string> names;
  for (std::size_t i = 0; i < file.targets.size(); ++i)
    check_target(file.path, file.targets[i], names, "target " + std::to_string(i + 1));
  return file;
}

}  // namespace

TargetsFileError::TargetsFileError(const std::string& file, int line, const std::string& message)
    : InputError({line > 0 ? file + ":" + std::to_string(line) + ": " + message
                           : file + ": " + message}) {}

TargetsFile parse_targets_text(const std::string& text, const std::string& path) {
  if (const auto flaw = text_flaw(text))
    throw TargetsFileError(path, line_at(text, flaw->offset),
                           "the targets file holds " + flaw->what + " (it must be UTF-8 text)");
  const TargetsReader r(path);
  try {
    const YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) r.fail(0, "the targets file must be a YAML mapping");
    return read_root(r, root);
  } catch (const YAML::Exception& e) {
    throw TargetsFileError(path, e.mark.is_null() ? 0 : e.mark.line + 1, "YAML error: " + e.msg);
  }
}

TargetsFile parse_targets_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TargetsFileError(path, 0, "cannot read the targets file");
  std::string text(k_max_targets_bytes + 1, '\0');
  in.read(text.data(), std::streamsize(text.size()));
  text.resize(std::size_t(in.gcount()));
  if (text.size() > k_max_targets_bytes)
    throw TargetsFileError(path, 0, "the targets file is larger than 16 MB");
  return parse_targets_text(text, path);
}

void add_queried_targets(TargetsFile& file, const std::vector<TargetRow>& rows) {
  const int line = file.query ? file.query->line : 0;
  std::set<std::string> names;
  for (const auto& t : file.targets) names.insert(t.name);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::string where = "targets_query row " + std::to_string(i + 1);
    const TargetRow& row = rows[i];
    if (!row.name || !row.dsn)
      throw TargetsFileError(file.path, line, where + ": the name and the dsn may not be NULL");
    FleetTarget t;
    t.name = *row.name;
    t.dsn = *row.dsn;
    t.line = line;
    t.host = row.host.value_or("");
    if (row.max_threads) {
      t.max_threads = max_threads_value(*row.max_threads);
      if (!t.max_threads)
        throw TargetsFileError(file.path, line, where + ": max_threads " + k_max_threads_text);
    }
    if (const auto flaw = text_flaw(t.dsn))
      throw TargetsFileError(file.path, line, where + ": the dsn holds " + flaw->what);
    check_target(file.path, t, names, where);
    file.targets.push_back(std::move(t));
  }
  if (file.targets.empty())
    throw TargetsFileError(file.path, line,
                           "the targets file names no target (the query found none)");
}

const FleetTarget& find_target(const TargetsFile& file, const std::string& name) {
  for (const auto& t : file.targets)
    if (t.name == name) return t;
  std::vector<std::string> names;
  for (const auto& t : file.targets) names.push_back(t.name);
  const auto meant = suggest_name(name, names);
  throw TargetsFileError(file.path, 0,
                         "no target named '" + printable(name) + "'" +
                             (meant ? "; did you mean '" + *meant + "'?" : ""));
}

}  // namespace pgxform
