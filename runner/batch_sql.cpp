#include "batch_sql.h"

#include "block_counters.h"

namespace pgxform {

namespace {

std::string cast(const std::string& param, const ResolvedJob& job) {
  return "(" + param + "::text)::" + job.key_type;
}

// lo and hi of the next batch on the key's index, in two probes. ORDER BY ... LIMIT 1 rather
// than min/max, which not every key type has (uuid has not).
std::string bounds_select(const ResolvedJob& job, BatchShape shape) {
  const std::string key = "t." + job.key_sql;
  std::string where =
      shape.start == CursorStart::none ? key + " IS NOT NULL" : key + " > " + cast("$1", job);
  if (shape.upper == UpperBound::hi_key) where += " AND " + key + " <= " + cast("$5", job);
  const std::string from = " FROM " + job.table_sql + " t WHERE " + where + " ORDER BY " + key;
  return "SELECT (SELECT " + key + from + " LIMIT 1) AS lo, (SELECT k FROM (SELECT " + key +
         " AS k" + from + " LIMIT $2) s ORDER BY k DESC LIMIT 1) AS hi";
}

// From the bounds in CTE b: call the function, move the cursor, count, and leave the batch's
// figures in the transaction-local setting k_batch_setting (see batch_sql.h).
std::string process_from_b(const ResolvedJob& job, const std::string& state, Slicing slicing) {
  const bool sliced = slicing == Slicing::slice;
  const std::string cursor_table = state + (sliced ? ".job_slice" : ".job_state");
  // Every row of the last key counts, even those past the LIMIT that found hi.
  std::string sql = ", r AS MATERIALIZED (SELECT b.lo, b.hi, (SELECT count(*) FROM " +
                    job.table_sql + " t WHERE t." + job.key_sql + " >= b.lo AND t." + job.key_sql +
                    " <= b.hi) AS rows, " + job.function_sql +
                    "(b.lo, b.hi)::text AS result FROM b WHERE b.lo IS NOT NULL),"
                    " c AS (UPDATE " +
                    cursor_table +
                    " c SET last_key = r.hi::text, rows_done = c.rows_done + r.rows,"
                    " batches_done = c.batches_done + 1, status = 'running',"
                    " updated_at = clock_timestamp() FROM r WHERE c.job = $3" +
                    (sliced ? " AND c.slice = $4" : "") +
                    " AND c.last_key IS NOT DISTINCT FROM $1::text RETURNING c.batches_done)";
  std::string numbered = "c";
  if (sliced) {
    sql += ", j AS (UPDATE " + state +
           ".job_state j SET rows_done = j.rows_done + r.rows, batches_done = j.batches_done + 1,"
           " status = 'running', updated_at = clock_timestamp() FROM r, c WHERE j.job = $3"
           " RETURNING j.batches_done)";
    numbered = "j";
  }
  // The duration is taken last, once the function and the cursor's move are done.
  sql += " SELECT set_config('" + std::string(k_batch_setting) +
         "', json_build_object('lo', r.lo::text, 'hi', r.hi::text, 'rows', r.rows,"
         " 'written', NULLIF(r.result, '')::bigint, 'slice', $4::int, 'open', $5::text IS NULL,"
         " 'moved', (SELECT count(*) FROM c), 'batch_no', (SELECT batches_done FROM " +
         numbered +
         "), 'started', statement_timestamp(),"
         " 'ms', 1000 * extract(epoch FROM clock_timestamp() - statement_timestamp()))::text,"
         " true) FROM r";
  return sql;
}

// Under EXPLAIN ANALYZE, for the buffer counters of the whole batch, function included. TIMING
// OFF: no clock reads per row of the plan's nodes.
std::string explained(const std::string& sql) {
  return "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY OFF, FORMAT JSON) " + sql;
}

}  // namespace

std::string batch_sql(const ResolvedJob& job, const std::string& state, BatchShape shape) {
  return explained("WITH b AS MATERIALIZED (" + bounds_select(job, shape) + ")" +
                   process_from_b(job, state, shape.slicing));
}

std::string range_sql(const ResolvedJob& job, const std::string& state, Slicing slicing) {
  return explained("WITH b AS MATERIALIZED (SELECT " + cast("$2", job) + " AS lo, " +
                   cast("$5", job) + " AS hi)" + process_from_b(job, state, slicing));
}

std::string log_sql(const std::string& state) {
  std::string columns, values;
  int param = 2;
  for (const auto& field : k_counter_fields) {
    columns += std::string(", ") + field.column;
    values += ", $" + std::to_string(param++) + "::bigint";
  }
  // The figures parsed once, into jsonb: json would be parsed again for every field read.
  return "WITH s AS MATERIALIZED (SELECT x::jsonb AS j FROM (SELECT nullif(current_setting('" +
         std::string(k_batch_setting) +
         "', true), '') AS x) q WHERE x IS NOT NULL),"
         " l AS (INSERT INTO " +
         state +
         ".batch_log (job, batch_no, slice, first_key, last_key, rows, rows_written,"
         " started_at, duration_ms, fn_version" +
         columns +
         ") SELECT $1::text, (s.j ->> 'batch_no')::bigint, (s.j ->> 'slice')::int,"
         " s.j ->> 'lo', s.j ->> 'hi', (s.j ->> 'rows')::bigint, (s.j ->> 'written')::bigint,"
         " (s.j ->> 'started')::timestamptz, (s.j ->> 'ms')::float8, (SELECT v.fn_version FROM " +
         state + ".job_state v WHERE v.job = $1::text)" + values +
         " FROM s WHERE (s.j ->> 'moved')::int = 1 RETURNING 1)"
         " SELECT s.j ->> 'lo' AS lo, s.j ->> 'hi' AS hi, (s.j ->> 'rows')::bigint AS rows,"
         " (s.j ->> 'moved')::int AS moved, (SELECT count(*) FROM l) AS logged FROM s";
}

std::string skip_sql(const std::string& state, Slicing slicing) {
  const bool sliced = slicing == Slicing::slice;
  return "WITH c AS (UPDATE " + state + (sliced ? ".job_slice" : ".job_state") +
         " c SET last_key = $5::text, updated_at = clock_timestamp() WHERE c.job = $3" +
         (sliced ? " AND c.slice = $4" : "") +
         " AND c.last_key IS NOT DISTINCT FROM $1::text RETURNING 1),"
         " f AS (INSERT INTO " +
         state +
         ".failed_batches (job, slice, first_key, last_key, sqlstate, error)"
         " SELECT $3, $4, $2::text, $5, $6::text, $7::text FROM c RETURNING 1)"
         " SELECT (SELECT count(*) FROM c) AS moved, (SELECT count(*) FROM f) AS recorded";
}

std::string bounds_query(const ResolvedJob& job, BatchShape shape) {
  // $1, $3, $4 and $5 are named even when unused, so that every parameter has a type.
  return "SELECT b.lo::text, b.hi::text, $1::text, $3::text, $4::int, $5::text FROM (" +
         bounds_select(job, shape) + ") b";
}

std::string split_query(const ResolvedJob& job) {
  const std::string key = "t." + job.key_sql;
  const std::string in_range = " FROM " + job.table_sql + " t WHERE " + key +
                               " >= " + cast("$1", job) + " AND " + key + " <= " + cast("$2", job);
  return "WITH n AS (SELECT count(*) AS rows" + in_range +
         "), m AS (SELECT (SELECT k FROM (SELECT " + key + " AS k" + in_range + " ORDER BY " + key +
         " LIMIT greatest(1, (SELECT rows FROM n) / 2)) s ORDER BY k DESC LIMIT 1) AS mid)"
         " SELECT m.mid::text, (SELECT " +
         key + in_range + " AND " + key + " > m.mid ORDER BY " + key + " LIMIT 1)::text FROM m";
}

}  // namespace pgxform
