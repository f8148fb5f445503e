#include "plan/jobs_file.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "base/sql_text.h"
#include "base/text_check.h"

namespace pgxform {

JobsFileError::JobsFileError(const std::string& file, int line, const std::string& message)
    : InputError(
          {line > 0 ? file + ":" + std::to_string(line) + ": " + message : file + ": " + message}),
      m_file(file),
      m_line(line) {}

const char* capture_name(ChangeCapture capture) {
  switch (capture) {
    case ChangeCapture::trigger:
      return "trigger";
    case ChangeCapture::logical:
      return "logical";
    case ChangeCapture::none:
      break;
  }
  return "none";
}

const Job* JobsFile::find_job(const std::string& name) const {
  for (const auto& list : lists)
    for (const auto& job : list.jobs)
      if (job.name == name) return &job;
  return nullptr;
}

const JobList* JobsFile::find_list(const std::string& name) const {
  for (const auto& list : lists)
    if (list.name == name) return &list;
  return nullptr;
}

std::optional<std::string> steering_flaw(const std::string& name) {
  if (name.find('=') == std::string::npos) return std::nullopt;
  return " holds '=': pgxform pause and set read NAME=VALUE as a setting, so it could never be "
         "steered; rename it";
}

QualifiedName parse_qualified_name(const std::string& text) {
  std::vector<std::string> parts(1);
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') {
      if (quoted && i + 1 < text.size() && text[i + 1] == '"') {
        parts.back() += '"';
        ++i;
      } else {
        quoted = !quoted;
      }
    } else if (c == '.' && !quoted) {
      parts.emplace_back();
    } else {
      parts.back() += c;
    }
  }
  if (quoted) throw std::invalid_argument("unterminated quote in '" + text + "'");
  for (const auto& p : parts)
    if (p.empty()) throw std::invalid_argument("'" + text + "' is not a valid name");
  if (parts.size() == 1) return {"", parts[0]};
  if (parts.size() == 2) return {parts[0], parts[1]};
  throw std::invalid_argument("'" + text + "' has more than schema.name");
}

namespace {

// `parallel: auto` (the jobs file's word for splitting while workers are idle).
bool is_auto(const YAML::Node& node) {
  return node.IsScalar() && node.Scalar() == "auto";
}

// The longest name PostgreSQL keeps (NAMEDATALEN - 1).
constexpr std::size_t k_max_identifier = 63;
// What is reasonable for one jobs file: a larger one would take seconds and hundreds of MB to
// read (the YAML tree), for no migration anyone runs.
constexpr std::size_t k_max_file_bytes = 4 * 1024 * 1024;
constexpr std::size_t k_max_jobs = 10000;

// How a string field is checked: as text that reaches the database, or as a name, which also
// goes into log lines.
enum class Text { value, name };

// Walks the YAML tree; every error it raises carries the file and the node's line.
class Reader {
 public:
  explicit Reader(std::string path) : m_path(std::move(path)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& message) const {
    throw JobsFileError(m_path, line_of(node), message);
  }

  static int line_of(const YAML::Node& node) {
    return node.Mark().is_null() ? 0 : node.Mark().line + 1;
  }

  // The line of `field`'s key in a mapping. A null value (`key:` with nothing after it) has
  // the position of the next token, so errors about a value point at its key instead.
  static int key_line(const YAML::Node& map, const std::string& field) {
    for (const auto& entry : map)
      if (entry.first.Scalar() == field) return line_of(entry.first);
    return line_of(map);
  }

  [[noreturn]] void fail_at(int line, const std::string& message) const {
    throw JobsFileError(m_path, line, message);
  }

  void expect_map(const YAML::Node& node, const std::string& what) const {
    if (!node.IsMap()) fail(node, what + " must be a mapping");
  }

  // Unknown fields are errors: a typo such as `batchsize` must never be ignored silently.
  void check_fields(const YAML::Node& node, const std::set<std::string>& allowed,
                    const std::string& where) const {
    std::set<std::string> seen;
    for (const auto& entry : node) {
      if (!entry.first.IsScalar())
        fail(entry.first, "a key in " + where + " must be a plain name, not a list or mapping");
      check_text(entry.first, "a key in " + where, Text::name);
      const std::string field = entry.first.Scalar();
      // yaml-cpp keeps the first of two equal keys; YAML forbids them, and so do we.
      if (!seen.insert(field).second)
        fail(entry.first, "field '" + field + "' appears twice in " + where);
      if (!allowed.count(field)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail(entry.first, "unknown field '" + field + "' in " + where + " (allowed: " + list + ")");
      }
    }
  }

