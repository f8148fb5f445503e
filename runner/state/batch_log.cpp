#include "state/batch_log.h"

#include <iterator>

#include "base/sql_text.h"
#include "state/failed_ranges.h"

namespace pgxform {

std::string main_pass_only(int version, const std::string& alias) {
  if (!has_feature(version, StateFeature::changes)) return "";
  return fill_sql("AND NOT @alias@.catch_up", {{"@alias@", alias}});
}

std::string log_sql(const StateSchema& schema) {
  // $1 the job, $2 to $9 the plan's counters, in the order of k_counter_fields. The figures
  // are parsed once, into jsonb: json would be parsed again for every field read. A catch-up
  // batch (change_log.h) calls the refresh function, which no version pins.
  static_assert(std::size(k_counter_fields) == 8, "the log statement binds eight counters");
  static const char* const k_sql = R"(
    WITH s AS MATERIALIZED (
      SELECT x::jsonb AS j, coalesce((x::jsonb ->> 'catch_up')::boolean, false) AS catch_up
      FROM (SELECT nullif(pg_catalog.current_setting('@setting@', true), '') AS x) q
      WHERE x IS NOT NULL),
    l AS (
      INSERT INTO @batch_log@ (job, batch_no, slice, first_key, last_key, rows, rows_written,
                               started_at, duration_ms, batch_size, catch_up, fn_version,
                               shared_blks_hit, shared_blks_read, shared_blks_dirtied,
                               shared_blks_written, local_blks_hit, local_blks_read,
                               temp_blks_read, temp_blks_written)
      SELECT $1::text, (s.j ->> 'batch_no')::bigint, (s.j ->> 'slice')::int, s.j ->> 'lo',
             s.j ->> 'hi', (s.j ->> 'rows')::bigint, (s.j ->> 'written')::bigint,
             (s.j ->> 'started')::timestamptz, (s.j ->> 'ms')::float8, (s.j ->> 'size')::bigint,
             s.catch_up,
             CASE WHEN NOT s.catch_up THEN
               (SELECT v.fn_version FROM @job_state@ v WHERE v.job = $1::text) END,
             $2::bigint, $3::bigint, $4::bigint, $5::bigint, $6::bigint, $7::bigint, $8::bigint,
             $9::bigint
      FROM s WHERE (s.j ->> 'moved')::int = 1
      RETURNING 1)
    SELECT s.j ->> 'lo' AS lo, s.j ->> 'hi' AS hi, (s.j ->> 'rows')::bigint AS rows,
           (s.j ->> 'moved')::int AS moved, (SELECT pg_catalog.count(*) FROM l) AS logged
    FROM s)";
  return schema.fill(k_sql, {{"@setting@", k_batch_setting}});
}

pqxx::result log_batch(pqxx::transaction_base& tx, const StateSchema& schema,
                       const std::string& job, const pqxx::result& plan,
                       const std::optional<std::string>& prepared) {
  std::optional<long long> c[std::size(k_counter_fields)];
  if (const auto counters = top_node_counters(plan[0][0].c_str())) {
    for (std::size_t i = 0; i < std::size(k_counter_fields); ++i)
      c[i] = (*counters).*k_counter_fields[i].member;
  }
  if (prepared)
    return tx.exec_prepared(*prepared, job, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]);
  return tx.exec_params(log_sql(schema), job, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]);
}

