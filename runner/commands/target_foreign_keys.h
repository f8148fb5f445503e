// target_foreign_keys: validate's warning about a foreign key between the targets of two jobs
// that capture changes. While the source is live, catch-up refreshes each job's changed keys
// on its own, in no order across jobs: a new order may be refreshed before its new customer,
// and a foreign key between the two targets refuses it (SQLSTATE 23503), failing catch-up. The
// key belongs in a script of the window, after the final catch-up (docs/catch-up.md).
//
// A job's targets: its `writes:` (jobs_file.h; init fills it for the functions it generates),
// else, for a function with a SQL-standard body (BEGIN ATOMIC, whose dependencies PostgreSQL
// records in pg_depend), the tables it depends on outside the schemas of the jobs' leading
// tables (which are the source's: a function reads those). A function with a string body
// (LANGUAGE plpgsql, or sql AS $$...$$) and no `writes:` has no known targets.
#pragma once

#include <map>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "plan/jobs_file.h"

namespace pgxform {

// A foreign key of a table that job `from_job` writes to one that `to_job` writes.
struct TargetForeignKey {
  std::string from_job, to_job;
  std::string constraint;            // its name, quoted where it needs it
  std::string from_table, to_table;  // schema.table, quoted where they need it
};

// Every such key between two different capturing jobs of `jobs`, by the jobs' order of names.
std::vector<TargetForeignKey> target_foreign_keys(pqxx::transaction_base& tx, const JobsFile& file,
                                                  const std::map<std::string, ResolvedJob>& jobs);

// validate's warning for one, naming both jobs, the key and where to move it.
std::string target_foreign_key_warning(const JobsFile& file, const TargetForeignKey& key);

}  // namespace pgxform
