// The range builder's SQL (pure): for each key type and batch shape, the statement quotes every
// identifier, binds every value, takes the five parameters of batch_sql.h, and writes the
// state it should — and only that. The database tests run these statements for real.
#include "engine/batch_sql.h"

#include <catch2/catch.hpp>
#include <string>

#include "state/batch_log.h"
#include "state/failed_ranges.h"

using pgxform::BatchShape;
using pgxform::CursorMove;
using pgxform::CursorStart;
using pgxform::ResolvedJob;
using pgxform::Slicing;
using pgxform::StateSchema;
using pgxform::UpperBound;

namespace {

ResolvedJob job_keyed_by(const std::string& type, char category) {
  ResolvedJob job;
  job.name = "items";
  job.table_schema = "le\"gacy";
  job.table_name = "Items";
  job.table_sql = R"("le""gacy"."Items")";
  job.key_name = "id";
  job.key_sql = R"("id")";
  job.key_type = type;
  job.key_category = category;
  job.function_sql = R"("xf"."items")";
  job.batch_size = 100;
  return job;
}

bool contains(const std::string& sql, const std::string& part) {
  return sql.find(part) != std::string::npos;
}

// Every parameter $1..$n is referenced, so that each has a type when the server prepares it.
void check_parameters(const std::string& sql, int n) {
  INFO(sql);
  for (int i = 1; i <= n; ++i) CHECK(contains(sql, "$" + std::to_string(i)));
  CHECK_FALSE(contains(sql, "$" + std::to_string(n + 1)));
}

const StateSchema k_state("pgxform");

}  // namespace

TEST_CASE("the batch statement casts its key parameters to the key's own type, for every key") {
  for (const auto& [type, category] : {std::pair<std::string, char>{"bigint", 'N'},
                                       {"text", 'S'},
                                       {"uuid", 'U'},
                                       {"timestamp with time zone", 'D'}}) {
    const ResolvedJob job = job_keyed_by(type, category);
    const std::string first = batch_sql(job, k_state, {});
    const std::string next = batch_sql(
        job, k_state, {Slicing::whole_job, CursorStart::after_last_key, UpperBound::open});
    const std::string bounded =
        batch_sql(job, k_state, {Slicing::slice, CursorStart::after_last_key, UpperBound::hi_key});
    INFO(type << ": " << bounded);
    CHECK(contains(first, R"(t."id" IS NOT NULL)"));
    CHECK_FALSE(contains(first, "($1::text)::" + type));
    CHECK(contains(next, R"(t."id" > ($1::text)::)" + type));
    CHECK_FALSE(contains(next, R"(t."id" <= ($5::text)::)" + type));
    CHECK(contains(bounded, R"(t."id" <= ($5::text)::)" + type));
    for (const auto& sql : {first, next, bounded}) {
      check_parameters(sql, 5);
      CHECK(sql.rfind("EXPLAIN (ANALYZE, BUFFERS", 0) == 0);
      CHECK(contains(sql, R"(FROM "le""gacy"."Items" t)"));
      CHECK(contains(sql, R"("xf"."items"(b.lo, b.hi)::text)"));
      // Keyset, never OFFSET; the batch size is a parameter.
      CHECK(contains(sql, "LIMIT $2"));
      CHECK_FALSE(contains(sql, "OFFSET"));
      // No value is pasted into the text: the job's name is $3.
      CHECK_FALSE(contains(sql, "'items'"));
    }
  }
}

TEST_CASE("a batch moves its own cursor only from where it was read, and a slice counts its job") {
  const ResolvedJob job = job_keyed_by("bigint", 'N');
  const std::string whole = batch_sql(job, k_state, {});
  CHECK(contains(whole, R"(UPDATE "pgxform".job_state c SET last_key = r.hi::text)"));
  CHECK(contains(whole, "c.last_key IS NOT DISTINCT FROM $1::text"));
  CHECK_FALSE(contains(whole, "job_slice"));
  const std::string slice = batch_sql(job, k_state, {Slicing::slice, {}, {}});
  CHECK(contains(slice, R"(UPDATE "pgxform".job_slice c SET last_key = r.hi::text)"));
  CHECK(contains(slice, "c.job = $3 AND c.slice = $4"));
  CHECK(contains(slice,
                 R"(j AS (UPDATE "pgxform".job_state j SET rows_done = j.rows_done + r.rows)"));
}

