#include "commands/script_commands.h"

#include <algorithm>
#include <iomanip>

#include "base/exit_code.h"
#include "base/output_format.h"
#include "database/database.h"
#include "output/terminal_text.h"

namespace pgxform {

namespace {

// The command's migrator, on a connection of its own, for `body` to use.
template <typename Body>
int with_migrator(const CommandOptions& options, Body body) {
  const JobsFile file = parse_jobs_file(options.file);
  auto conn = connect(options.dsn);
  ScriptMigrator migrator(*conn, file.state_schema, file.scripts_dir);
  body(migrator, file);
  return k_exit_ok;
}

}  // namespace

int migrate_command(const CommandOptions& options, std::ostream& out) {
  return with_migrator(options, [&](ScriptMigrator& migrator, const JobsFile& file) {
    print_applied(out, file.scripts_dir, migrator.migrate());
  });
}

int info_command(const CommandOptions& options, std::ostream& out) {
  return with_migrator(options, [&](ScriptMigrator& migrator, const JobsFile&) {
    print_script_states(out, migrator.info());
  });
}

int repair_command(const CommandOptions& options, std::ostream& out) {
  return with_migrator(options, [&](ScriptMigrator& migrator, const JobsFile&) {
    print_repair(out, migrator.repair());
  });
}

void migrate_pending(const std::string& dsn, const JobsFile& file,
                     std::chrono::milliseconds lock_timeout) {
  // No script to apply, no connection to open: a scripts_dir without scripts (or none at all)
  // leaves only `missing` ones, which a run does not act on.
  if (scan_scripts(file.scripts_dir).empty()) return;
  auto conn = connect(dsn);
  ScriptMigrator migrator(*conn, file.state_schema, file.scripts_dir, lock_timeout);
  const auto states = migrator.info();
  if (std::any_of(states.begin(), states.end(), [](const ScriptStatus& s) {
        return s.state != ScriptState::applied && s.state != ScriptState::missing;
      }))
    migrator.migrate();
}

void print_applied(std::ostream& out, const std::string& dir,
                   const std::vector<std::string>& applied) {
  out << applied.size() << " script(s) applied from " << dir << "\n";
  for (const auto& a : applied) out << "  " << terminal_text(a) << "\n";
}

void print_script_states(std::ostream& out, const std::vector<ScriptStatus>& states) {
  out << std::left << std::setw(40) << "SCRIPT" << std::setw(10) << "VERSION" << std::setw(10)
      << "STATE" << std::setw(32) << "APPLIED AT"
      << "DURATION\n";
  for (const auto& s : states) {
    // A missing script is named by the history, which any role that may write it can fill.
    out << std::left << std::setw(40) << terminal_text(s.script.file) << std::setw(10)
        << (s.script.version.empty() ? "-" : terminal_text(s.script.version)) << std::setw(10)
        << state_name(s.state) << std::setw(32) << terminal_text(s.applied_at.value_or("-"))
        << (s.duration_ms ? fixed(*s.duration_ms, 0) + " ms" : "") << "\n";
    if (s.state == ScriptState::conflict)
      out << "    version " << terminal_text(s.script.version) << " was applied as "
          << terminal_text(s.applied_as.value_or("?"))
          << ": a different script (pgxform migrate says what to do)\n";
  }
}

void print_repair(std::ostream& out, const RepairResult& result) {
  for (const auto& u : result.updated) out << "checksum updated: " << terminal_text(u) << "\n";
  for (const auto& m : result.missing)
    out << "missing from disk (left as is): " << terminal_text(m) << "\n";
  out << result.updated.size() << " script(s) repaired\n";
}

}  // namespace pgxform
