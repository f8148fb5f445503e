#include "commands/control_command.h"

#include <algorithm>
#include <charconv>

#include "base/errors.h"
#include "base/exit_code.h"
#include "base/name_suggestion.h"
#include "base/setting_limits.h"
#include "database/database.h"
#include "state/state_schema.h"

namespace pgxform {

namespace {

const char* action_name(ControlAction action) {
  switch (action) {
    case ControlAction::pause:
      return "pause";
    case ControlAction::resume:
      return "resume";
    case ControlAction::set:
      break;
  }
  return "set";
}

ControlTarget target_of(const JobsFile& file, const std::string& name, ControlAction action,
                        std::optional<ControlScope> names_are) {
  const std::string command = action_name(action);
  const bool is_list = std::any_of(file.lists.begin(), file.lists.end(),
                                   [&](const JobList& l) { return l.name == name; });
  const Job* job = file.find_job(name);
  if (is_list && job && !names_are)
    throw UsageError(command + ": '" + name + "' is both a list and a job of " + file.path +
                     "; say which: pgxform " + command + " --list " + name +
                     " (every job of the list) or pgxform " + command + " --job " + name);
  if (names_are == ControlScope::list && !is_list)
    throw UsageError(command + ": no list '" + name + "' in " + file.path);
  if (names_are == ControlScope::job && !job)
    throw UsageError(command + ": no job '" + name + "' in " + file.path);
  if (is_list && names_are != ControlScope::job) return {ControlScope::list, name};
  if (job) {
    if (job->is_step())
      throw UsageError(command + ": '" + name +
                       "' is a one-shot step, which runs at once or not at all; name a batched "
                       "job or a list");
    return {ControlScope::job, name};
  }
  std::vector<std::string> known;
  for (const auto& list : file.lists) {
    known.push_back(list.name);
    for (const auto& j : list.jobs) known.push_back(j.name);
  }
  const auto near = suggest_name(name, known);
  throw UsageError(command + ": no list or job '" + name + "' in " + file.path +
                   (near ? "; did you mean '" + *near + "'?" : ""));
}

// KEY=VALUE of `set`: a whole number within the setting's limit, as the jobs file and the
// runners reading the control table hold it to (setting_limits.h).
long long setting_value(const SettingLimit& limit, const std::string& text) {
  long long value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || !limit.contains(value))
    throw UsageError("set: " + std::string(limit.name) + "=" + text +
                     ": must be a whole number from " + std::to_string(limit.min) + " to " +
                     std::to_string(limit.max));
  return value;
}

}  // namespace

std::string ControlTarget::text() const {
  return scope == ControlScope::all ? "every job" : scope_name(scope) + " " + name;
}

ControlRequest parse_control_request(const JobsFile& file, const ControlOptions& options) {
  const std::string command = action_name(options.action);
  ControlRequest request;
  std::vector<std::string> names;
  for (const auto& argument : options.arguments) {
    const auto eq = argument.find('=');
    if (eq == std::string::npos) {
      names.push_back(argument);
      continue;
    }
    if (options.action != ControlAction::set)
      throw UsageError(command + ": '" + argument + "' is a setting; use pgxform set");
    const std::string key = argument.substr(0, eq), text = argument.substr(eq + 1);
    if (text == "default" && key == k_batch_size.name)
      request.clear.batch_size = true;
    else if (text == "default" && key == k_target_batch_ms.name)
      request.clear.target_batch_ms = true;
    else if (text == "default" && key == k_pause_ms.name)
      request.clear.pause_ms = true;
    else if (key == k_batch_size.name)
      request.values.batch_size = setting_value(k_batch_size, text);
    else if (key == k_target_batch_ms.name)
      request.values.target_batch_ms = setting_value(k_target_batch_ms, text);
    else if (key == k_pause_ms.name)
      request.values.pause_ms = setting_value(k_pause_ms, text);
    else
      throw UsageError("set: unknown setting '" + key +
                       "' (settings: batch_size, target_batch_ms, pause_ms; VALUE or default)");
    request.settings_text += (request.settings_text.empty() ? "" : " ") + key + "=" + text;
  }
  if (options.threads || options.threads_default) {
    if (options.action != ControlAction::set)
      throw UsageError(command + ": --threads is a setting; use pgxform set --threads N");
    if (options.threads && !k_threads.contains(*options.threads))
      throw UsageError("set: --threads must be a number of threads from 1 to " +
                       std::to_string(k_threads.max) + ", or default");
    request.threads = options.threads;
    request.clear_threads = options.threads_default;
    // The workers are the runner's, not a job's: names or --all go with KEY=VALUE settings.
    if (request.settings_text.empty()) {
      if (!names.empty() || options.all)
        throw UsageError(
            "set: --threads applies to whole runners; name lists or jobs only "
            "with KEY=VALUE settings");
      return request;
    }
  }
  if (options.action == ControlAction::set && request.settings_text.empty())
    throw UsageError(
        "set: no setting given (KEY=VALUE: batch_size, target_batch_ms, pause_ms; or "
        "--threads N; VALUE default clears one)");
  if (options.all && !names.empty())
    throw UsageError(command + ": name lists or jobs, or --all, not both");
  if (!options.all && names.empty())
    throw UsageError(command + ": name a list or a job, or --all for every job");
  if (options.all) request.targets.push_back({ControlScope::all, ""});
  for (const auto& name : names) {
    ControlTarget t = target_of(file, name, options.action, options.names_are);
    const bool seen = std::any_of(request.targets.begin(), request.targets.end(),
                                  [&](auto& o) { return o.scope == t.scope && o.name == t.name; });
    if (!seen) request.targets.push_back(std::move(t));
  }
  if (options.action != ControlAction::set)
    request.values.paused = options.action == ControlAction::pause;
  return request;
}

int control_command(const ControlOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  const ControlRequest request = parse_control_request(file, options);
  auto conn = connect(options.dsn);
  const StateSchema schema(file.state_schema);
  ensure_state_schema(*conn, schema);
  pqxx::work tx(*conn);
  if (request.threads) write_threads(tx, schema, *request.threads);
  if (request.clear_threads) clear_threads(tx, schema);
  for (const auto& target : request.targets) {
    if (target.scope == ControlScope::all && request.values.paused)
      set_paused_everywhere(tx, schema, *request.values.paused);
    else
      write_control(tx, schema, target.scope, target.name, request.values);
    if (request.clear.any()) clear_control(tx, schema, target.scope, target.name, request.clear);
  }
  tx.commit();
  if (request.threads)
    out << "set threads=" << *request.threads << " for every runner of " << file.path
        << " (state schema " << file.state_schema << ")\n";
  if (request.clear_threads)
    out << "set threads=default for every runner of " << file.path << " (state schema "
        << file.state_schema << "): each goes back to the threads it was started with\n";
  for (const auto& target : request.targets) {
    switch (options.action) {
      case ControlAction::pause:
        out << "paused " << target.text() << "\n";
        break;
      case ControlAction::resume:
        out << "resumed " << target.text() << "\n";
        break;
      case ControlAction::set:
        out << "set " << request.settings_text << " for " << target.text() << "\n";
        break;
    }
  }
  out << "running runners apply it before their next batch (within a second)\n";
  return k_exit_ok;
}

}  // namespace pgxform
