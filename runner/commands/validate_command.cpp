#include "commands/validate_command.h"

#include <algorithm>
#include <cctype>

#include "base/exit_code.h"
#include "capture/capture_check.h"
#include "capture/capture_setup.h"
#include "capture/logical_capture.h"
#include "commands/target_foreign_keys.h"
#include "database/database.h"
#include "engine/health_throttle.h"
#include "engine/script_migrator.h"
#include "output/terminal_text.h"
#include "state/capture_state.h"
#include "state/state_store.h"

namespace pgxform {

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return text;
}

// Whether `script` creates `function` (schema.name as the jobs file names it): a CREATE [OR
// REPLACE] FUNCTION of that name, with or without the schema, quoted or not, case folded as
// PostgreSQL folds unquoted names. A hint, not a parse: comments and strings are not skipped.
bool creates_function(const std::string& script, const QualifiedName& function) {
  std::string text = lower(script);
  text.erase(std::remove(text.begin(), text.end(), '"'), text.end());
  const std::string name = lower(function.name);
  const std::string qualified =
      function.schema.empty() ? name : lower(function.schema) + "." + name;
  for (std::size_t at = text.find("function"); at != std::string::npos;
       at = text.find("function", at + 1)) {
    // The words before it: CREATE, or CREATE OR REPLACE.
    const std::size_t end = text.find_last_not_of(" \t\r\n", at == 0 ? 0 : at - 1);
    const std::string before = end == std::string::npos ? "" : text.substr(0, end + 1);
    const auto ends_with = [&](const std::string& word) {
      return before.size() >= word.size() &&
             before.compare(before.size() - word.size(), word.size(), word) == 0;
    };
    if (at == 0 || !(ends_with("create") || ends_with("replace"))) continue;
    std::size_t start = text.find_first_not_of(" \t\r\n", at + 8);
    if (start == std::string::npos) break;
    for (const std::string& candidate : {qualified, name})
      if (text.compare(start, candidate.size(), candidate) == 0 &&
          (start + candidate.size() == text.size() ||
           !(std::isalnum((unsigned char)text[start + candidate.size()]) ||
             text[start + candidate.size()] == '_')))
        return true;
  }
  return false;
}

}  // namespace

void hint_pending_scripts(pqxx::connection& conn, const JobsFile& file,
                          std::vector<std::string>& problems) {
  std::vector<std::pair<std::string, std::string>> pending;  // file name, text
  try {
    ScriptMigrator migrator(conn, file.state_schema, file.scripts_dir);
    for (const auto& s : migrator.info())
      if ((s.state == ScriptState::pending || s.state == ScriptState::changed) &&
          !s.script.path.empty())
        pending.emplace_back(s.script.file, read_script(s.script.path));
  } catch (const std::exception&) {
    return;  // unreadable scripts: `info` and `migrate` say why; the problems stand as they are
  }
  for (const auto& list : file.lists)
    for (const auto& job : list.jobs) {
      if (job.is_step()) continue;
      const std::string missing = "function " + job.function.text() + " does not exist";
      const auto creator = std::find_if(pending.begin(), pending.end(), [&](const auto& script) {
        return creates_function(script.second, job.function);
      });
      if (creator == pending.end()) continue;
      for (auto& problem : problems)
        if (problem.find(missing) != std::string::npos)
          problem += " (pending script " + creator->first +
                     " creates it: run pgxform migrate, or pgxform run, which applies it)";
    }
}

std::vector<std::string> job_warnings(const JobsFile& file, const ResolvedJob& job,
                                      const TableHealth& health) {
  const Job& spec = *file.find_job(job.name);
  const std::string where =
      file.path + ":" + std::to_string(spec.line) + ": job '" + job.name + "'";
  const std::string table = job.table_schema + "." + job.table_name;
  std::vector<std::string> warnings;
  if (!health.key_index)
    warnings.push_back(where + ": no btree index on " + table + " starts with the key " +
                       job.key_name + ": each batch would scan the table. CREATE INDEX ON " +
                       job.table_sql + " (" + job.key_sql + ")");
  if (!health.analyzed)
    warnings.push_back(where + ": " + table + " has not been analyzed since it was loaded: run " +
                       "ANALYZE " + job.table_sql + " so that the planner knows its size");
  // A table of some size whose pages are mostly not all-visible (loaded and not vacuumed since):
  // each batch's bound is found by a walk of the key index that then reads the table's pages
  // too, two to three times the cost of an index-only walk.
  if (health.pages >= k_vacuum_advice_pages && health.all_visible_pages * 2 < health.pages)
    warnings.push_back(where + ": " + table + " has " +
                       std::to_string(health.all_visible_pages * 100 / health.pages) +
                       " % of its pages all-visible: each batch's bound, found on the key's "
                       "index, reads the table too. VACUUM " +
                       job.table_sql + " before the run");
  // Slices of less than a batch each: threads that mostly wait on each other's commits.
  if (job.parallel > 1 && health.estimated_rows &&
      *health.estimated_rows / job.parallel < double(job.batch_size))
    warnings.push_back(where + ": parallel: " + std::to_string(job.parallel) + " cuts about " +
                       std::to_string((long long)(*health.estimated_rows)) +
                       " rows into slices of less than one batch of " +
                       std::to_string(job.batch_size) + " each; fewer slices would do");
  if (job.function_volatility != 'v')
    warnings.push_back(where + ": function " + job.function_sql + " is declared " +
                       (job.function_volatility == 'i' ? "IMMUTABLE" : "STABLE") +
                       ": a transform that writes must be VOLATILE, or the planner may fold, "
                       "cache or reject its calls");
  return warnings;
}

