// preflight_commands: `pgxform validate` and `pgxform plan` — what a run would check and do,
// before the migration window. Both open their session read-only
// (default_transaction_read_only), so they cannot write, and never create the state schema.
//
// validate: every check of run's preflight (jobs file, tables, keys, functions and their
//   signatures, slices and function versions against the state), and warnings for what would
//   make a run slow or wrong: the key has no btree index whose first column is the key (each
//   batch would scan the table), the leading table was never analyzed, the key holds NULLs,
//   the function is not VOLATILE. Exit 0 (warnings allowed), or 2 with every problem listed.
// plan: the lists and jobs as the run would schedule them — stages of lists by `after:`,
//   estimated rows (pg_class.reltuples) and batches per job, slices, threads. `--json` prints
//   {"threads": N, "lists": [{"name", "after", "stage", "jobs": [{"name", "kind", "table",
//   "key", "function", "sql", "batch_size", "parallel", "estimated_rows", "estimated_batches",
//   "status"}]}]}.
#pragma once

#include <ostream>
#include <string>

namespace pgxform {

struct PreflightOptions {
  std::string file = "jobs.yaml";
  std::string dsn;
  int threads = 0;  // plan: 0 means defaults.threads of the file
  bool json = false;
};

int validate_command(const PreflightOptions& options, std::ostream& out);
int plan_command(const PreflightOptions& options, std::ostream& out);

}  // namespace pgxform
