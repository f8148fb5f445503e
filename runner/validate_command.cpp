#include "validate_command.h"

#include "database.h"
#include "exit_code.h"
#include "state_store.h"

namespace pgxform {

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

void print_validation(std::ostream& out, const JobsFile& file, const Validation& validation) {
  for (const auto& w : validation.warnings) out << "warning: " << w << "\n";
  for (const auto& p : validation.problems) out << "error: " << p << "\n";
  size_t jobs = 0;
  for (const auto& list : file.lists) jobs += list.jobs.size();
  out << file.path << ": " << jobs << " jobs in " << file.lists.size() << " lists, "
      << validation.problems.size() << " error(s), " << validation.warnings.size()
      << " warning(s)\n";
}

int validate_command(const ValidateOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  auto conn = connect(options.dsn, Access::read_only);
  const Preflight preflight = inspect_catalog(*conn, file, {});
  Validation v{preflight.problems, preflight.warnings};
  for (const auto& [name, job] : preflight.jobs) {
    pqxx::read_transaction tx(*conn);
    for (auto& w : job_warnings(file, job, table_health(tx, job))) v.warnings.push_back(w);
  }
  StateStore store(*conn, StateSchema(file.state_schema));
  for (const auto& p : store.changed_functions(preflight.jobs, {})) v.problems.push_back(p);
  for (const auto& [name, job] : preflight.jobs)
    if (auto problem = store.slicing_problem(job))
      v.problems.push_back(file.path + ": " + *problem);
  print_validation(out, file, v);
  return v.problems.empty() ? k_exit_ok : k_exit_usage;
}

}  // namespace pgxform
