#include "state/failed_ranges.h"

#include "base/sql_text.h"

namespace pgxform {

std::string set_aside_sql(const StateSchema& schema, Slicing slicing) {
  // @skip@: the cursor's move past the range (task_cursor.h), whose row the range needs.
  static const char* const k_sql = R"(
    WITH c AS (@skip@),
    f AS (INSERT INTO @failed_batches@ (job, slice, first_key, last_key, sqlstate, error)
          SELECT $3, $4, $2::text, $5, $6::text, $7::text FROM c
          RETURNING 1)
    SELECT (SELECT pg_catalog.count(*) FROM c) AS moved,
           (SELECT pg_catalog.count(*) FROM f) AS recorded)";
  return schema.fill(k_sql, {{"@skip@", cursor_skip_sql(schema, slicing)}});
}

std::vector<FailedRange> unresolved_ranges(pqxx::transaction_base& tx, const StateSchema& schema,
                                           const std::string& job, SetAsideKind which) {
  std::vector<FailedRange> out;
  const int version = state_version(tx, schema);
  if (!has_feature(version, StateFeature::failed_batches)) return out;
  static const char* const k_sql = R"(
    SELECT id, slice, first_key, last_key, @catch_up@ AS catch_up FROM @failed_batches@ f
    WHERE job = $1 AND resolved_at IS NULL @which@ ORDER BY id)";
  const bool kinds = has_feature(version, StateFeature::exact);
  std::string condition;
  if (which != SetAsideKind::any)
    condition = kinds ? (which == SetAsideKind::catch_up ? "AND f.catch_up" : "AND NOT f.catch_up")
                      : (which == SetAsideKind::catch_up ? "AND false" : "");
  const std::string sql =
      schema.fill(k_sql, {{"@catch_up@", kinds ? "f.catch_up" : "false"}, {"@which@", condition}});
  for (const auto& row : tx.exec_params(sql, job))
    out.push_back({row[0].as<long long>(), row[1].as<int>(), row[2].as<std::string>(),
                   row[3].as<std::string>(), row[4].as<bool>()});
  return out;
}

bool take_range(pqxx::transaction_base& tx, const StateSchema& schema, long long id) {
  // SKIP LOCKED: a range that another retry-failed is working on is its business.
  return !tx.exec_params(schema.fill(R"(
    SELECT 1 FROM @failed_batches@ WHERE id = $1 AND resolved_at IS NULL
    FOR UPDATE SKIP LOCKED)"),
                         id)
              .empty();
}

void resolve_range(pqxx::transaction_base& tx, const StateSchema& schema, long long id) {
  tx.exec_params(schema.fill(R"(
    UPDATE @failed_batches@ SET resolved_at = pg_catalog.now(), attempts = attempts + 1
    WHERE id = $1)"),
                 id);
}

void record_retry_failure(pqxx::transaction_base& tx, const StateSchema& schema, long long id,
                          const Failure& failure) {
  const std::optional<std::string> sqlstate =
      failure.sqlstate.empty() ? std::nullopt : std::optional<std::string>(failure.sqlstate);
  tx.exec_params(schema.fill(R"(
    UPDATE @failed_batches@ SET attempts = attempts + 1, error = $2, sqlstate = $3
    WHERE id = $1)"),
                 id, failure.message, sqlstate);
}

SetAside count_unresolved(pqxx::transaction_base& tx, const StateSchema& schema) {
  if (!has_feature(state_version(tx, schema), StateFeature::failed_batches)) return {};
  const pqxx::row r = tx.exec1(schema.fill(R"(
    SELECT pg_catalog.count(*), pg_catalog.count(DISTINCT job) FROM @failed_batches@
    WHERE resolved_at IS NULL)"));
  return {r[0].as<long long>(), r[1].as<long long>()};
}

std::string unresolved_count_sql(const StateSchema& schema, int version, const std::string& job) {
  if (!has_feature(version, StateFeature::failed_batches)) return "0";
  return schema.fill(R"((SELECT pg_catalog.count(*) FROM @failed_batches@ f
                         WHERE f.job = @job@ AND f.resolved_at IS NULL))",
                     {{"@job@", job}});
}

std::string retried_range_sql(const StateSchema& schema, int version, const std::string& row) {
  if (!has_feature(version, StateFeature::failed_batches)) return "false";
  return schema.fill(R"(EXISTS (SELECT 1 FROM @failed_batches@ f
                WHERE f.job = @row@.job AND f.slice = @row@.slice
                  AND f.resolved_at IS NOT NULL AND f.xmin = @row@.xmin))",
                     {{"@row@", row}});
}

void drop_unresolved(pqxx::transaction_base& tx, const StateSchema& schema,
                     const std::string& job) {
  tx.exec_params(schema.fill("DELETE FROM @failed_batches@ WHERE job = $1 AND resolved_at IS NULL"),
                 job);
}

void drop_unresolved_after(pqxx::transaction_base& tx, const StateSchema& schema,
                           const ResolvedJob& job, const std::string& key) {
  // $2 the key; @first@ and @key@ the range's first key and the key, as the key's type.
  tx.exec_params(schema.fill(R"(
    DELETE FROM @failed_batches@ WHERE job = $1 AND resolved_at IS NULL AND @first@ > @key@)",
                             {{"@first@", as_key(job, "first_key")}, {"@key@", as_key(job, "$2")}}),
                 job.name, key);
}

}  // namespace pgxform
