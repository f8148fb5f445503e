#include "state/failed_ranges.h"

#include "base/sql_text.h"

namespace pgxform {

std::string set_aside_sql(const StateSchema& schema, Slicing slicing) {
  return "WITH c AS (" + cursor_skip_sql(schema, slicing) + "), f AS (INSERT INTO " +
         schema.table("failed_batches") +
         " (job, slice, first_key, last_key, sqlstate, error)"
         " SELECT $3, $4, $2::text, $5, $6::text, $7::text FROM c RETURNING 1)"
         " SELECT (SELECT pg_catalog.count(*) FROM c) AS moved, (SELECT pg_catalog.count(*) FROM "
         "f) AS recorded";
}

std::vector<FailedRange> unresolved_ranges(pqxx::transaction_base& tx, const StateSchema& schema,
                                           const std::string& job, SetAsideKind which) {
  std::vector<FailedRange> out;
  const int version = state_version(tx, schema);
  if (!has_feature(version, StateFeature::failed_batches)) return out;
  static const std::string k_unresolved = R"(
    SELECT id, slice, first_key, last_key, @catch_up@ AS catch_up FROM @failed_batches@ f
    WHERE job = $1 AND resolved_at IS NULL @which@ ORDER BY id)";
  const bool kinds = has_feature(version, StateFeature::exact);
  std::string condition;
  if (which != SetAsideKind::any)
    condition = kinds ? (which == SetAsideKind::catch_up ? "AND f.catch_up" : "AND NOT f.catch_up")
                      : (which == SetAsideKind::catch_up ? "AND false" : "");
  const std::string sql =
      fill_sql(k_unresolved, {{"@catch_up@", kinds ? "f.catch_up" : "false"},
                              {"@which@", condition},
                              {"@failed_batches@", schema.table("failed_batches")}});
  for (const auto& row : tx.exec_params(sql, job))
    out.push_back({row[0].as<long long>(), row[1].as<int>(), row[2].as<std::string>(),
                   row[3].as<std::string>(), row[4].as<bool>()});
  return out;
}

bool take_range(pqxx::transaction_base& tx, const StateSchema& schema, long long id) {
  // SKIP LOCKED: a range that another retry-failed is working on is its business.
  return !tx.exec_params("SELECT 1 FROM " + schema.table("failed_batches") +
                             " WHERE id = $1 AND resolved_at IS NULL FOR UPDATE SKIP LOCKED",
                         id)
              .empty();
}

void resolve_range(pqxx::transaction_base& tx, const StateSchema& schema, long long id) {
  tx.exec_params("UPDATE " + schema.table("failed_batches") +
                     " SET resolved_at = pg_catalog.now(), attempts = attempts + 1 WHERE id = $1",
                 id);
}

void record_retry_failure(pqxx::transaction_base& tx, const StateSchema& schema, long long id,
                          const Failure& failure) {
  const std::optional<std::string> sqlstate =
      failure.sqlstate.empty() ? std::nullopt : std::optional<std::string>(failure.sqlstate);
  tx.exec_params("UPDATE " + schema.table("failed_batches") +
                     " SET attempts = attempts + 1, error = $2, sqlstate = $3 WHERE id = $1",
                 id, failure.message, sqlstate);
}

SetAside count_unresolved(pqxx::transaction_base& tx, const StateSchema& schema) {
  if (!has_feature(state_version(tx, schema), StateFeature::failed_batches)) return {};
  const pqxx::row r = tx.exec1("SELECT pg_catalog.count(*), pg_catalog.count(DISTINCT job) FROM " +
                               schema.table("failed_batches") + " WHERE resolved_at IS NULL");
  return {r[0].as<long long>(), r[1].as<long long>()};
}

std::string unresolved_count_sql(const StateSchema& schema, int version, const std::string& job) {
  if (!has_feature(version, StateFeature::failed_batches)) return "0";
  return "(SELECT pg_catalog.count(*) FROM " + schema.table("failed_batches") +
         " f WHERE f.job = " + job + " AND f.resolved_at IS NULL)";
}

std::string retried_range_sql(const StateSchema& schema, int version, const std::string& row) {
  if (!has_feature(version, StateFeature::failed_batches)) return "false";
  return "EXISTS (SELECT 1 FROM " + schema.table("failed_batches") + " f WHERE f.job = " + row +
         ".job AND f.slice = " + row + ".slice AND f.resolved_at IS NOT NULL AND f.xmin = " + row +
         ".xmin)";
}

void drop_unresolved(pqxx::transaction_base& tx, const StateSchema& schema,
                     const std::string& job) {
  tx.exec_params(
      "DELETE FROM " + schema.table("failed_batches") + " WHERE job = $1 AND resolved_at IS NULL",
      job);
}

void drop_unresolved_after(pqxx::transaction_base& tx, const StateSchema& schema,
                           const ResolvedJob& job, const std::string& key) {
  tx.exec_params("DELETE FROM " + schema.table("failed_batches") +
                     " WHERE job = $1 AND resolved_at IS NULL AND " + as_key(job, "first_key") +
                     " > " + as_key(job, "$2"),
                 job.name, key);
}

}  // namespace pgxform
