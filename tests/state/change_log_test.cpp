// The statements on change_log (change_log.h), pure: what they bind, what they touch, and that
// each is whole SQL (its parentheses balance) for every key type. The database tests run them.
#include "state/change_log.h"

#include <catch2/catch.hpp>
#include <string>

using pgxform::DrainPick;
using pgxform::ResolvedJob;
using pgxform::StateSchema;

namespace {

ResolvedJob lines_keyed_by(const std::string& type, char category) {
  ResolvedJob job;
  job.name = "lines";
  job.table_sql = R"("legacy"."Order Lines")";
  job.key_sql = R"("id")";
  job.key_type = type;
  job.key_category = category;
  job.captures = true;
  job.refresh_sql = R"("xf"."lines_refresh")";
  pgxform::ResolvedAlso also;
  also.table_sql = R"("legacy"."orders")";
  also.column_sql = R"("id")";
  also.column_type = "bigint";
  also.column_category = 'N';
  also.keys_sql =
      "SELECT t.\"id\" FROM \"legacy\".\"Order Lines\" t WHERE t.\"order_id\" = ANY"
      " (@values@)";
  job.also.push_back(also);
  return job;
}

bool has_part(const std::string& sql, const std::string& part) {
  return sql.find(part) != std::string::npos;
}

// Parentheses balance outside quotes: a statement built from fragments is whole.
bool balanced(const std::string& sql) {
  int depth = 0;
  char quote = 0;
  for (const char c : sql) {
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')' && --depth < 0) {
      return false;
    }
  }
  return depth == 0 && quote == 0;
}

const StateSchema k_log_schema("pgxform");

}  // namespace

TEST_CASE("every change-log statement is whole SQL for every key type") {
  for (const auto& [type, category] : {std::pair<std::string, char>{"bigint", 'N'},
                                       {"text", 'S'},
                                       {"timestamp with time zone", 'D'}}) {
    const ResolvedJob job = lines_keyed_by(type, category);
    for (const std::string& sql :
         {pgxform::drain_sql(job, k_log_schema, DrainPick::next),
          pgxform::drain_sql(job, k_log_schema, DrainPick::explicit_keys),
          pgxform::drain_keys_query(job, k_log_schema), pgxform::set_aside_keys_sql(k_log_schema),
          pgxform::refresh_set_aside_sql(job, k_log_schema),
          pgxform::drainable_sql(job, k_log_schema), pgxform::expand_sql(job, k_log_schema, 1),
          pgxform::settle_sql(job, k_log_schema),
          pgxform::below_cursor_sql(job, k_log_schema, "k", "$1"),
          "WITH r AS (SELECT 1)" + pgxform::consume_cte(job, k_log_schema),
          pgxform::record_changes_sql(k_log_schema, "'lines'", 0, "SELECT 'x'")}) {
      INFO(type << ": " << sql);
      CHECK(balanced(sql));
      CHECK_FALSE(has_part(sql, "@"));  // every placeholder filled
      CHECK_FALSE((has_part(sql, "'lines'") && !has_part(sql, "INSERT INTO")));
    }
  }
}

TEST_CASE("a main-pass batch probes the log by key for the keys it processed, never scans it") {
  const std::string sql = pgxform::consume_cte(lines_keyed_by("bigint", 'N'), k_log_schema);
  CHECK(has_part(sql, "DELETE FROM \"pgxform\".change_log l"));
  CHECK(has_part(sql, "l.job = $3::text AND l.via = 0"));
  CHECK(has_part(sql, "l.key = ANY (ARRAY(SELECT ("));
  CHECK(has_part(sql, "t.\"id\" >= r.lo AND t.\"id\" <= r.hi"));
  // Nothing at all while the job has no change: one probe of the (job, via, id) index.
  CHECK(has_part(sql,
                 "(SELECT e.id FROM \"pgxform\".change_log e WHERE e.job = $3::text AND"
                 " e.via = 0\n           ORDER BY e.id LIMIT 1) IS NOT NULL"));
}

TEST_CASE("a key is at or below the cursor of its job or its slice, and not in a range set aside") {
  const std::string sql =
      pgxform::below_cursor_sql(lines_keyed_by("bigint", 'N'), k_log_schema, "k", "$1");
  CHECK(has_part(sql, "k <= (s.last_key::text)::bigint"));
  CHECK(has_part(sql, "k <= (sl.last_key::text)::bigint"));
  CHECK(has_part(sql, "(sl.hi_key IS NULL OR k <= (sl.hi_key::text)::bigint)"));
  CHECK(has_part(sql, "NOT fb.catch_up"));
  // A done job is no exception: its keys above the cursor are its main pass's (issue 22).
  CHECK_FALSE(has_part(sql, "'done'"));
}

TEST_CASE("a catch-up batch deletes exactly the rows it refreshed, with the refresh") {
  const std::string sql =
      pgxform::drain_sql(lines_keyed_by("bigint", 'N'), k_log_schema, DrainPick::next);
  CHECK(sql.rfind("EXPLAIN (ANALYZE", 0) == 0);
  CHECK(has_part(sql, "\"xf\".\"lines_refresh\"(ARRAY(SELECT k FROM keys ORDER BY k))"));
  CHECK(has_part(sql,
                 "DELETE FROM \"pgxform\".change_log l WHERE l.id IN (SELECT u.id FROM used u)"));
  CHECK(has_part(sql, "ORDER BY f.id LIMIT $2::bigint"));
  CHECK(has_part(sql, "'catch_up', true"));
  CHECK_FALSE(has_part(sql, "$3"));
  const std::string keys =
      pgxform::drain_sql(lines_keyed_by("bigint", 'N'), k_log_schema, DrainPick::explicit_keys);
  CHECK(has_part(keys, "unnest($2::text[])"));
}

TEST_CASE("a date or time key is recorded in its ISO form, others as text") {
  CHECK(pgxform::text_form_sql('D', "r.\"at\"") == "(pg_catalog.to_json(r.\"at\") #>> '{}')");
  CHECK(pgxform::text_form_sql('N', "r.\"id\"") == "(r.\"id\")::pg_catalog.text");
}

TEST_CASE("keys travel as one text[] parameter, quotes and backslashes escaped") {
  CHECK(pgxform::text_array({}) == "{}");
  CHECK(pgxform::text_array({"1", "a\"b", "c\\d", "e,f"}) == R"({"1","a\"b","c\\d","e,f"})");
}
