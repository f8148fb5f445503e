#include "state/change_log.h"

#include <algorithm>

#include "base/sql_text.h"
#include "state/batch_log.h"
#include "state/state_schema.h"

namespace pgxform {

namespace {

// The figures of a catch-up batch for the log statement (batch_log.h: k_batch_setting), from
// CTE `keys` (k, of the key's type) and `done` (written): lo, hi, rows (keys), the refresh's
// row count, the size asked for (@size@), the batch's number among the job's catch-up batches.
const char* const k_catch_up_figures = R"(
  SELECT pg_catalog.set_config(@setting@, pg_catalog.json_build_object(
           'lo', (SELECT pg_catalog.min(k)::text FROM keys),
           'hi', (SELECT pg_catalog.max(k)::text FROM keys),
           'rows', (SELECT pg_catalog.count(*) FROM keys),
           'written', d.written, 'size', @size@, 'slice', 0, 'open', true, 'moved', 1,
           'catch_up', true,
           'batch_no', coalesce((SELECT pg_catalog.max(b.batch_no) FROM @batch_log@ b
                                 WHERE b.job = $1::text AND b.catch_up), 0) + 1,
           'started', pg_catalog.statement_timestamp(),
           'ms', 1000 * extract(epoch FROM pg_catalog.clock_timestamp()
                                          - pg_catalog.statement_timestamp()))::text, true)
  FROM done d)";

// The refresh of the keys in CTE `keys`, once, only when there are some: its row count, or
// NULL for a void function (its value is not read: a volatile call in FROM is never dropped).
const char* const k_refresh_cte = R"(
  done AS MATERIALIZED (
    SELECT @written@ AS written
    FROM (SELECT @refresh@(ARRAY(SELECT k FROM keys ORDER BY k)) AS v) f
    WHERE EXISTS (SELECT 1 FROM keys)))";

std::string explained(const std::string& sql) {
  return "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY OFF, FORMAT JSON) " + sql;
}

std::string refresh_cte(const ResolvedJob& job) {
  return fill_sql(k_refresh_cte,
                  {{"@written@", job.refresh_counts ? "f.v::bigint" : "NULL::bigint"},
                   {"@refresh@", job.refresh_sql}});
}

std::string figures(const StateSchema& schema, const std::string& size) {
  return fill_sql(k_catch_up_figures, {{"@setting@", "'" + std::string(k_batch_setting) + "'"},
                                       {"@size@", size},
                                       {"@batch_log@", schema.table("batch_log")}});
}

}  // namespace

std::string text_array(const std::vector<std::string>& values) {
  std::string out = "{";
  for (const std::string& value : values) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (const char c : value) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::string text_form_sql(char type_category, const std::string& expr) {
  return type_category == 'D' ? "(pg_catalog.to_json(" + expr + ") #>> '{}')"
                              : "(" + expr + ")::pg_catalog.text";
}

std::string key_text_sql(const ResolvedJob& job, const std::string& expr) {
  return text_form_sql(job.key_category, expr);
}

std::string record_changes_sql(const StateSchema& schema, const std::string& job_literal, int via,
                               const std::string& keys) {
  static const std::string k_record = R"(
    INSERT INTO @change_log@ (job, via, key)
    SELECT @job@, @via@, c.k FROM (@keys@) AS c(k) WHERE c.k IS NOT NULL)";
  return fill_sql(k_record, {{"@via@", std::to_string(via)},
                             {"@keys@", keys},
                             {"@job@", job_literal},
                             {"@change_log@", schema.table("change_log")}});
}

std::string record_decoded_sql(const StateSchema& schema, const std::string& type, char category) {
  static const std::string k_record = R"(
    INSERT INTO @change_log@ (job, via, key, changed_at)
    SELECT $1::text, $2::smallint, @key@,
           TIMESTAMPTZ '2000-01-01 00:00:00+00' + d.t * INTERVAL '1 microsecond'
    FROM ROWS FROM (pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::bigint[])) AS d(k, t))";
  return fill_sql(k_record, {{"@key@", type.empty() ? std::string("d.k")
                                                    : text_form_sql(category, "(d.k)::" + type)},
                             {"@change_log@", schema.table("change_log")}});
}

std::string consume_cte(const ResolvedJob& job, const StateSchema& schema) {
  // The ARRAY is built once and probes (job, key) once per key: a batch of N keys costs N index
  // probes however long the log is, and none at all when the job has no row (asked of the
  // (job, via, id) index in its order: as EXISTS, it would be planned as a scan that stops at
  // the first row, which is the whole log for a job without one).
  static const std::string k_consume = R"(,
  consumed AS (
    DELETE FROM @change_log@ l
    WHERE (SELECT e.id FROM @change_log@ e WHERE e.job = $3::text AND e.via = 0
           ORDER BY e.id LIMIT 1) IS NOT NULL
      AND l.job = $3::text AND l.via = 0
      AND l.key = ANY (ARRAY(SELECT @key_text@ FROM r, @table@ t
                             WHERE t.@key@ >= r.lo AND t.@key@ <= r.hi))
    RETURNING 1))";
  return fill_sql(k_consume, {{"@key_text@", key_text_sql(job, "t." + job.key_sql)},
                              {"@change_log@", schema.table("change_log")},
                              {"@table@", job.table_sql},
                              {"@key@", job.key_sql}});
}