std::vector<LoggedBatch> read_batches(pqxx::transaction_base& tx, const StateSchema& schema,
                                      const std::string& job) {
  std::vector<LoggedBatch> out;
  const int version = state_version(tx, schema);
  if (version == 0) return out;
  const bool counters = has_feature(version, StateFeature::batch_counters);
  const bool sizes = has_feature(version, StateFeature::batch_sizes);
  // $1 the job. @kind@ is 0 for a batch, 1 for a bisect range, 2 for a range retry-failed
  // redid: a row without a size, logged since sizes are, is an explicit range (see BatchKind).
  // The counters in the order of k_counter_fields.
  static const char* const k_sql = R"(
    SELECT b.batch_no, b.slice, b.first_key, b.last_key, b.rows, b.duration_ms,
           extract(epoch FROM b.started_at)::float8, @size@, @kind@ @counters@
    FROM @batch_log@ b
    WHERE b.job = $1 @main@
    ORDER BY b.started_at, b.batch_no)";
  static const char* const k_kind = R"(
    CASE WHEN b.batch_size IS NOT NULL OR b.started_at < @sizes_since@ THEN 0
         WHEN @retried@ THEN 2
         ELSE 1 END)";
  static const char* const k_counters = R"(,
    b.shared_blks_hit, b.shared_blks_read, b.shared_blks_dirtied, b.shared_blks_written,
    b.local_blks_hit, b.local_blks_read, b.temp_blks_read, b.temp_blks_written)";
  static_assert(std::size(k_counter_fields) == 8, "read_batches reads eight counters");
  std::string kind = "0";
  if (sizes)
    kind =
        fill_sql(k_kind, {{"@sizes_since@", feature_since_sql(schema, StateFeature::batch_sizes)},
                          {"@retried@", retried_range_sql(schema, version, "b")}});
  const std::vector<SqlPart> parts{{"@size@", sizes ? "b.batch_size" : "NULL::bigint"},
                                   {"@kind@", kind},
                                   {"@counters@", counters ? k_counters : ""},
                                   {"@main@", main_pass_only(version, "b")}};
  const pqxx::result rows = tx.exec_params(schema.fill(k_sql, parts), job);
  constexpr int k_first_counter = 9;
  constexpr BatchKind k_kinds[] = {BatchKind::batch, BatchKind::bisect, BatchKind::retry};
  for (const auto& row : rows) {
    LoggedBatch b;
    b.kind = k_kinds[row[8].as<int>()];
    b.batch_no = row[0].as<long long>();
    b.slice = row[1].as<int>();
    b.first_key = row[2].as<std::string>();
    b.last_key = row[3].as<std::string>();
    b.rows = row[4].as<long long>();
    b.duration_ms = row[5].as<double>();
    b.started_s = row[6].as<double>();
    if (!row[7].is_null()) b.asked = row[7].as<long long>();
    if (counters && !row[k_first_counter].is_null()) {
      b.blocks = BlockCounters{};
      for (std::size_t i = 0; i < std::size(k_counter_fields); ++i)
        (*b.blocks).*k_counter_fields[i].member = row[int(k_first_counter + i)].as<long long>();
    }
    out.push_back(std::move(b));
  }
  return out;
}

std::optional<std::pair<std::string, std::string>> last_batch(pqxx::transaction_base& tx,
                                                              const StateSchema& schema,
                                                              const std::string& job) {
  const int version = state_version(tx, schema);
  if (version == 0) return std::nullopt;
  const pqxx::result r = tx.exec_params(schema.fill(R"(
    SELECT first_key, last_key FROM @batch_log@ b
    WHERE job = $1 @main@
    ORDER BY batch_no DESC LIMIT 1)",
                                                    {{"@main@", main_pass_only(version, "b")}}),
                                        job);
  if (r.empty()) return std::nullopt;
  return std::make_pair(r[0][0].as<std::string>(), r[0][1].as<std::string>());
}

void drop_batches(pqxx::transaction_base& tx, const StateSchema& schema, const std::string& job) {
  tx.exec_params(schema.fill("DELETE FROM @batch_log@ WHERE job = $1"), job);
}

std::optional<std::pair<long long, long long>> batches_over(
    pqxx::transaction_base& tx, const StateSchema& schema, const std::string& job,
    const std::string& key_type, const std::string& lo, const std::string& hi) {
  const int version = state_version(tx, schema);
  if (version == 0) return std::nullopt;
  // The keys are kept as text; they compare in the key's own order (9 < 10). $1 the job, $2
  // and $3 the range's first and last key; @type@ the key's type.
  const pqxx::row r =
      tx.exec_params1(schema.fill(R"(
    SELECT pg_catalog.min(batch_no), pg_catalog.max(batch_no) FROM @batch_log@ b
    WHERE job = $1 @main@
      AND first_key::@type@ <= ($3::text)::@type@ AND last_key::@type@ >= ($2::text)::@type@)",
                                  {{"@main@", main_pass_only(version, "b")}, {"@type@", key_type}}),
                      job, lo, hi);
  if (r[0].is_null()) return std::nullopt;
  return std::make_pair(r[0].as<long long>(), r[1].as<long long>());
}