  std::string string_field(const YAML::Node& node, const std::string& field,
                           const std::string& where, Text text = Text::value) const {
    const YAML::Node value = node[field];
    if (!value) fail(node, "missing required field '" + field + "' in " + where);
    if (!value.IsScalar() || value.Scalar().empty())
      fail_at(key_line(node, field), "'" + field + "' in " + where + " must be a non-empty string");
    check_text(value, "'" + field + "' in " + where, text);
    return value.Scalar();
  }

  // Every string that reaches the database or a log line (text_check.h): no NUL, UTF-8 only,
  // and for names no control characters.
  void check_text(const YAML::Node& scalar, const std::string& what, Text text) const {
    const auto flaw = text == Text::name ? name_flaw(scalar.Scalar()) : text_flaw(scalar.Scalar());
    if (flaw)
      fail(scalar,
           what + " holds " + flaw->what + " (at byte " + std::to_string(flaw->offset + 1) + ")");
  }

  // An SQL identifier (a table, a key, a function, a schema): PostgreSQL cuts a longer one to
  // its first 63 bytes without an error, which could name another object.
  void check_identifier(const YAML::Node& scalar, const std::string& part,
                        const std::string& what) const {
    if (part.size() > k_max_identifier)
      fail(scalar, what + ": '" + part + "' is longer than PostgreSQL's " +
                       std::to_string(k_max_identifier) + " bytes for a name");
  }

  // A positive integer no larger than `max`; an empty value is reported on its key's line.
  long positive_integer(const YAML::Node& map, const std::string& field, const std::string& what,
                        long max = std::numeric_limits<int>::max()) const {
    const YAML::Node value = map[field];
    if (value.IsScalar()) {
      const std::string& s = value.Scalar();
      char* end = nullptr;
      errno = 0;
      long n = std::strtol(s.c_str(), &end, 10);
      if (!s.empty() && *end == '\0' && errno == 0 && n > 0 && n <= max) return n;
    }
    fail_at(value.IsNull() ? key_line(map, field) : line_of(value),
            what + " must be a positive integer (at most " + std::to_string(max) + ")");
  }

  QualifiedName name_field(const YAML::Node& node, const std::string& field,
                           const std::string& where) const {
    auto text = string_field(node, field, where);
    QualifiedName name;
    try {
      name = parse_qualified_name(text);
    } catch (const std::invalid_argument& e) {
      fail(node[field], "'" + field + "' in " + where + ": " + e.what());
    }
    for (const auto& part : {name.schema, name.name})
      check_identifier(node[field], part, "'" + field + "' in " + where);
    return name;
  }

  const std::string& path() const { return m_path; }

  bool boolean(const YAML::Node& map, const std::string& field, const std::string& what) const {
    const YAML::Node value = map[field];
    if (value.IsScalar() && (value.Scalar() == "true" || value.Scalar() == "false"))
      return value.Scalar() == "true";
    fail_at(value.IsNull() ? key_line(map, field) : line_of(value),
            what + " must be true or false");
  }

  // A PostgreSQL duration: a number of milliseconds, or a number with a unit (us, ms, s, min,
  // h, d). Passed to set_config() as a bound value.
  std::string duration(const YAML::Node& map, const std::string& field,
                       const std::string& what) const {
    static const std::regex k_duration(R"(^[0-9]+\s*(us|ms|s|min|h|d)?$)");
    const YAML::Node value = map[field];
    if (value.IsScalar() && std::regex_match(value.Scalar(), k_duration)) return value.Scalar();
    fail_at(value.IsNull() ? key_line(map, field) : line_of(value),
            what + " must be a duration such as 30s, 5min or 0 (none)");
  }