std::string also_lock_cte(const StateSchema& schema) {
  static const std::string k_lock = R"(
  lk AS MATERIALIZED (SELECT 1 AS held FROM @job_state@ WHERE job = $3::text FOR KEY SHARE),)";
  return fill_sql(k_lock, {{"@job_state@", schema.table("job_state")}});
}

namespace {

// A condition on the key-type expression @key@: in a task's range at or below its cursor (the
// job's, or its slice's); @job@ the job. A job with slice rows keeps its cursors there, also
// with one slice: a job of `parallel: auto` before its first split (its job_state.last_key
// does not move).
const char* const k_covered = R"(
    EXISTS (SELECT 1 FROM @job_state@ s WHERE s.job = @job@ AND (
       (s.slices <= 1 AND @key@ <= @last_key@
        AND NOT EXISTS (SELECT 1 FROM @job_slice@ sl0 WHERE sl0.job = @job@))
       OR EXISTS (
         SELECT 1 FROM @job_slice@ sl WHERE sl.job = @job@
           AND (sl.lo_key IS NULL OR @key@ > @lo_key@)
           AND (sl.hi_key IS NULL OR @key@ <= @hi_key@)
           AND @key@ <= @slice_last_key@))))";
// ... in a range of the main pass set aside and not processed yet.
const char* const k_set_aside = R"(
    EXISTS (SELECT 1 FROM @failed_batches@ fb
            WHERE fb.job = @job@ AND fb.resolved_at IS NULL AND NOT fb.catch_up
              AND @key@ BETWEEN @first_key@ AND @fb_last_key@))";

std::string fill_cursor(const std::string& condition, const ResolvedJob& job,
                        const StateSchema& schema, const std::string& key,
                        const std::string& job_param) {
  return fill_sql(condition, {{"@last_key@", as_key(job, "s.last_key")},
                              {"@lo_key@", as_key(job, "sl.lo_key")},
                              {"@hi_key@", as_key(job, "sl.hi_key")},
                              {"@slice_last_key@", as_key(job, "sl.last_key")},
                              {"@job@", job_param},
                              {"@job_state@", schema.table("job_state")},
                              {"@job_slice@", schema.table("job_slice")},
                              {"@key@", key}});
}

std::string fill_set_aside(const ResolvedJob& job, const StateSchema& schema,
                           const std::string& key, const std::string& job_param) {
  return fill_sql(k_set_aside, {{"@first_key@", as_key(job, "fb.first_key")},
                                {"@fb_last_key@", as_key(job, "fb.last_key")},
                                {"@job@", job_param},
                                {"@failed_batches@", schema.table("failed_batches")},
                                {"@key@", key}});
}

}  // namespace

std::string below_cursor_sql(const ResolvedJob& job, const StateSchema& schema,
                             const std::string& key, const std::string& job_param) {
  // A NULL cursor (no batch yet, slice 0 before its first) has no key at or below it.
  return "(" + fill_cursor(k_covered, job, schema, key, job_param) + " AND NOT " +
         fill_set_aside(job, schema, key, job_param) + ")";
}

std::string settle_sql(const ResolvedJob& job, const StateSchema& schema) {
  // Such a key was never processed (the cursor is below it) and its row is gone: the target has
  // nothing of it, which is what the source has. A key inserted again later has a row of its
  // own, committed after this statement's snapshot: it stays for the main pass.
  static const std::string k_settle = R"(
    DELETE FROM @change_log@ l
    WHERE l.job = $1::text AND l.via = 0
      AND NOT EXISTS (SELECT 1 FROM @table@ t WHERE t.@key@ = @typed@)
      AND NOT @covered@ AND NOT @set_aside@)";
  const std::string typed = as_key(job, "l.key");
  return fill_sql(k_settle, {{"@covered@", fill_cursor(k_covered, job, schema, typed, "$1::text")},
                             {"@set_aside@", fill_set_aside(job, schema, typed, "$1::text")},
                             {"@typed@", typed},
                             {"@change_log@", schema.table("change_log")},
                             {"@table@", job.table_sql},
                             {"@key@", job.key_sql}});
}

