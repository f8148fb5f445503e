// validate_command: `pgxform validate` — every check of run's preflight (jobs file, tables,
// keys, functions and their signatures, slices and function versions against the state), and
// warnings for what would make a run slow or wrong: the key has no btree index whose first
// column is the key (each batch would scan the table), the leading table was never analyzed,
// the key holds NULLs, the function is not VOLATILE, the leading table's pages are mostly not
// all-visible (a table of k_vacuum_advice_pages or more: each batch's bound walk reads them). A
// throttle limit whose signal the role cannot see (health_throttle.h: throttle_blind_spots) is a
// problem, as in run's preflight. The session is read-only: it cannot write, and never creates the
// state schema. Exit 0 (warnings allowed), or 2 with every problem listed: the warnings and a
// summary line are the report (stdout), the problems are reported by the command line as input
// errors (stderr, or JSON log lines under --log-format json).
//
// fetch (the catalog, table_stats, the state) -> compute (job_warnings, pure) -> render
// (print_validation: the warnings and the summary).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/table_stats.h"
#include "commands/command_options.h"
#include "plan/jobs_file.h"

namespace pgxform {

struct ValidateOptions : CommandOptions {};

int validate_command(const ValidateOptions& options, std::ostream& out);

// A missing function that a pending script would create is not a mistake in the jobs file:
// the scripts have not been applied yet. Adds to each such problem which script creates the
// function and what to run. validate and plan both say it.
void hint_pending_scripts(pqxx::connection& conn, const JobsFile& file,
                          std::vector<std::string>& problems);

// Below this many pages (8 MB) a table's visibility map is not worth a warning.
inline constexpr long long k_vacuum_advice_pages = 1000;

// The warnings about a resolved job that only make a run slow or surprising.
std::vector<std::string> job_warnings(const JobsFile& file, const ResolvedJob& job,
                                      const TableHealth& health);

struct Validation {
  std::vector<std::string> problems;
  std::vector<std::string> warnings;
};
void print_validation(std::ostream& out, const JobsFile& file, const Validation& validation);

}  // namespace pgxform