  // Reads the inheritable settings present in `map` over `settings`.
  void settings(const YAML::Node& map, JobSettings& settings, const std::string& where) const {
    // "defaults.batch_size", or "batch_size of job 'x'".
    auto what = [&](const std::string& field) {
      return where == "defaults" ? "defaults." + field : field + " of " + where;
    };
    if (map["batch_size"])
      settings.batch_size =
          positive_integer(map, "batch_size", what("batch_size"), k_batch_size.max);
    if (map["target_batch_ms"])
      settings.target_batch_ms =
          map["target_batch_ms"].IsScalar() && map["target_batch_ms"].Scalar() == "0"
              ? 0
              : positive_integer(map, "target_batch_ms", what("target_batch_ms"),
                                 k_target_batch_ms.max);
    if (map["min_batch_size"])
      settings.min_batch_size =
          positive_integer(map, "min_batch_size", what("min_batch_size"), k_batch_size.max);
    if (map["max_batch_size"])
      settings.max_batch_size =
          positive_integer(map, "max_batch_size", what("max_batch_size"), k_batch_size.max);
    if (settings.min_batch_size > settings.max_batch_size)
      fail_at(key_line(map, map["max_batch_size"] ? "max_batch_size" : "min_batch_size"),
              what("min_batch_size") + " (" + std::to_string(settings.min_batch_size) +
                  ") is above " + what("max_batch_size") + " (" +
                  std::to_string(settings.max_batch_size) + ")");
    if (const YAML::Node sync = map["synchronous_commit"]) {
      if (!sync.IsScalar() || (sync.Scalar() != "on" && sync.Scalar() != "off"))
        fail_at(sync.IsNull() ? key_line(map, "synchronous_commit") : line_of(sync),
                what("synchronous_commit") + " must be on or off");
      settings.synchronous_commit =
          sync.Scalar() == "on" ? SynchronousCommit::on : SynchronousCommit::off;
    }
    if (map["retries"]) {
      // 0 is allowed: no retry.
      if (map["retries"].IsScalar() && map["retries"].Scalar() == "0")
        settings.retries = 0;
      else
        settings.retries = int(positive_integer(map, "retries", what("retries"), 100));
    }
    if (map["retry_backoff_ms"])
      settings.retry_backoff_ms =
          positive_integer(map, "retry_backoff_ms", what("retry_backoff_ms"), 600000);
    if (const YAML::Node on_error = map["on_error"]) {
      if (!on_error.IsScalar() || (on_error.Scalar() != "stop" && on_error.Scalar() != "skip"))
        fail_at(on_error.IsNull() ? key_line(map, "on_error") : line_of(on_error),
                what("on_error") + " must be stop or skip");
      settings.on_error = on_error.Scalar() == "skip" ? OnError::skip : OnError::stop;
    }
    if (map["bisect"]) settings.bisect = boolean(map, "bisect", what("bisect"));
    if (const YAML::Node throttle = map["throttle"]) {
      expect_map(throttle, what("throttle"));
      check_fields(
          throttle,
          {"max_replica_lag_s", "max_active_sessions", "max_xact_age_s", "max_wal_mb_per_s"},
          what("throttle"));
      const auto limit = [&](const char* field, std::optional<long>& into) {
        if (throttle[field])
          into = positive_integer(throttle, field, what("throttle") + "." + field, 1000000);
      };
      limit("max_replica_lag_s", settings.throttle.max_replica_lag_s);
      limit("max_active_sessions", settings.throttle.max_active_sessions);
      limit("max_xact_age_s", settings.throttle.max_xact_age_s);
      limit("max_wal_mb_per_s", settings.throttle.max_wal_mb_per_s);
    }
    if (map["statement_timeout"])
      settings.statement_timeout = duration(map, "statement_timeout", what("statement_timeout"));
    if (map["lock_timeout"])
      settings.lock_timeout = duration(map, "lock_timeout", what("lock_timeout"));
    if (map["idle_in_transaction_session_timeout"])
      settings.idle_in_transaction_session_timeout = duration(
          map, "idle_in_transaction_session_timeout", what("idle_in_transaction_session_timeout"));
  }

