#include "state/task_cursor.h"

namespace pgxform {

namespace {

const char* cursor_table(Slicing slicing) {
  return slicing == Slicing::slice ? "job_slice" : "job_state";
}

// The task's row of its cursor table, as a WHERE condition on alias `c`.
std::string task_row(Slicing slicing) {
  return slicing == Slicing::slice ? "c.job = $3 AND c.slice = $4" : "c.job = $3";
}

}  // namespace

CursorSql cursor_move_sql(const StateSchema& schema, Slicing slicing, CursorMove move) {
  const bool advance = move == CursorMove::advance;
  const std::string counted =
      "rows_done = {t}.rows_done + r.rows, batches_done = {t}.batches_done + 1,"
      " updated_at = pg_catalog.clock_timestamp()" +
      std::string(advance ? ", status = 'running'" : "");
  auto counting = [&](const std::string& alias) {
    std::string text = counted;
    for (auto at = text.find("{t}"); at != std::string::npos; at = text.find("{t}"))
      text.replace(at, 3, alias);
    return text;
  };
  CursorSql out;
  out.ctes = ", c AS (UPDATE " + schema.table(cursor_table(slicing)) + " c SET " +
             (advance ? "last_key = r.hi::text, " : "") + counting("c") + " FROM r WHERE " +
             task_row(slicing) +
             (advance ? " AND c.last_key IS NOT DISTINCT FROM $1::text" : " AND $1::text IS NULL") +
             " RETURNING c.batches_done)";
  out.batch_no = "(SELECT batches_done FROM c)";
  if (slicing == Slicing::slice) {
    out.ctes += ", j AS (UPDATE " + schema.table("job_state") + " j SET " + counting("j") +
                " FROM r, c WHERE j.job = $3 RETURNING j.batches_done)";
    out.batch_no = "(SELECT batches_done FROM j)";
  }
  return out;
}

std::string cursor_skip_sql(const StateSchema& schema, Slicing slicing) {
  return "UPDATE " + schema.table(cursor_table(slicing)) +
         " c SET last_key = $5::text, updated_at = pg_catalog.clock_timestamp() WHERE " +
         task_row(slicing) + " AND c.last_key IS NOT DISTINCT FROM $1::text RETURNING 1";
}

}  // namespace pgxform