RecentBatches read_recent_batches(pqxx::transaction_base& tx, const StateSchema& schema,
                                  const std::string& job, double window_s, Phase phase) {
  // $1 the job, $2 the window in seconds; @log@ the table, @batch@ what tells a batch, @phase@
  // which phase's batches (the primary key leads with job and catch_up: one index range).
  static const std::string k_sql = R"(
    SELECT COALESCE(pg_catalog.sum(b.rows) FILTER (WHERE @recent@), 0)::bigint,
           EXTRACT(epoch FROM pg_catalog.now()
                   - pg_catalog.min(b.started_at) FILTER (WHERE @recent@))::float8,
           @last_size@
    FROM (SELECT * FROM @log@ l WHERE l.job = $1 @phase@
          ORDER BY l.batch_no DESC LIMIT 10000) b)";
  static const std::string k_recent =
      "@batch@ AND b.started_at + b.duration_ms * interval '1 millisecond'"
      " > pg_catalog.now() - $2 * interval '1 second'";
  static const std::string k_last_size = R"((SELECT l.batch_size FROM @log@ l
       WHERE l.job = $1 @phase@ AND l.batch_size IS NOT NULL ORDER BY l.batch_no DESC LIMIT 1))";
  const int version = state_version(tx, schema);
  const bool sizes = has_feature(version, StateFeature::batch_sizes);
  std::string which;
  if (has_feature(version, StateFeature::changes))
    which = phase == Phase::catch_up ? "AND l.catch_up" : main_pass_only(version, "l");
  const std::string log = schema.table("batch_log");
  const std::string sql = fill_sql(
      k_sql,
      {{"@recent@", fill_sql(k_recent, {{"@batch@", sizes ? "b.batch_size IS NOT NULL" : "true"}})},
       {"@last_size@",
        sizes ? fill_sql(k_last_size, {{"@log@", log}, {"@phase@", which}}) : "NULL::bigint"},
       {"@phase@", which},
       {"@log@", log}});
  const pqxx::row r = tx.exec_params1(sql, job, window_s);
  RecentBatches recent;
  recent.rows = r[0].as<long long>();
  if (!r[1].is_null()) recent.span_s = r[1].as<double>();
  if (!r[2].is_null()) recent.batch_size = r[2].as<long long>();
  return recent;
}

std::optional<double> recent_ms_per_row(pqxx::transaction_base& tx, const StateSchema& schema,
                                        const std::string& job, const std::string& fn_version) {
  if (fn_version.empty()) return std::nullopt;
  const int version = state_version(tx, schema);
  if (!has_feature(version, StateFeature::batch_sizes)) return std::nullopt;
  // $1 the job, $2 the function version, $3 how many batches. Newest first along the primary
  // key (job, catch_up, batch_no): one index range, however long the job's log. The version is
  // tested on the batches found, not in the search: a job whose function changed since its
  // last batches has no history of the new one.
  const std::string sql = schema.fill(R"(
    SELECT pg_catalog.sum(r.duration_ms) / pg_catalog.sum(r.rows)::float8
    FROM (SELECT b.duration_ms, b.rows, b.fn_version FROM @batch_log@ b
          WHERE b.job = $1 @main@ AND b.batch_size IS NOT NULL
          ORDER BY b.batch_no DESC LIMIT $3) r
    WHERE r.rows > 0 AND r.duration_ms > 0 AND r.fn_version = $2)",
                                      {{"@main@", main_pass_only(version, "b")}});
  const pqxx::row r = tx.exec_params1(sql, job, fn_version, k_history_batches);
  if (r[0].is_null()) return std::nullopt;
  return r[0].as<double>();
}

}  // namespace pgxform