 private:
  std::string m_path;
};

// One entry of `changes.also:` (jobs_file.h: AlsoTable).
AlsoTable read_also(const Reader& r, const YAML::Node& node, const std::string& where) {
  r.expect_map(node, "an entry of changes.also of " + where);
  const std::string what = "changes.also of " + where;
  r.check_fields(node, {"table", "column", "match", "keys_function"}, what);
  AlsoTable also;
  also.line = Reader::line_of(node);
  also.table = r.name_field(node, "table", what);
  also.column = r.string_field(node, "column", what);
  r.check_identifier(node["column"], also.column, "'column' in " + what);
  if (bool(node["match"]) == bool(node["keys_function"]))
    r.fail(node, "an entry of " + what +
                     " needs exactly one of 'match' (a column of the job's table equal to the"
                     " recorded column) or 'keys_function' (called with the recorded values,"
                     " returning the job's keys)");
  if (node["match"]) {
    also.match = r.string_field(node, "match", what);
    r.check_identifier(node["match"], also.match, "'match' in " + what);
  } else {
    also.keys_function = r.name_field(node, "keys_function", what);
  }
  return also;
}

// A mode of `changes:` as the file spells it; none when it is not one.
std::optional<ChangeCapture> capture_mode(const YAML::Node& mode) {
  if (!mode.IsScalar()) return std::nullopt;
  for (const ChangeCapture c :
       {ChangeCapture::none, ChangeCapture::trigger, ChangeCapture::logical})
    if (mode.Scalar() == capture_name(c)) return c;
  return std::nullopt;
}

// `changes: trigger` (or logical, or none), or its mapping form `changes: {mode: logical, also:
// [...]}`, over what defaults.changes gave the job, and the `refresh_function:` that capturing
// needs (docs/catch-up.md).
void read_changes(const Reader& r, const YAML::Node& node, const std::string& where,
                  const JobsFile& file, Job& job) {
  job.changes = file.default_changes;
  job.changes_from_defaults = job.captures();
  if (const YAML::Node changes = node["changes"]) {
    const std::string must = "changes of " + where +
                             " must be trigger, logical or none, or a mapping {mode: trigger,"
                             " also: [...]}";
    // Bound once: assigning a YAML::Node would overwrite the node it refers to.
    const YAML::Node mode = changes.IsMap() ? changes["mode"] : changes;
    if (changes.IsMap()) {
      r.check_fields(changes, {"mode", "also"}, "changes of " + where);
      if (!mode) r.fail(changes, "missing required field 'mode' in changes of " + where);
      if (const YAML::Node also = changes["also"]) {
        if (!also.IsSequence() || also.size() == 0)
          r.fail(also, "'also' in changes of " + where + " must be a non-empty list of tables");
        if (also.size() > k_max_also)
          r.fail(also, "'also' in changes of " + where + " names more than " +
                           std::to_string(k_max_also) + " tables");
        for (const auto& entry : also) job.also.push_back(read_also(r, entry, where));
      }
    }
    const std::optional<ChangeCapture> capture = capture_mode(mode);
    if (!capture)
      r.fail_at(mode.IsScalar() && !mode.IsNull() ? Reader::line_of(mode)
                                                  : Reader::key_line(node, "changes"),
                must);
    job.changes = *capture;
    job.changes_from_defaults = false;
    if (!job.captures() && !job.also.empty())
      r.fail(changes["also"],
             "'also' in changes of " + where + " needs a mode that captures (trigger or logical)");
  }
  const std::string mode = std::string("changes: ") + capture_name(job.changes) +
                           (job.changes_from_defaults ? " (from defaults.changes)" : "");
  if (node["refresh_function"]) {
    if (!job.captures())
      r.fail(node["refresh_function"],
             "refresh_function of " + where + " is only used with changes: trigger or logical");
    job.refresh_function = r.name_field(node, "refresh_function", where);
  } else if (job.captures()) {
    r.fail_at(node["changes"] ? Reader::key_line(node, "changes") : Reader::line_of(node),
              where + " has " + mode +
                  " but no refresh_function: catch-up calls it as "
                  "refresh_function(keys key_type[]) to make the target match the source" +
                  (job.changes_from_defaults ? " (or give it changes: none)" : ""));
  }
}

// `writes: [schema.table, ...]`: the tables the job's function writes, each a qualified name.
void read_writes(const Reader& r, const YAML::Node& node, const std::string& where, Job& job) {
  const YAML::Node writes = node["writes"];
  if (!writes) return;
  const std::string what = "'writes' of " + where;
  if (!writes.IsSequence()) r.fail(writes, what + " must be a list of tables: [schema.table, ...]");
  for (const auto& w : writes) {
    if (!w.IsScalar() || w.Scalar().empty())
      r.fail(w, what + " must be a list of tables: [schema.table, ...]");
    QualifiedName name;
    try {
      name = parse_qualified_name(w.Scalar());
    } catch (const std::invalid_argument& e) {
      r.fail(w, what + ": " + e.what());
    }
    for (const auto& part : {name.schema, name.name}) r.check_identifier(w, part, what);
    job.writes.push_back(name);
  }
}

Job read_job(const Reader& r, const YAML::Node& node, const JobsFile& file,
             const std::string& list) {
  r.expect_map(node, "a job of list '" + list + "'");
  Job job;
  job.list = list;
  job.line = Reader::line_of(node);
  job.name = r.string_field(node, "name", "a job of list '" + list + "'", Text::name);
  const std::string where = "job '" + job.name + "'";
  if (const auto flaw = steering_flaw(job.name))
    r.fail(node["name"], "the name of " + where + *flaw);
  r.check_fields(node,
                 {"name",
                  "table",
                  "key",
                  "function",
                  "sql",
                  "batch_size",
                  "target_batch_ms",
                  "min_batch_size",
                  "max_batch_size",
                  "synchronous_commit",
                  "parallel",
                  "retries",
                  "retry_backoff_ms",
                  "on_error",
                  "bisect",
                  "throttle",
                  "statement_timeout",
                  "lock_timeout",
                  "idle_in_transaction_session_timeout",
                  "verify",
                  "idempotent",
                  "changes",
                  "refresh_function",
                  "writes"},
                 where);
  job.settings = file.defaults;
  r.settings(node, job.settings, where);
  job.batch_size = job.settings.batch_size;
  const bool has_function = bool(node["function"]);
  const bool has_sql = bool(node["sql"]);
  if (has_function == has_sql)
    r.fail(node, where +
                     " needs exactly one of 'function' (a batched transform) or 'sql' "
                     "(a one-shot step)");
  if (has_sql) {
    job.sql = r.string_field(node, "sql", where);
    // The step runs in one transaction with its state row: it may not end that transaction.
    if (const auto control = find_transaction_control(job.sql))
      r.fail(node["sql"], "the sql of the one-shot step " + where + " holds " + control->command +
                              ": a step runs in one transaction with its state row, so that it "
                              "runs once; it may not end or split that transaction");
    for (const char* f : {"table", "key", "batch_size", "target_batch_ms", "min_batch_size",
                          "max_batch_size", "parallel", "on_error", "bisect", "verify",
                          "idempotent", "changes", "refresh_function", "writes"})
      if (node[f])
        r.fail(node[f], "'" + std::string(f) + "' does not apply to the one-shot step " + where);
    return job;
  }
  job.function = r.name_field(node, "function", where);
  job.table = r.name_field(node, "table", where);
  job.key = r.string_field(node, "key", where);
  r.check_identifier(node["key"], job.key, "'key' in " + where);
  if (node["verify"]) job.verify = r.string_field(node, "verify", where);
  if (node["idempotent"]) job.idempotent = r.boolean(node, "idempotent", "idempotent of " + where);
  job.parallel_auto = file.default_parallel_auto;
  if (node["parallel"]) {
    job.parallel_auto = is_auto(node["parallel"]);
    job.parallel =
        job.parallel_auto
            ? 1
            : int(r.positive_integer(node, "parallel", "parallel of " + where, k_parallel.max));
  }
  read_changes(r, node, where, file, job);
  read_writes(r, node, where, job);
  return job;
}

JobList read_list(const Reader& r, const YAML::Node& node, const JobsFile& file) {
  r.expect_map(node, "a list");
  JobList list;
  list.line = Reader::line_of(node);
  list.name = r.string_field(node, "name", "a list", Text::name);
  const std::string where = "list '" + list.name + "'";
  if (const auto flaw = steering_flaw(list.name))
    r.fail(node["name"], "the name of " + where + *flaw);
  r.check_fields(node, {"name", "after", "jobs"}, where);
  if (const YAML::Node after = node["after"]) {
    if (!after.IsSequence()) r.fail(after, "'after' of " + where + " must be a list of names");
    for (const auto& a : after) {
      if (!a.IsScalar() || a.Scalar().empty())
        r.fail(a, "'after' of " + where + " must be a list of list names");
      r.check_text(a, "'after' of " + where, Text::name);
      list.after.push_back(a.Scalar());
    }
  }
  const YAML::Node jobs = node["jobs"];
  if (!jobs) r.fail(node, "missing required field 'jobs' in " + where);
  if (!jobs.IsSequence() || jobs.size() == 0)
    r.fail(jobs, "'jobs' of " + where + " must be a non-empty list");
  for (const auto& j : jobs) list.jobs.push_back(read_job(r, j, file, list.name));
  return list;
}

// Depth-first search for a cycle in `after:`, with a stack of its own rather than recursion, so
// that a chain of any length is walked; the message spells the cycle out.
void check_cycles(const Reader& r, const std::map<std::string, const JobList*>& lists) {
  std::map<std::string, int> mark;  // 0 unvisited, 1 on the path, 2 done
  struct Step {
    const JobList* list;
    std::size_t next;  // the index in list->after to look at next
  };
  for (const auto& [name, start] : lists) {
    if (mark[name] != 0) continue;
    std::vector<Step> path{{start, 0}};
    mark[name] = 1;
    while (!path.empty()) {
      Step& step = path.back();
      if (step.next == step.list->after.size()) {
        mark[step.list->name] = 2;
        path.pop_back();
        continue;
      }
      const std::string& a = step.list->after[step.next++];
      if (mark[a] == 1) {
        std::string cycle;
        auto from = std::find_if(path.begin(), path.end(),
                                 [&](const Step& s) { return s.list->name == a; });
        for (auto it = from; it != path.end(); ++it) cycle += it->list->name + " -> ";
        throw JobsFileError(r.path(), lists.at(a)->line, "'after' forms a cycle: " + cycle + a);
      }
      if (mark[a] == 0) {
        mark[a] = 1;
        path.push_back({lists.at(a), 0});
      }
    }
  }
}

void check_names_and_graph(const Reader& r, const JobsFile& file) {
  std::map<std::string, const Job*> jobs;
  std::map<std::string, const JobList*> lists;
  for (const auto& list : file.lists) {
    if (!lists.emplace(list.name, &list).second)
      throw JobsFileError(r.path(), list.line, "duplicate list name '" + list.name + "'");
    for (const auto& job : list.jobs)
      if (!jobs.emplace(job.name, &job).second)
        throw JobsFileError(r.path(), job.line,
                            "duplicate job name '" + job.name +
                                "' (job names are unique "
                                "across the file; first at line " +
                                std::to_string(jobs[job.name]->line) + ")");
  }
  for (const auto& list : file.lists)
    for (const auto& a : list.after) {
      if (!lists.count(a))
        throw JobsFileError(r.path(), list.line,
                            "list '" + list.name + "' is after unknown list '" + a + "'");
      if (a == list.name)
        throw JobsFileError(r.path(), list.line, "list '" + list.name + "' is after itself");
    }
  check_cycles(r, lists);
}

// The file's jobs and lists, within k_max_jobs.
void check_size(const Reader& r, const JobsFile& file) {
  std::size_t jobs = 0;
  for (const auto& list : file.lists) jobs += list.jobs.size();
  if (jobs > k_max_jobs || file.lists.size() > k_max_jobs)
    throw JobsFileError(r.path(), 0,
                        std::to_string(jobs) + " jobs in " + std::to_string(file.lists.size()) +
                            " lists: a jobs file holds at most " + std::to_string(k_max_jobs) +
                            " of each; split the migration into several files");
}

JobsFile read_file(const Reader& r, const YAML::Node& root);

}  // namespace

