// task_cursor: a task's cursor — the last key its batches committed, in job_state (a job) or
// job_slice (a slice of a job with `parallel: K`) — and the SQL that moves it inside the batch
// statement (engine/batch_sql.h composes them), so that a batch's writes and the cursor's
// move commit together. The cursor only moves from the key it was read at.
#pragma once

#include <optional>
#include <string>

#include "catalog/catalog.h"
#include "state/schema_name.h"

namespace pgxform {

// Which cursor a task moves: the job's own (job_state) or its slice's (job_slice).
enum class Slicing { whole_job, slice };
inline Slicing slicing_of(const ResolvedJob& job) {
  return job.parallel > 1 || job.parallel_auto ? Slicing::slice : Slicing::whole_job;
}

// Where a task's batches continue from.
struct Cursor {
  std::optional<std::string> last_key;  // exclusive lower bound; none before the first batch
  std::optional<std::string> hi_key;    // inclusive upper bound of a slice; none = open
  std::string status;
  int slice = 0;
};

// What the batch statement writes to the task's row, after the CTE `r` (columns lo and hi of
// the key's type, rows) that holds the range it processed. Parameters: $1 the cursor's key as
// it was read, $3 the job, $4 the slice.
//   advance  the cursor moves to r.hi, only if it is still at $1; the task is counted;
//   stay     only the counters (a range redone below the cursor; $1 must be NULL).
// CTE `c` is the task's row, `j` (a slice only) the job's; `batch_no` is the batch's number as
// an expression over them.
enum class CursorMove { advance, stay };
struct CursorSql {
  std::string ctes;      // ", c AS (...)[, j AS (...)]"
  std::string batch_no;  // "(SELECT batches_done FROM c)"
};
// `within`: a further condition on `c` and `r` for the move (a slice of `parallel: auto`: r.hi
// within the slice's hi_key as it is at the commit, slice_split.h).
CursorSql cursor_move_sql(const StateSchema& schema, Slicing slicing, CursorMove move,
                          const std::string& within = "");
// The CTE `c` that moves the cursor from $1 past $5 without counting (a range set aside).
std::string cursor_skip_sql(const StateSchema& schema, Slicing slicing);

}  // namespace pgxform