std::string drain_sql(const ResolvedJob& job, const StateSchema& schema, DrainPick pick) {
  // `picked` is MATERIALIZED: the DELETE removes exactly the rows the refresh was given keys
  // of, seen by this statement's snapshot; the refresh function's statements take theirs
  // later, and see at least those changes.
  static const std::string k_drain = R"(
  WITH picked AS MATERIALIZED (
    SELECT l.id, l.key FROM @change_log@ l
    WHERE l.job = $1::text AND l.via = 0 AND l.key = ANY (ARRAY(@candidates@))),
  keys AS MATERIALIZED (
    SELECT DISTINCT @typed@ AS k FROM picked p WHERE @below@),
  used AS MATERIALIZED (
    SELECT p.id FROM picked p WHERE @typed@ IN (SELECT k FROM keys)),
  @refresh@,
  gone AS (DELETE FROM @change_log@ l WHERE l.id IN (SELECT u.id FROM used u) RETURNING 1)
  @figures@)";
  static const std::string k_next = R"(
    SELECT f.key FROM @change_log@ f
    WHERE f.job = $1::text AND f.via = 0 AND @below_f@
    ORDER BY f.id LIMIT $2::bigint)";
  const bool next = pick == DrainPick::next;
  std::string candidates = "SELECT pg_catalog.unnest($2::text[])";
  if (next)
    candidates = fill_sql(
        k_next, {{"@below_f@", below_cursor_sql(job, schema, as_key(job, "f.key"), "$1::text")},
                 {"@change_log@", schema.table("change_log")}});
  return explained(fill_sql(
      k_drain, {{"@candidates@", candidates},
                {"@below@", below_cursor_sql(job, schema, as_key(job, "p.key"), "$1::text")},
                {"@refresh@", refresh_cte(job)},
                {"@figures@", figures(schema, next ? "$2::bigint" : "NULL::bigint")},
                {"@typed@", as_key(job, "p.key")},
                {"@change_log@", schema.table("change_log")}}));
}

std::string drain_keys_query(const ResolvedJob& job, const StateSchema& schema) {
  static const std::string k_keys = R"(
    SELECT DISTINCT @typed@ AS k, l.key FROM @change_log@ l
    WHERE l.job = $1::text AND l.via = 0 AND l.key = ANY (ARRAY(
      SELECT f.key FROM @change_log@ f WHERE f.job = $1::text AND f.via = 0 AND @below@
      ORDER BY f.id LIMIT $2::bigint))
    ORDER BY 1)";
  return fill_sql(k_keys,
                  {{"@below@", below_cursor_sql(job, schema, as_key(job, "f.key"), "$1::text")},
                   {"@typed@", as_key(job, "l.key")},
                   {"@change_log@", schema.table("change_log")}});
}

std::string unreadable_keys_query(const StateSchema& schema) {
  static const std::string k_unreadable = R"(
    SELECT DISTINCT k.key FROM (
      SELECT f.key FROM @change_log@ f
      WHERE f.job = $1::text AND f.via = 0 AND NOT @key_reads_as@(f.key, $3::regtype)
      ORDER BY f.id LIMIT $2::bigint) k
    ORDER BY 1)";
  return fill_sql(k_unreadable, {{"@change_log@", schema.table("change_log")},
                                 {"@key_reads_as@", schema.sql + ".key_reads_as"}});
}

std::string set_aside_keys_sql(const StateSchema& schema) {
  static const std::string k_set_aside = R"(
  WITH gone AS (
    DELETE FROM @change_log@ l
    WHERE l.job = $1::text AND l.via = 0 AND l.key = ANY ($2::text[]) RETURNING 1),
  aside AS (
    INSERT INTO @failed_batches@ (job, slice, first_key, last_key, sqlstate, error, catch_up)
    SELECT $1::text, 0, k, k, $3::text, $4::text, true FROM pg_catalog.unnest($2::text[]) AS k
    RETURNING 1)
  SELECT (SELECT pg_catalog.count(*) FROM aside) AS recorded,
         (SELECT pg_catalog.count(*) FROM gone) AS consumed)";
  return fill_sql(k_set_aside, {{"@change_log@", schema.table("change_log")},
                                {"@failed_batches@", schema.table("failed_batches")}});
}

std::string refresh_set_aside_sql(const ResolvedJob& job, const StateSchema& schema) {
  static const std::string k_retry = R"(
  WITH aside AS MATERIALIZED (
    UPDATE @failed_batches@ f SET resolved_at = pg_catalog.now(), attempts = f.attempts + 1
    WHERE f.id = $2::bigint AND f.job = $1::text AND f.catch_up AND f.resolved_at IS NULL
    RETURNING f.first_key),
  keys AS MATERIALIZED (SELECT @typed@ AS k FROM aside a),
  gone AS (
    DELETE FROM @change_log@ l
    WHERE l.job = $1::text AND l.via = 0 AND l.key IN (SELECT a.first_key FROM aside a)
    RETURNING 1),
  @refresh@
  @figures@)";
  return explained(fill_sql(k_retry, {{"@refresh@", refresh_cte(job)},
                                      {"@figures@", figures(schema, "NULL::bigint")},
                                      {"@typed@", as_key(job, "a.first_key")},
                                      {"@failed_batches@", schema.table("failed_batches")},
                                      {"@change_log@", schema.table("change_log")}}));
}

