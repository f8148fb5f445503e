#include "catalog/table_stats.h"

#include <cstdlib>

#include "base/sql_text.h"

namespace pgxform {

namespace {

// A value of the key's type as a number on its own scale (see KeySpan).
std::string as_number(const ResolvedJob& job, const std::string& value) {
  return fill_sql(
      job.key_category == 'N' ? "(@value@)::float8" : "extract(epoch FROM @value@)::float8",
      {{"@value@", value}});
}

std::string positions_array(const std::vector<double>& positions) {
  std::string text = "{";
  for (std::size_t i = 0; i < positions.size(); ++i)
    text += (i ? "," : "") + std::to_string(positions[i]);
  return text + "}";
}

}  // namespace

std::optional<double> estimated_rows(pqxx::transaction_base& tx, const std::string& table_sql) {
  const pqxx::result r = tx.exec_params(R"(
    SELECT reltuples::float8 FROM pg_catalog.pg_class WHERE oid = pg_catalog.to_regclass($1))",
                                        table_sql);
  if (r.empty() || r[0][0].is_null() || r[0][0].as<double>() < 0) return std::nullopt;
  return r[0][0].as<double>();
}

std::optional<double> estimated_rows(pqxx::transaction_base& tx, const ResolvedJob& job) {
  return estimated_rows(tx, job.table_sql);
}

std::optional<double> estimated_rows_after(pqxx::transaction_base& tx, const ResolvedJob& job,
                                           const std::string& key) {
  return estimated_rows_in(tx, job, key, std::nullopt);
}

std::optional<double> estimated_rows_in(pqxx::transaction_base& tx, const ResolvedJob& job,
                                        const std::optional<std::string>& after,
                                        const std::optional<std::string>& hi) {
  if (!estimated_rows(tx, job)) return std::nullopt;
  // The plan's first line ends with its row estimate: "... (cost=0.29..4.31 rows=480 width=4)".
  // $1 and $2 the keys, bound, so that the planner estimates with their values (a custom plan);
  // a NULL one bounds nothing.
  static const char* const k_sql = R"(
    EXPLAIN SELECT 1 FROM @table@ t
    WHERE ($1::text IS NULL OR t.@key@ > @after@) AND ($2::text IS NULL OR t.@key@ <= @hi@))";
  const pqxx::result plan = tx.exec_params(fill_sql(k_sql, {{"@table@", job.table_sql},
                                                            {"@key@", job.key_sql},
                                                            {"@after@", as_key(job, "$1")},
                                                            {"@hi@", as_key(job, "$2")}}),
                                           after, hi);
  if (plan.empty()) return std::nullopt;
  const std::string line = plan[0][0].as<std::string>();
  const auto at = line.rfind(" rows=");
  if (at == std::string::npos) return std::nullopt;
  return std::strtod(line.c_str() + at + 6, nullptr);
}

TableHealth table_health(pqxx::transaction_base& tx, const ResolvedJob& job) {
  const pqxx::row r = tx.exec_params1(R"(
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                   JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
                   JOIN pg_catalog.pg_am am ON am.oid = c.relam
                   JOIN pg_catalog.pg_attribute a
                     ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = pg_catalog.to_regclass($1) AND am.amname = 'btree'
                     AND a.attname = $2),
           coalesce((SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL
                     FROM pg_catalog.pg_stat_all_tables
                     WHERE relid = pg_catalog.to_regclass($1)),
                    false),
           coalesce(c.relpages, 0)::bigint, coalesce(c.relallvisible, 0)::bigint
    FROM (SELECT) one
    LEFT JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass($1))",
                                      job.table_sql, job.key_name);
  return {r[0].as<bool>(), r[1].as<bool>(), estimated_rows(tx, job), r[2].as<long long>(),
          r[3].as<long long>()};
}

std::optional<KeySpan> key_span(pqxx::transaction_base& tx, const ResolvedJob& job,
                                const std::optional<std::string>& at) {
  if (job.key_category != 'N' && job.key_category != 'D') return std::nullopt;
  // Two probes on the key's index. The key qualified with the table's alias: unqualified,
  // ORDER BY would sort by the output column of the same name. $1 the key `at`, or NULL.
  static const char* const k_sql = R"(
    SELECT @lo@, @hi@, @at@
    FROM (SELECT t.@key@ AS k FROM @table@ t WHERE t.@key@ IS NOT NULL
          ORDER BY t.@key@ LIMIT 1) lo,
         (SELECT t.@key@ AS k FROM @table@ t WHERE t.@key@ IS NOT NULL
          ORDER BY t.@key@ DESC LIMIT 1) hi)";
  const pqxx::result r =
      tx.exec_params(fill_sql(k_sql, {{"@lo@", as_number(job, "lo.k")},
                                      {"@hi@", as_number(job, "hi.k")},
                                      {"@at@", as_number(job, as_key(job, "$1"))},
                                      {"@key@", job.key_sql},
                                      {"@table@", job.table_sql}}),
                     at);
  if (r.empty() || r[0][0].is_null() || r[0][1].is_null()) return std::nullopt;
  KeySpan span;
  span.first = r[0][0].as<double>();
  span.last = r[0][1].as<double>();
  if (!r[0][2].is_null()) span.at = r[0][2].as<double>();
  return span;
}

std::vector<std::string> keys_at(pqxx::transaction_base& tx, const ResolvedJob& job,
                                 const std::vector<double>& positions) {
  if (positions.empty()) return {};
  const std::string wanted = positions_array(positions);
  // The planner's histogram of the key ($1 to $3 its schema, table and column, $4 the
  // positions), read as an array of the key's type (@type@).
  static const char* const k_histogram = R"(
    WITH h AS (SELECT (s.histogram_bounds::text)::@type@[] AS b FROM pg_catalog.pg_stats s
               WHERE s.schemaname = $1 AND s.tablename = $2 AND s.attname = $3
                 AND s.histogram_bounds IS NOT NULL
               LIMIT 1)
    SELECT (h.b[1 + pg_catalog.round(p.p * (pg_catalog.array_length(h.b, 1) - 1))::int])::text
    FROM h, pg_catalog.unnest($4::float8[]) WITH ORDINALITY p(p, i)
    ORDER BY p.i)";
  // Without one: one ordered pass over the key ($1 the positions).
  static const char* const k_one_pass = R"(
    SELECT pg_catalog.unnest(pg_catalog.percentile_disc($1::float8[])
                             WITHIN GROUP (ORDER BY t.@key@))::text
    FROM @table@ t)";
  pqxx::result keys = tx.exec_params(fill_sql(k_histogram, {{"@type@", job.key_type}}),
                                     job.table_schema, job.table_name, job.key_name, wanted);
  if (keys.empty())
    keys = tx.exec_params(
        fill_sql(k_one_pass, {{"@key@", job.key_sql}, {"@table@", job.table_sql}}), wanted);
  std::vector<std::string> out;
  for (const auto& row : keys) {
    if (row[0].is_null()) return {};
    out.push_back(row[0].as<std::string>());
  }
  return out;
}

std::optional<double> estimated_total_rows(pqxx::transaction_base& tx, const ResolvedJob& job,
                                           long long rows_done,
                                           const std::optional<std::string>& last_key, int slices) {
  std::optional<double> total = estimated_rows(tx, job);
  if (slices == 1 && last_key)
    if (const auto after = estimated_rows_after(tx, job, *last_key))
      total = double(rows_done) + *after;
  return total;
}

}  // namespace pgxform
