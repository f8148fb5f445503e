#include "commands/target_foreign_keys.h"

#include "state/change_log.h"

namespace pgxform {

namespace {

// The tables a function with a SQL-standard body depends on (pg_depend), outside the schemas
// of the leading tables $2: $1 the function's signature.
const char* const k_depended_tables_sql = R"(
SELECT DISTINCT pg_catalog.format('%I.%I', n.nspname, c.relname)
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class c ON c.oid = d.refobjid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
  AND d.objid = pg_catalog.to_regprocedure($1)
  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
  AND c.relkind IN ('r', 'p')
  AND c.relnamespace <> ALL (ARRAY(
    SELECT s.relnamespace FROM pg_catalog.pg_class s
    WHERE s.oid = ANY (ARRAY(SELECT pg_catalog.to_regclass(t) FROM pg_catalog.unnest($2::text[]) t))))
ORDER BY 1)";

// The foreign keys from a table of one job to a table of another: $1 the jobs, $2 their tables
// (one job per table, in step).
const char* const k_between_sql = R"(
WITH w AS (
  SELECT u.job, pg_catalog.to_regclass(u.tab) AS rel
  FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS u(job, tab))
SELECT a.job, b.job, pg_catalog.quote_ident(c.conname),
       c.conrelid::pg_catalog.regclass::text, c.confrelid::pg_catalog.regclass::text
FROM pg_catalog.pg_constraint c
JOIN w a ON a.rel = c.conrelid
JOIN w b ON b.rel = c.confrelid
WHERE c.contype = 'f' AND a.job <> b.job
ORDER BY 1, 2, 3)";

std::vector<std::string> targets_of(pqxx::transaction_base& tx, const Job& job,
                                    const ResolvedJob& resolved,
                                    const std::vector<std::string>& leading_tables) {
  std::vector<std::string> tables;
  for (const auto& w : job.writes) tables.push_back(quote_qualified(w));
  if (!tables.empty()) return tables;
  for (const auto& row : tx.exec_params(
           k_depended_tables_sql,
           resolved.function_sql + "(" + resolved.key_type + ", " + resolved.key_type + ")",
           text_array(leading_tables)))
    tables.push_back(row[0].as<std::string>());
  return tables;
}

}  // namespace

std::vector<TargetForeignKey> target_foreign_keys(pqxx::transaction_base& tx, const JobsFile& file,
                                                  const std::map<std::string, ResolvedJob>& jobs) {
  std::vector<std::string> leading_tables;
  for (const auto& [name, job] : jobs) leading_tables.push_back(job.table_sql);
  std::vector<std::string> job_of, table_of;
  for (const auto& [name, resolved] : jobs) {
    const Job* job = file.find_job(name);
    if (!resolved.captures || !job) continue;
    for (auto& table : targets_of(tx, *job, resolved, leading_tables)) {
      job_of.push_back(name);
      table_of.push_back(std::move(table));
    }
  }
  std::vector<TargetForeignKey> keys;
  if (job_of.size() < 2) return keys;
  for (const auto& row : tx.exec_params(k_between_sql, text_array(job_of), text_array(table_of)))
    keys.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                    row[3].as<std::string>(), row[4].as<std::string>()});
  return keys;
}

std::string target_foreign_key_warning(const JobsFile& file, const TargetForeignKey& key) {
  const Job* job = file.find_job(key.from_job);
  return file.path + ":" + std::to_string(job ? job->line : 0) + ": job '" + key.from_job +
         "': foreign key " + key.constraint + " of " + key.from_table + " references " +
         key.to_table + ", which job '" + key.to_job +
         "' writes; both capture changes, and catch-up refreshes each job's changes on its own, "
         "in no order across jobs, so a row may come before the row it references (SQLSTATE "
         "23503) while the source is live: add that foreign key in a script of the window, "
         "after the final catch-up (docs/catch-up.md)";
}

}  // namespace pgxform