TEST_CASE("a range redone below the cursor is counted and logged without moving the cursor") {
  const ResolvedJob job = job_keyed_by("bigint", 'N');
  const std::string advance = range_sql(job, k_state, Slicing::whole_job, CursorMove::advance);
  const std::string stay = range_sql(job, k_state, Slicing::slice, CursorMove::stay);
  for (const auto& sql : {advance, stay}) {
    check_parameters(sql, 5);
    CHECK(contains(sql, "SELECT ($2::text)::bigint AS lo, ($5::text)::bigint AS hi"));
    CHECK(contains(sql, "rows_done = c.rows_done + r.rows, batches_done = c.batches_done + 1"));
  }
  CHECK(contains(advance, "last_key = r.hi::text"));
  CHECK_FALSE(contains(stay, "last_key ="));
  CHECK_FALSE(contains(stay, "status = 'running'"));
  CHECK(contains(stay, "$1::text IS NULL"));
  // Its figures name its slice, as a run's batch of the slice would.
  CHECK(contains(stay, "'slice', $4::int"));
}

TEST_CASE("the log statement binds the job and the eight counters, and logs only a moved cursor") {
  const std::string sql = log_sql(k_state);
  check_parameters(sql, 9);
  CHECK(contains(sql, R"(INSERT INTO "pgxform".batch_log)"));
  CHECK(contains(sql, "WHERE (s.j ->> 'moved')::int = 1"));
  CHECK(contains(sql, pgxform::k_batch_setting));
}

TEST_CASE("reading bounds, splitting, trials, counts and calls leave the state alone") {
  const ResolvedJob job = job_keyed_by("uuid", 'U');
  const std::string bounds = bounds_query(job, {});
  check_parameters(bounds, 5);
  check_parameters(trial_batch_sql(job, {Slicing::whole_job, CursorStart::after_last_key, {}}), 5);
  const std::string next =
      next_range_query(job, {Slicing::whole_job, CursorStart::after_last_key, UpperBound::hi_key});
  check_parameters(next, 5);
  // No row once no key is left, and the rows of a batch counted as the run counts them.
  CHECK(contains(next, "WHERE q.lo IS NOT NULL"));
  CHECK(contains(next, "CASE WHEN q.full THEN $2::bigint ELSE (SELECT pg_catalog.count(*)"));
  check_parameters(split_query(job), 2);
  CHECK(
      range_rows_query(job) ==
      R"(SELECT (SELECT pg_catalog.count(*) FROM "le""gacy"."Items" t WHERE t."id" >= ($1::text)::uuid)"
      R"( AND t."id" <= ($2::text)::uuid))");
  CHECK(call_query(job) == R"(SELECT "xf"."items"(($1::text)::uuid, ($2::text)::uuid)::text)");
  for (const auto& sql : {bounds, next, trial_batch_sql(job, {}), split_query(job),
                          range_rows_query(job), call_query(job)}) {
    INFO(sql);
    CHECK_FALSE(contains(sql, "pgxform"));
    CHECK_FALSE(contains(sql, "UPDATE"));
  }
}

TEST_CASE("a unique key finds a full batch's last key in one walk and counts no rows") {
  ResolvedJob job = job_keyed_by("bigint", 'N');
  job.key_unique = true;
  const std::string sql =
      batch_sql(job, k_state, {Slicing::whole_job, CursorStart::after_last_key, UpperBound::open});
  INFO(sql);
  check_parameters(sql, 5);
  CHECK(contains(sql, "OFFSET $2::bigint - 1 LIMIT 1) AS full_hi"));
  // The last batch of a range, not full, ends at the range's last key and is counted.
  CHECK(contains(sql, R"(ORDER BY t."id" DESC LIMIT 1)"));
  CHECK(contains(sql, "CASE WHEN b.full THEN $2::bigint ELSE (SELECT pg_catalog.count(*)"));
  job.key_unique = false;
  CHECK_FALSE(contains(batch_sql(job, k_state, {}), "OFFSET"));
}