namespace {

// The capture of the capturing jobs: what the server and the role lack for it (errors); a
// capture not in place, lost, or whose slot retains too much WAL, capture no job of the file
// uses, and a foreign key between two capturing jobs' targets (warnings).
void check_capture(pqxx::connection& conn, const JobsFile& file,
                   const std::map<std::string, ResolvedJob>& jobs, Validation& v) {
  for (std::string& p : capture_problems(conn, file, jobs)) v.problems.push_back(p);
  const StateSchema schema(file.state_schema);
  std::set<std::string> started;
  for (const JobStatus& s : StateStore(conn, schema).read_status())
    if (s.batches_done > 0 || s.status == "done") started.insert(s.job);
  pqxx::read_transaction tx(conn);
  const std::map<std::string, std::string> lost = captures_lost(tx, schema);
  for (const auto& [name, job] : jobs) {
    if (!job.captures) continue;
    const std::string where =
        file.path + ":" + std::to_string(file.find_job(name)->line) + ": job '" + name + "'";
    if (const auto it = lost.find(name); it != lost.end())
      v.warnings.push_back(where + ": its change log lacks changes: " + it->second +
                           "; pgxform reset " + name + " and run re-cover them");
    const std::optional<std::string> missing = capture_missing(tx, schema, job);
    if (!missing) continue;
    if (started.count(name))
      v.warnings.push_back(where + ": capture missing: " + *missing + ": `pgxform capture " + name +
                           "` installs it again; what changed meanwhile is in no log");
    else
      v.warnings.push_back(where + ": changes: " + capture_name(job.capture) + ", but " + *missing +
                           " yet: `pgxform capture " + name +
                           "` installs it (run does before the job's first batch)");
  }
  if (const auto slot = slot_figures(tx, schema);
      slot && slot->retained_mb && *slot->retained_mb > double(file.max_slot_retained_mb))
    v.warnings.push_back(file.path + ": slot " + slot->slot + " retains " +
                         std::to_string(static_cast<long long>(*slot->retained_mb)) +
                         " MB of WAL, more than max_slot_retained_mb (" +
                         std::to_string(file.max_slot_retained_mb) +
                         "): read it (pgxform catch-up), or drop it (pgxform capture --drop)");
  for (const TargetForeignKey& key : target_foreign_keys(tx, file, jobs))
    v.warnings.push_back(target_foreign_key_warning(file, key));
  tx.commit();
  for (const std::string& orphan : capture_orphans(conn, file))
    v.warnings.push_back(file.path + ": " + orphan +
                         ", which no capturing job of this file uses: it records every write"
                         " for nobody; pgxform capture --drop --orphans removes it");
}

}  // namespace

void print_validation(std::ostream& out, const JobsFile& file, const Validation& validation) {
  for (const auto& w : validation.warnings)
    out << "warning: " << terminal_text(w, Lines::indented) << "\n";
  size_t jobs = 0;
  for (const auto& list : file.lists) jobs += list.jobs.size();
  out << file.path << ": " << jobs << " jobs in " << file.lists.size() << " lists, "
      << validation.problems.size() << " error(s), " << validation.warnings.size()
      << " warning(s)\n";
}

namespace {

// Everything validate checks, read on the read-only session `conn`.
Validation read_validation(pqxx::connection& conn, const JobsFile& file) {
  const Preflight preflight = inspect_catalog(conn, file, {});
  Validation v{preflight.problems, preflight.warnings};
  if (!v.problems.empty()) hint_pending_scripts(conn, file, v.problems);
  for (const auto& [name, job] : preflight.jobs) {
    pqxx::read_transaction tx(conn);
    for (auto& w : job_warnings(file, job, table_health(tx, job))) v.warnings.push_back(w);
  }
  const StateSchema schema(file.state_schema);
  check_capture(conn, file, preflight.jobs, v);
  {
    // A throttle the role cannot see through would never hold a batch back.
    std::vector<std::string> batched;
    for (const auto& [name, job] : preflight.jobs) batched.push_back(name);
    pqxx::read_transaction tx(conn);
    for (auto& p : throttle_blind_spots(tx, file, batched)) v.problems.push_back(std::move(p));
  }
  StateStore store(conn, schema);
  for (const auto& p : store.changed_functions(preflight.jobs, {})) v.problems.push_back(p);
  for (const auto& [name, job] : preflight.jobs)
    if (auto problem = store.slicing_problem(job))
      v.problems.push_back(file.path + ": " + *problem);
  return v;
}

}  // namespace

int validate_command(const ValidateOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  auto conn = connect(options.dsn, Access::read_only);
  const Validation v = read_validation(*conn, file);
  print_validation(out, file, v);
  if (v.problems.empty()) return k_exit_ok;
  // Reported by the command line as every input error is (on stderr, or as JSON log lines
  // under --log-format json), after the report: exit 2.
  std::vector<std::string> problems;
  for (const auto& p : v.problems) problems.push_back("error: " + p);
  throw InputError(problems);
}

}  // namespace pgxform