JobsFile parse_jobs_text(const std::string& text, const std::string& path) {
  Reader r(path);
  // YAML is UTF-8 text; a NUL or a stray byte is refused here, at its line.
  if (const auto flaw = text_flaw(text))
    throw JobsFileError(path, line_at(text, flaw->offset),
                        "the jobs file holds " + flaw->what + " (it must be UTF-8 text)");
  try {
    const YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) throw JobsFileError(path, 0, "the jobs file must be a YAML mapping");
    JobsFile file = read_file(r, root);
    check_size(r, file);
    check_names_and_graph(r, file);
    return file;
  } catch (const YAML::ParserException& e) {
    throw JobsFileError(path, e.mark.is_null() ? 0 : e.mark.line + 1,
                        "YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    // Whatever else yaml-cpp refuses (a conversion it cannot make) is the file's fault too.
    throw JobsFileError(path, e.mark.is_null() ? 0 : e.mark.line + 1, "YAML error: " + e.msg);
  }
}

namespace {

JobsFile read_file(const Reader& r, const YAML::Node& root) {
  const std::string& path = r.path();
  JobsFile file;
  file.path = path;
  r.check_fields(
      root, {"version", "defaults", "state_schema", "scripts_dir", "max_slot_retained_mb", "lists"},
      "the jobs file");
  const YAML::Node version = root["version"];
  if (!version) r.fail(root, "missing required field 'version' (write `version: 1`)");
  if (!version.IsScalar() || version.Scalar() != "1")
    r.fail(version, "unsupported version '" + (version.IsScalar() ? version.Scalar() : "") +
                        "' (this pgxform reads version 1)");
  if (const YAML::Node defaults = root["defaults"]) {
    r.expect_map(defaults, "'defaults'");
    r.check_fields(defaults,
                   {"batch_size", "target_batch_ms", "min_batch_size", "max_batch_size",
                    "synchronous_commit", "threads", "retries", "retry_backoff_ms", "on_error",
                    "bisect", "throttle", "statement_timeout", "lock_timeout",
                    "idle_in_transaction_session_timeout", "changes", "parallel"},
                   "defaults");
    r.settings(defaults, file.defaults, "defaults");
    if (const YAML::Node changes = defaults["changes"]) {
      const std::optional<ChangeCapture> capture = capture_mode(changes);
      if (!capture)
        r.fail_at(changes.IsScalar() && !changes.IsNull() ? Reader::line_of(changes)
                                                          : Reader::key_line(defaults, "changes"),
                  "defaults.changes must be trigger, logical or none (a job's own changes: may"
                  " add also:)");
      file.default_changes = *capture;
    }
    file.default_batch_size = file.defaults.batch_size;
    if (const YAML::Node parallel = defaults["parallel"]) {
      // Only auto or 1 (the default): fixed slices are cut for one job, not for every job.
      file.default_parallel_auto = is_auto(parallel);
      if (!file.default_parallel_auto &&
          r.positive_integer(defaults, "parallel", "defaults.parallel", k_parallel.max) != 1)
        r.fail(parallel, "defaults.parallel must be auto or 1; give parallel: K to a job itself");
    }
    if (defaults["threads"])
      file.default_threads =
          int(r.positive_integer(defaults, "threads", "defaults.threads", k_threads.max));
  }
  if (root["state_schema"]) {
    file.state_schema = r.string_field(root, "state_schema", "the file", Text::name);
    r.check_identifier(root["state_schema"], file.state_schema, "'state_schema'");
    // PostgreSQL reserves these for itself ("unacceptable schema name").
    if (file.state_schema.rfind("pg_", 0) == 0 || file.state_schema == "information_schema")
      r.fail(root["state_schema"], "'state_schema' may not be " + file.state_schema +
                                       ": names starting with pg_ and information_schema are "
                                       "PostgreSQL's own");
  }
  if (root["max_slot_retained_mb"])
    file.max_slot_retained_mb = r.positive_integer(root, "max_slot_retained_mb",
                                                   "max_slot_retained_mb", k_max_slot_retained_mb);
  {
    // Scripts live beside the jobs file unless it says otherwise.
    const std::filesystem::path folder = std::filesystem::path(path).parent_path();
    const std::string dir =
        root["scripts_dir"] ? r.string_field(root, "scripts_dir", "the file") : "sql";
    file.scripts_dir = std::filesystem::path(dir).is_absolute() ? dir : (folder / dir).string();
  }
  const YAML::Node lists = root["lists"];
  if (!lists) r.fail(root, "missing required field 'lists'");
  if (!lists.IsSequence() || lists.size() == 0) r.fail(lists, "'lists' must be a non-empty list");
  for (const auto& l : lists) file.lists.push_back(read_list(r, l, file));
  return file;
}

}  // namespace

JobsFile parse_jobs_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw JobsFileError(path, 0, "cannot read the jobs file");
  std::string text(k_max_file_bytes + 1, '\0');
  in.read(text.data(), std::streamsize(text.size()));
  text.resize(std::size_t(in.gcount()));
  if (text.size() > k_max_file_bytes)
    throw JobsFileError(path, 0,
                        "the jobs file is larger than " +
                            std::to_string(k_max_file_bytes / (1024 * 1024)) +
                            " MB; split the migration into several files");
  return parse_jobs_text(text, path);
}

}  // namespace pgxform