TEST_CASE("the batch function holds the batch statement, called with its five parameters") {
  const ResolvedJob job = job_keyed_by("uuid", 'U');
  const BatchShape next{Slicing::whole_job, CursorStart::after_last_key, UpperBound::open};
  const pgxform::BatchFunction f = pgxform::batch_function(job, k_state, next);
  INFO(f.ddl);
  REQUIRE(contains(f.name, "pg_temp.pgxform_batch_"));
  // The call: EXPLAIN for the counters, the five parameters bound, nothing else.
  CHECK(contains(f.call, "EXPLAIN"));
  CHECK(contains(f.call, "SELECT " + f.name + "($1::text, $2::bigint, $3::text, $4::int"));
  check_parameters(f.call, 5);
  // The body: the same batch (cursor moved from where it was read), planned generically; the
  // job's function called through a function of its own that keeps the session's planning.
  CHECK(contains(f.ddl, "SET plan_cache_mode = force_generic_plan"));
  CHECK(contains(f.ddl, "SET plan_cache_mode FROM CURRENT"));
  CHECK(contains(f.ddl, "(lo uuid, hi uuid) RETURNS text"));
  CHECK(contains(f.ddl, R"(RETURN "xf"."items"(lo, hi)::text)"));
  CHECK(contains(f.ddl, f.name + "_call(b.lo, b.hi)"));
  CHECK(contains(f.ddl, "INTO pgxform_figures"));
  CHECK(contains(f.ddl, "($1::text)::uuid"));
  // A different shape or job is a different function: one name never holds two bodies.
  CHECK(pgxform::batch_function(job, k_state, {}).name != f.name);
  ResolvedJob other = job;
  other.function_sql = R"("xf"."others")";
  CHECK(pgxform::batch_function(other, k_state, next).name != f.name);
}

TEST_CASE("an identifier that holds the function's dollar tag gets no batch function") {
  ResolvedJob job = job_keyed_by("bigint", 'N');
  job.table_sql = R"("le""gacy"."x$pgxform_batch$y")";
  CHECK(pgxform::batch_function(job, k_state, {}).name.empty());
  job = job_keyed_by("bigint", 'N');
  job.function_sql = R"("xf"."$pgxform_batch$")";
  CHECK(pgxform::batch_function(job, k_state, {}).name.empty());
}

TEST_CASE(
    "a batch of a given last key walks nothing and takes $7 rows up to $6, within the slice") {
  ResolvedJob job = job_keyed_by("bigint", 'N');
  job.key_unique = true;
  BatchShape shape{Slicing::slice, CursorStart::after_last_key, UpperBound::hi_key,
                   pgxform::LastKey::given};
  const std::string sql = batch_sql(job, k_state, shape);
  INFO(sql);
  check_parameters(sql, 7);
  CHECK_FALSE(contains(sql, "OFFSET"));
  CHECK_FALSE(contains(sql, "DESC LIMIT 1"));
  // lo is the first key after the cursor as the batch reads it; $6 must not be past hi_key.
  CHECK(contains(sql, R"(t."id" > ($1::text)::bigint)"));
  CHECK(contains(sql, "l.lo <= ($6::text)::bigint AND ($6::text)::bigint <= ($5::text)::bigint"));
  // Its rows are $7, as the finder's walk counted them; $2 is the size asked.
  CHECK(contains(sql, "$7::bigint AS rows"));
  CHECK_FALSE(contains(sql, "count(*) FROM " + job.table_sql));
  CHECK(contains(sql, "'size', $2::bigint"));
  const pgxform::BatchFunction f = pgxform::batch_function(job, k_state, shape);
  CHECK(contains(f.call, "$5::text, $6::text, $7::bigint)"));
  CHECK(contains(f.ddl, "(text, bigint, text, integer, text, text, bigint) RETURNS void"));
  // Reading bounds walks, whatever the shape says; a key that is not unique always walks.
  CHECK(contains(pgxform::bounds_query(job, shape), "OFFSET $2::bigint - 1"));
  job.key_unique = false;
  CHECK_FALSE(contains(batch_sql(job, k_state, shape), "$6"));
}
