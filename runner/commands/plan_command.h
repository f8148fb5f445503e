// plan_command: `pgxform plan` — the lists and jobs as the run would schedule them: stages of
// lists by `after:` (stage 1: after nothing; else one more than the latest list it is after),
// estimated rows (the planner's estimate, table_stats.h) and batches per job, slices, threads,
// and each job's status. The session is read-only (default_transaction_read_only): it cannot
// write, and never creates the state schema. Problems found against the catalog go to stderr
// (so that --json stays valid JSON) and make the exit code 2.
//
// --json prints {"threads": N, "lists": [{"name", "after", "stage", "jobs": [{"name", "kind",
// "table", "key", "function", "sql", "batch_size", "parallel", "estimated_rows",
// "estimated_batches", "changes", "refresh_function", "status"}]}]}: a step has "sql", a batched
// job the rest; "changes" is "trigger" for a job whose changes are captured for catch-up
// (docs/catch-up.md), else null, like its "refresh_function".
//
// fetch (the catalog, the state, the estimates) -> compute (compute_plan, pure) -> render
// (print_plan_text, print_plan_json).
#pragma once

#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "commands/command_options.h"
#include "plan/jobs_file.h"

namespace pgxform {

enum class PlanFormat { text, json };

struct PlanOptions : CommandOptions {
  int threads = 0;  // 0: defaults.threads of the file
  PlanFormat format = PlanFormat::text;
};

int plan_command(const PlanOptions& options, std::ostream& out);

// Stage of each list, by name. Iterative: a chain of any length of `after:` is walked without
// recursion.
std::map<std::string, int> list_stages(const JobsFile& file);

struct PlannedJobRow {
  const Job* job = nullptr;
  std::string status;             // "pending" when never started
  std::optional<long long> rows;  // batched jobs whose table has an estimate
  std::optional<long long> batches;
};

struct PlannedListRow {
  const JobList* list = nullptr;
  int stage = 1;
  std::vector<PlannedJobRow> jobs;
};

struct PlanReport {
  std::string file;
  int threads = 1;
  int stages = 0;
  std::vector<PlannedListRow> lists;  // in file order
};

// `status`: each recorded job's status; `rows`: each batched job's estimated rows, when known.
PlanReport compute_plan(const JobsFile& file, int threads,
                        const std::map<std::string, std::string>& status,
                        const std::map<std::string, double>& rows);

void print_plan_text(std::ostream& out, const PlanReport& plan);
void print_plan_json(std::ostream& out, const PlanReport& plan);

}  // namespace pgxform