std::string drainable_sql(const ResolvedJob& job, const StateSchema& schema) {
  static const std::string k_drainable = R"(
    SELECT (SELECT pg_catalog.count(*) FROM @change_log@ f
            WHERE f.job = $1::text AND f.via = 0 AND @below@)
         + (SELECT pg_catalog.count(*) FROM @change_log@ f WHERE f.job = $1::text AND f.via > 0))";
  return fill_sql(k_drainable,
                  {{"@below@", below_cursor_sql(job, schema, as_key(job, "f.key"), "$1::text")},
                   {"@change_log@", schema.table("change_log")}});
}

std::string expand_sql(const ResolvedJob& job, const StateSchema& schema, int via) {
  const ResolvedAlso& also = job.also.at(std::size_t(via - 1));
  static const std::string k_expand = R"(
  WITH taken AS MATERIALIZED (
    SELECT l.id, l.key, l.changed_at FROM @change_log@ l
    WHERE l.job = $1::text AND l.via = @via@ AND l.key = ANY (ARRAY(
      SELECT f.key FROM @change_log@ f WHERE f.job = $1::text AND f.via = @via@
      ORDER BY f.id LIMIT $2::bigint))),
  mapped AS MATERIALIZED (
    SELECT DISTINCT m.k FROM (@keys@) AS m(k) WHERE m.k IS NOT NULL AND @below@),
  added AS (
    INSERT INTO @change_log@ (job, via, key, changed_at)
    SELECT $1::text, 0, @key_text@, (SELECT pg_catalog.min(t.changed_at) FROM taken t)
    FROM mapped m RETURNING 1),
  gone AS (DELETE FROM @change_log@ l WHERE l.id IN (SELECT t.id FROM taken t) RETURNING 1)
  SELECT (SELECT pg_catalog.count(*) FROM gone) AS taken,
         (SELECT pg_catalog.count(*) FROM added) AS added)";
  const std::string values =
      "ARRAY(SELECT DISTINCT (t.key)::" + also.column_type + " FROM taken t)";
  return fill_sql(k_expand, {{"@keys@", fill_sql(also.keys_sql, {{"@values@", values}})},
                             {"@below@", below_cursor_sql(job, schema, "m.k", "$1::text")},
                             {"@key_text@", key_text_sql(job, "m.k")},
                             {"@via@", std::to_string(via)},
                             {"@change_log@", schema.table("change_log")}});
}

std::string job_changes_sql(const StateSchema& schema) {
  static const std::string k_count =
      R"(SELECT pg_catalog.count(*) FROM @change_log@ WHERE job = $1)";
  return fill_sql(k_count, {{"@change_log@", schema.table("change_log")}});
}

void lock_for_expansion(pqxx::transaction_base& tx, const StateSchema& schema,
                        const std::string& job) {
  static const std::string k_lock = R"(SELECT 1 FROM @job_state@ WHERE job = $1 FOR UPDATE)";
  tx.exec_params(fill_sql(k_lock, {{"@job_state@", schema.table("job_state")}}), job);
}

bool has_also_changes(pqxx::transaction_base& tx, const StateSchema& schema,
                      const std::string& job) {
  // In the (job, via, id) index's order: one probe (see consume_cte).
  static const std::string k_any = R"(
    SELECT (SELECT id FROM @change_log@ WHERE job = $1 AND via > 0 ORDER BY via, id LIMIT 1)
           IS NOT NULL)";
  return tx.exec_params1(fill_sql(k_any, {{"@change_log@", schema.table("change_log")}}), job)[0]
      .as<bool>();
}

std::map<std::string, PendingChanges> pending_changes(pqxx::transaction_base& tx,
                                                      const StateSchema& schema) {
  std::map<std::string, PendingChanges> out;
  if (!has_feature(state_version(tx, schema), StateFeature::changes)) return out;
  static const std::string k_pending = R"(
    SELECT job, pg_catalog.count(*),
           extract(epoch FROM pg_catalog.now() - pg_catalog.min(changed_at))::float8
    FROM @change_log@ GROUP BY job)";
  for (const auto& row :
       tx.exec(fill_sql(k_pending, {{"@change_log@", schema.table("change_log")}})))
    out[row[0].as<std::string>()] = {row[1].as<long long>(), std::max(0.0, row[2].as<double>())};
  return out;
}

}  // namespace pgxform
