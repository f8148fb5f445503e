#include "state/job_identity.h"

#include <spdlog/spdlog.h>

#include "base/errors.h"
#include "base/sql_text.h"
#include "base/text_check.h"
#include "state/state_locks.h"

namespace pgxform {

namespace {

// A name for a message: the record may have been written by any SQL session.
std::string shown(const std::string& schema, const std::string& name) {
  return printable(schema) + "." + printable(name);
}

JobIdentity identity_from(const pqxx::row& r, int first) {
  JobIdentity id;
  id.table_schema = r[first].as<std::string>();
  id.table_name = r[first + 1].as<std::string>();
  id.key_column = r[first + 2].as<std::string>();
  id.key_type = r[first + 3].as<std::string>();
  id.function_schema = r[first + 4].as<std::string>();
  id.function_name = r[first + 5].as<std::string>();
  return id;
}

std::string problem_of(const JobsFile& file, const std::string& name, const JobIdentity& now,
                       const RecordedJob& recorded) {
  const Job* spec = file.find_job(name);
  return file.path + ":" + std::to_string(spec ? spec->line : 0) + ": job '" + name +
         "' was recorded on " + recorded.identity.text() + " and now names " + now.text() +
         ": its recorded state (" + printable(recorded.status) +
         ") is another job's. Start it over with `pgxform reset " + name +
         "`, or give the job a name of its own";
}

}  // namespace

std::string JobIdentity::table_text() const {
  return shown(table_schema, table_name);
}

std::string JobIdentity::text() const {
  return table_text() + " by " + printable(key_column) + " (" + printable(key_type) + ") through " +
         shown(function_schema, function_name);
}

bool JobIdentity::same_source(const JobIdentity& o) const {
  return table_schema == o.table_schema && table_name == o.table_name &&
         key_column == o.key_column && function_schema == o.function_schema &&
         function_name == o.function_name;
}

JobIdentity identity_of(const ResolvedJob& job) {
  return {job.table_schema, job.table_name,      job.key_name,
          job.key_type,     job.function_schema, job.function_name};
}

std::map<std::string, RecordedJob> read_identities(pqxx::transaction_base& tx,
                                                   const StateSchema& schema) {
  std::map<std::string, RecordedJob> out;
  if (!has_feature(state_version(tx, schema), StateFeature::job_identity)) return out;
  static const std::string k_sql = R"(
    SELECT job, status, table_schema, table_name, key_column, key_type, function_schema,
           function_name
    FROM @job_state@
    WHERE table_schema IS NOT NULL AND table_name IS NOT NULL AND key_column IS NOT NULL
      AND key_type IS NOT NULL AND function_schema IS NOT NULL AND function_name IS NOT NULL)";
  for (const auto& r : tx.exec(fill_sql(k_sql, {{"@job_state@", schema.table("job_state")}})))
    out[r[0].as<std::string>()] = {identity_from(r, 2), r[1].as<std::string>()};
  return out;
}

std::vector<std::string> identity_problems(const JobsFile& file,
                                           const std::map<std::string, ResolvedJob>& jobs,
                                           const std::map<std::string, RecordedJob>& recorded) {
  std::vector<std::string> problems;
  for (const auto& [name, job] : jobs) {
    const auto it = recorded.find(name);
    const JobIdentity now = identity_of(job);
    if (it != recorded.end() && !it->second.identity.same_source(now))
      problems.push_back(problem_of(file, name, now, it->second));
  }
  return problems;
}

void check_identities(pqxx::connection& conn, const StateSchema& schema, const JobsFile& file,
                      const std::map<std::string, ResolvedJob>& jobs) {
  std::map<std::string, RecordedJob> recorded;
  {
    pqxx::read_transaction tx(conn);
    recorded = read_identities(tx, schema);
  }
  const std::vector<std::string> problems = identity_problems(file, jobs, recorded);
  if (!problems.empty()) throw PreflightError(problems);
}

void check_identities(pqxx::connection& conn, const StateSchema& schema, const JobsFile& file,
                      const std::vector<ResolvedJob>& jobs) {
  std::map<std::string, ResolvedJob> by_name;
  for (const auto& job : jobs) by_name.emplace(job.name, job);
  check_identities(conn, schema, file, by_name);
}

void pin_identities(pqxx::connection& conn, const StateSchema& schema, const JobsFile& file,
                    const std::map<std::string, ResolvedJob>& jobs) {
  // $1 the job; $2..$7 its table's schema and name, key column, key type, function's schema
  // and name. A record is written where there is none, or where only the key's type changed.
  static const std::string k_pin = R"(
    UPDATE @job_state@
    SET table_schema = $2, table_name = $3, key_column = $4, key_type = $5,
        function_schema = $6, function_name = $7
    WHERE job = $1 AND (table_schema, table_name, key_column, key_type, function_schema,
                        function_name) IS DISTINCT FROM ($2, $3, $4, $5, $6, $7))";
  pqxx::work tx(conn);
  transaction_lock(tx, setup_lock(schema));
  const std::map<std::string, RecordedJob> recorded = read_identities(tx, schema);
  // Another command may have recorded a job since this one's check: it is refused all the same.
  const std::vector<std::string> problems = identity_problems(file, jobs, recorded);
  if (!problems.empty()) throw PreflightError(problems);
  const std::string sql = fill_sql(k_pin, {{"@job_state@", schema.table("job_state")}});
  for (const auto& [name, job] : jobs) {
    const JobIdentity id = identity_of(job);
    const auto it = recorded.find(name);
    if (it != recorded.end() && it->second.identity.key_type != id.key_type)
      spdlog::warn(
          "job '{}': its key {} is of type {} now, recorded as {}: its cursor goes on in the new "
          "type",
          name, printable(id.key_column), printable(id.key_type),
          printable(it->second.identity.key_type));
    tx.exec_params(sql, name, id.table_schema, id.table_name, id.key_column, id.key_type,
                   id.function_schema, id.function_name);
  }
  tx.commit();
}

void forget_identity(pqxx::transaction_base& tx, const StateSchema& schema,
                     const std::string& job) {
  static const std::string k_sql = R"(
    UPDATE @job_state@
    SET table_schema = NULL, table_name = NULL, key_column = NULL, key_type = NULL,
        function_schema = NULL, function_name = NULL
    WHERE job = $1)";
  tx.exec_params(fill_sql(k_sql, {{"@job_state@", schema.table("job_state")}}), job);
}

}  // namespace pgxform
