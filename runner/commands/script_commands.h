// script_commands: `pgxform migrate`, `info` and `repair` — the SQL scripts of the jobs file's
// scripts_dir (script_migrator.h) — and the migration a run does first.
//   migrate  applies the pending V scripts and new or changed R scripts; lists what it applied;
//   info     lists every script with its state, when it was applied and how long it took;
//            reads only, and creates nothing, not even the state schema;
//   repair   accepts the new content of changed, applied V scripts; lists what it changed.
// Each runs on a connection of its own: a SET in a script lasts for its session.
#pragma once

#include <chrono>
#include <ostream>
#include <string>
#include <vector>

#include "commands/command_options.h"
#include "engine/script_migrator.h"
#include "plan/jobs_file.h"

namespace pgxform {

int migrate_command(const CommandOptions& options, std::ostream& out);
int info_command(const CommandOptions& options, std::ostream& out);
int repair_command(const CommandOptions& options, std::ostream& out);

// What `run` does first (unless --no-migrate): reads the scripts' states and applies them only
// when something is pending, so that a run with nothing to apply writes nothing yet. Waits at
// most `lock_timeout` for another session applying scripts.
void migrate_pending(const std::string& dsn, const JobsFile& file,
                     std::chrono::milliseconds lock_timeout = std::chrono::seconds(60));

// Rendering, pure.
void print_applied(std::ostream& out, const std::string& dir,
                   const std::vector<std::string>& applied);
void print_script_states(std::ostream& out, const std::vector<ScriptStatus>& states);
void print_repair(std::ostream& out, const RepairResult& result);

}  // namespace pgxform
