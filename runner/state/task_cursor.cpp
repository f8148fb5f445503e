#include "state/task_cursor.h"

#include "base/sql_text.h"

namespace pgxform {

namespace {

const char* cursor_table(Slicing slicing) {
  return slicing == Slicing::slice ? "job_slice" : "job_state";
}

// The task's row of its cursor table, as a WHERE condition on alias `c`.
const char* task_row(Slicing slicing) {
  return slicing == Slicing::slice ? "c.job = $3 AND c.slice = $4" : "c.job = $3";
}

}  // namespace

CursorSql cursor_move_sql(const StateSchema& schema, Slicing slicing, CursorMove move,
                          const std::string& within) {
  // `c`: the task's row. It moves only from the key it was read at ($1), or, for a range
  // redone below it, stays ($1 NULL); the counters count the range either way.
  static const std::string k_task = R"(,
  c AS (UPDATE @cursor_table@ c SET @move@rows_done = c.rows_done + r.rows, batches_done = c.batches_done + 1,
          updated_at = pg_catalog.clock_timestamp()@running@
        FROM r WHERE @task_row@ AND @from@
        RETURNING c.batches_done))";
  // `j`: a slice's job, counted too.
  static const std::string k_job = R"(,
  j AS (UPDATE @job_state@ j SET rows_done = j.rows_done + r.rows, batches_done = j.batches_done + 1,
          updated_at = pg_catalog.clock_timestamp()@running@
        FROM r, c WHERE j.job = $3
        RETURNING j.batches_done))";
  const bool advance = move == CursorMove::advance;
  const std::string running = advance ? ", status = 'running'" : "";
  CursorSql out;
  out.ctes = fill_sql(
      k_task,
      {{"@move@", advance ? "last_key = r.hi::text, " : ""},
       {"@running@", running},
       {"@task_row@", std::string(task_row(slicing)) + (within.empty() ? "" : " AND " + within)},
       {"@from@", advance ? "c.last_key IS NOT DISTINCT FROM $1::text" : "$1::text IS NULL"},
       {"@cursor_table@", schema.table(cursor_table(slicing))}});
  out.batch_no = "(SELECT batches_done FROM c)";
  if (slicing == Slicing::slice) {
    out.ctes +=
        fill_sql(k_job, {{"@running@", running}, {"@job_state@", schema.table("job_state")}});
    out.batch_no = "(SELECT batches_done FROM j)";
  }
  return out;
}

std::string cursor_skip_sql(const StateSchema& schema, Slicing slicing) {
  static const std::string k_skip = R"(
    UPDATE @cursor_table@ c SET last_key = $5::text, updated_at = pg_catalog.clock_timestamp()
    WHERE @task_row@ AND c.last_key IS NOT DISTINCT FROM $1::text RETURNING 1)";
  return fill_sql(k_skip, {{"@task_row@", task_row(slicing)},
                           {"@cursor_table@", schema.table(cursor_table(slicing))}});
}

}  // namespace pgxform
