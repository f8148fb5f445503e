#include "engine/batch_sql.h"

#include "base/sql_text.h"
#include "state/batch_log.h"
#include "state/change_log.h"

namespace pgxform {

namespace {

bool given_last_key(const ResolvedJob& job, BatchShape shape) {
  return shape.last == LastKey::given && job.key_unique;
}

// lo and hi of the next batch on the key's index, and `full`: whether $2 keys were found.
// ORDER BY ... LIMIT 1 rather than min/max, which not every key type has (uuid has not).
//   A key a unique index keeps unique: a full batch holds exactly $2 rows, so its last key is
//   found with OFFSET $2 - 1 (one walk of the index) and its rows need no count; the last batch
//   of a range, not full, ends at the range's last key (one probe from the other end), and only
//   its rows are counted. (OFFSET 0 keeps the planner from copying the walk into each of the
//   two places that use its result.)
//   Any other key: hi is the last of the first $2 keys, and the rows are counted, as every row
//   of the last key counts, even those past the LIMIT.
//   A last key given as $6 (LastKey::given, a unique key): lo is the first key after the cursor,
//   hi is $6, and the batch holds $7 rows, as counted by the walk that found $6 — unless $6 is
//   past the slice's hi_key or no key is left up to it: then lo and hi are NULL, no batch.
std::string bounds_select(const ResolvedJob& job, BatchShape shape) {
  static const std::string k_unique =
      R"(SELECT (SELECT @key@ @from@ LIMIT 1) AS lo,)"
      R"( coalesce(h.full_hi, (SELECT @key@ @from@ DESC LIMIT 1)) AS hi,)"
      R"( h.full_hi IS NOT NULL AS full)"
      R"( FROM (SELECT (SELECT @key@ @from@ OFFSET $2::bigint - 1 LIMIT 1) AS full_hi)"
      R"( OFFSET 0) h)";
  static const std::string k_other =
      R"(SELECT (SELECT @key@ @from@ LIMIT 1) AS lo,)"
      R"( (SELECT k FROM (SELECT @key@ AS k @from@ LIMIT $2::bigint) s)"
      R"( ORDER BY k DESC LIMIT 1) AS hi, false AS full)";
  static const std::string k_given =
      R"(SELECT CASE WHEN g.ok THEN g.lo END AS lo, CASE WHEN g.ok THEN @given@ END AS hi,)"
      R"( true AS full)"
      R"( FROM (SELECT l.lo, l.lo <= @given@@within@ AS ok)"
      R"( FROM (SELECT (SELECT @key@ @from@ LIMIT 1) AS lo) l) g)";
  static const std::string k_from = R"(FROM @table@ t WHERE @where@ ORDER BY @key@)";
  const std::string key = "t." + job.key_sql;
  std::string where =
      shape.start == CursorStart::none ? key + " IS NOT NULL" : key + " > " + as_key(job, "$1");
  if (shape.upper == UpperBound::hi_key) where += " AND " + key + " <= " + as_key(job, "$5");
  const std::string from =
      fill_sql(k_from, {{"@where@", where}, {"@table@", job.table_sql}, {"@key@", key}});
  if (given_last_key(job, shape)) {
    const std::string given = as_key(job, "$6");
    const std::string within =
        shape.upper == UpperBound::hi_key ? " AND " + given + " <= " + as_key(job, "$5") : "";
    return fill_sql(k_given,
                    {{"@from@", from}, {"@key@", key}, {"@given@", given}, {"@within@", within}});
  }
  return fill_sql(job.key_unique ? k_unique : k_other, {{"@from@", from}, {"@key@", key}});
}

// The explicit range [$2, $5] in the shape of bounds_select.
std::string explicit_bounds(const ResolvedJob& job) {
  return "SELECT " + as_key(job, "$2") + " AS lo, " + as_key(job, "$5") + " AS hi, false AS full";
}

// The leading table's rows in [lo, hi] (SQL expressions of the key's type). Every row of the
// last key counts, even those past the LIMIT that found hi.
std::string rows_in(const ResolvedJob& job, const std::string& lo, const std::string& hi) {
  static const std::string k_rows =
      R"((SELECT pg_catalog.count(*) FROM @table@ t WHERE t.@key@ >= @lo@ AND t.@key@ <= @hi@))";
  return fill_sql(k_rows,
                  {{"@lo@", lo}, {"@hi@", hi}, {"@table@", job.table_sql}, {"@key@", job.key_sql}});
}

// The rows of a batch found by bounds_select: $2 when it is full (a unique key), else counted.
std::string batch_rows(const ResolvedJob& job, const std::string& full, const std::string& lo,
                       const std::string& hi) {
  return "CASE WHEN " + full + " THEN $2::bigint ELSE " + rows_in(job, lo, hi) + " END";
}

// The rows of the next batch in CTE b: as the walk that found the given last key counted them
// ($7), else batch_rows.
std::string next_batch_rows(const ResolvedJob& job, BatchShape shape) {
  return given_last_key(job, shape) ? "$7::bigint" : batch_rows(job, "b.full", "b.lo", "b.hi");
}

// The function over [lo, hi], its result as text (a row count, or '' for a void function).
std::string call(const ResolvedJob& job, const std::string& lo, const std::string& hi) {
  return job.function_sql + "(" + lo + ", " + hi + ")::text";
}

// Where the batch statement's figures go: nowhere but the setting (a statement of its own), or
// a variable (the statement inside the batch function).
const char* const k_figures_variable = "pgxform_figures";

// From the bounds in CTE b: CTE r processes them (rows, the function's result), then the state
// is written as `move` says, and the batch's figures go to the transaction-local setting
// k_batch_setting (see batch_log.h). A capturing job's batch also takes the change-log rows of
// the keys it processed off the log (change_log.h: consume_cte), and one with `also:` holds
// its row for the batch's length (also_lock_cte) before it calls the function.
// `size`: the keys the batch asked for (SQL; NULL for an explicit range). `callee` calls the
// function (call() above unless given); `into` selects the figures into the variable.
std::string process_from_b(const ResolvedJob& job, const StateSchema& schema, Slicing slicing,
                           CursorMove move, const std::string& rows, const std::string& size,
                           const std::string& callee = "", bool into = false) {
  // The duration is taken last, once the function and the cursor's move are done.
  static const std::string k_process =
      R"(,
  r AS MATERIALIZED (SELECT b.lo, b.hi, @rows@ AS rows, @call@ AS result
                     FROM b@lock@ WHERE b.lo IS NOT NULL)@cursor@@consume@
  SELECT pg_catalog.set_config('@setting@', pg_catalog.json_build_object('lo', r.lo::text,)"
      R"( 'hi', r.hi::text, 'rows', r.rows,)"
      R"( 'written', NULLIF(r.result, '')::bigint, 'size', @size@,)"
      R"( 'slice', $4::int, 'open', $5::text IS NULL,)"
      R"( 'moved', (SELECT pg_catalog.count(*) FROM c),)"
      R"( 'batch_no', @batch_no@, 'started', pg_catalog.statement_timestamp(),)"
      R"( 'ms', 1000 * extract(epoch FROM pg_catalog.clock_timestamp() -)"
      R"( pg_catalog.statement_timestamp()))::text, true)@into@ FROM r)";
  // A slice of `parallel: auto` moves only within its hi_key as it is now (slice_split.h).
  const std::string within =
      job.parallel_auto ? "(c.hi_key IS NULL OR r.hi <= " + as_key(job, "c.hi_key") + ")" : "";
  const CursorSql cursor = cursor_move_sql(schema, slicing, move, within);
  return fill_sql(k_process,
                  {{"@rows@", rows},
                   {"@call@", callee.empty() ? call(job, "b.lo", "b.hi") : callee + "(b.lo, b.hi)"},
                   {"@lock@", job.also.empty() ? "" : ", lk"},
                   {"@cursor@", cursor.ctes},
                   {"@consume@", job.captures ? consume_cte(job, schema) : ""},
                   {"@setting@", k_batch_setting},
                   {"@size@", size},
                   {"@batch_no@", cursor.batch_no},
                   {"@into@", into ? std::string(" INTO ") + k_figures_variable : ""}});
}

// The head of a batch statement: the lock of a job with `also:`, then CTE b, the bounds.
std::string with_bounds(const ResolvedJob& job, const StateSchema& schema,
                        const std::string& bounds) {
  return "WITH " + (job.also.empty() ? std::string() : also_lock_cte(schema)) +
         " b AS MATERIALIZED (" + bounds + ")";
}

// Under EXPLAIN ANALYZE, for the buffer counters of the whole batch, function included. TIMING
// OFF: no clock reads per row of the plan's nodes.
std::string explained(const std::string& sql) {
  return "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY OFF, FORMAT JSON) " + sql;
}

}  // namespace

std::string batch_sql(const ResolvedJob& job, const StateSchema& schema, BatchShape shape) {
  return explained(with_bounds(job, schema, bounds_select(job, shape)) +
                   process_from_b(job, schema, shape.slicing, CursorMove::advance,
                                  next_batch_rows(job, shape), "$2::bigint"));
}

BatchFunction batch_function(const ResolvedJob& job, const StateSchema& schema, BatchShape shape) {
  const std::string body_sql =
      with_bounds(job, schema, bounds_select(job, shape)) +
      process_from_b(job, schema, shape.slicing, CursorMove::advance, next_batch_rows(job, shape),
                     "$2::bigint", "@call@", true);
  const std::string tag = "$pgxform_batch$";
  const bool given = given_last_key(job, shape);
  BatchFunction f;
  // Named after what it does, so that a session never holds two bodies under one name.
  const std::string name =
      "pgxform_batch_" + std::to_string(std::hash<std::string>{}(job.function_sql + body_sql));
  const std::string call_name = "pg_temp." + name + "_call";
  std::string body = body_sql;
  body.replace(body.find("@call@"), 6, call_name);
  // An identifier that holds the tag would end the body early: no function then.
  if (body.find(tag) != std::string::npos || job.function_sql.find(tag) != std::string::npos)
    return f;
  f.name = "pg_temp." + name;
  // The job's function under the session's own plan_cache_mode (FROM CURRENT: the value when
  // the function is created), not under the batch function's.
  f.ddl = "CREATE FUNCTION " + call_name + "(lo " + job.key_type + ", hi " + job.key_type +
          ") RETURNS text LANGUAGE plpgsql SET plan_cache_mode FROM CURRENT AS " + tag +
          " BEGIN RETURN " + call(job, "lo", "hi") + "; END " + tag + ";\nCREATE FUNCTION " +
          f.name + "(text, bigint, text, integer, text" + (given ? ", text, bigint" : "") +
          ") RETURNS void LANGUAGE plpgsql"
          " SET plan_cache_mode = force_generic_plan AS " +
          tag + " DECLARE " + k_figures_variable + " text; BEGIN " + body + "; END " + tag;
  f.call = explained("SELECT " + f.name + "($1::text, $2::bigint, $3::text, $4::int, $5::text" +
                     (given ? ", $6::text, $7::bigint" : "") + ")");
  return f;
}

std::string range_sql(const ResolvedJob& job, const StateSchema& schema, Slicing slicing,
                      CursorMove move) {
  return explained(
      with_bounds(job, schema, explicit_bounds(job)) +
      process_from_b(job, schema, slicing, move, rows_in(job, "b.lo", "b.hi"), "NULL::bigint"));
}

std::string bounds_query(const ResolvedJob& job, BatchShape shape) {
  shape.last = LastKey::walked;
  // $1, $3, $4 and $5 are named even when unused, so that every parameter has a type.
  return "SELECT b.lo::text, b.hi::text, $1::text, $3::text, $4::int, $5::text, b.full FROM (" +
         bounds_select(job, shape) + ") b";
}

std::string next_range_query(const ResolvedJob& job, BatchShape shape) {
  const std::string lo = as_key(job, "q.lo"), hi = as_key(job, "q.hi");
  return "WITH q AS MATERIALIZED (" + bounds_query(job, shape) + ") SELECT q.lo, q.hi, " +
         batch_rows(job, "q.full", lo, hi) + " AS rows FROM q WHERE q.lo IS NOT NULL";
}

std::string split_query(const ResolvedJob& job) {
  const std::string key = "t." + job.key_sql;
  const std::string in_range = " FROM " + job.table_sql + " t WHERE " + key +
                               " >= " + as_key(job, "$1") + " AND " + key +
                               " <= " + as_key(job, "$2");
  return "WITH n AS (SELECT pg_catalog.count(*) AS rows" + in_range +
         "), m AS (SELECT (SELECT k FROM (SELECT " + key + " AS k" + in_range + " ORDER BY " + key +
         " LIMIT greatest(1, (SELECT rows FROM n) / 2)) s ORDER BY k DESC LIMIT 1) AS mid)"
         " SELECT m.mid::text, (SELECT " +
         key + in_range + " AND " + key + " > m.mid ORDER BY " + key + " LIMIT 1)::text FROM m";
}

namespace {

// The WHERE of split_point_query and key_at_query: after $1, up to $2, as the shape has them.
std::string slice_range(const ResolvedJob& job, BatchShape shape) {
  const std::string key = "t." + job.key_sql;
  std::string where =
      shape.start == CursorStart::none ? key + " IS NOT NULL" : key + " > " + as_key(job, "$1");
  if (shape.upper == UpperBound::hi_key) where += " AND " + key + " <= " + as_key(job, "$2");
  return where;
}

}  // namespace

std::string split_point_query(const ResolvedJob& job, BatchShape shape) {
  // The key $3 rows plus half of the rest into the range, by one count and one walk of the key's
  // index (never past the range's last row).
  static const std::string k_split_point = R"(
    WITH n AS MATERIALIZED (SELECT pg_catalog.count(*) AS rows FROM @table@ t WHERE @where@)
    SELECT n.rows, (SELECT @key@ FROM @table@ t WHERE @where@ ORDER BY @key@
                    OFFSET LEAST(greatest(0, (SELECT rows FROM n) - 1),
                                 greatest(0, ((SELECT rows FROM n) + $3::bigint - 1) / 2))
                    LIMIT 1)::text,
           $1::text, $2::text
    FROM n)";
  return fill_sql(k_split_point, {{"@where@", slice_range(job, shape)},
                                  {"@table@", job.table_sql},
                                  {"@key@", "t." + job.key_sql}});
}

std::string key_at_query(const ResolvedJob& job, BatchShape shape) {
  static const std::string k_key_at = R"(
    SELECT (SELECT @key@ FROM @table@ t WHERE @where@ ORDER BY @key@ OFFSET $3::bigint LIMIT 1)::text,
           $1::text, $2::text)";
  return fill_sql(k_key_at, {{"@where@", slice_range(job, shape)},
                             {"@table@", job.table_sql},
                             {"@key@", "t." + job.key_sql}});
}

std::string trial_batch_sql(const ResolvedJob& job, BatchShape shape) {
  const std::string lo = as_key(job, "q.lo"), hi = as_key(job, "q.hi");
  return "WITH q AS MATERIALIZED (" + bounds_query(job, shape) + ") SELECT q.lo, q.hi, " +
         batch_rows(job, "q.full", lo, hi) + " AS rows, " + call(job, lo, hi) +
         " AS result FROM q WHERE q.lo IS NOT NULL";
}

std::string range_rows_query(const ResolvedJob& job) {
  return "SELECT " + rows_in(job, as_key(job, "$1"), as_key(job, "$2"));
}

std::string call_query(const ResolvedJob& job) {
  return "SELECT " + call(job, as_key(job, "$1"), as_key(job, "$2"));
}

}  // namespace pgxform
