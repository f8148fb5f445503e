// slice_sharing: how a worker with nothing to run gets a part of a job with `parallel: auto` —
// the split of the biggest slice left at the median of its remaining keys (state/slice_split.h
// says how a split and the slice's own batches keep out of each other's way).
//
// The median is the key of the middle row after the slice's cursor on the key's index (one
// count and one walk of the index: batch_sql.h median_query; or, for a large slice, one walk to
// the middle of the planner's estimate of its rows), so sparse and skewed keys split into halves
// of equal rows, for every key type. A slice is split only while it has at least
// k_split_floor_batches batches of work left (its job's recent batches' rows, sized by the
// batch sizer to last about target_batch_ms, else its batch_size), so that each half has a
// batch or more: below that, splitting would cost more than it saves, and the job's last
// slices end on the workers that hold them.
#pragma once

#include <optional>
#include <vector>

#include "catalog/catalog.h"
#include "database/database.h"
#include "state/state_schema.h"
#include "state/task_cursor.h"

namespace pgxform {

inline constexpr long long k_split_floor_batches = 2;
// A slice with at least this many rows left, by the planner's estimate (a table analyzed once),
// is split at the key that many rows over two into it, one walk of half its keys; a smaller
// one, or any of a table never analyzed, by an exact count first. The count is a walk of every
// key left: 0.25 s over 3.6 million keys on the long-tail bench, while the idle worker waits
// and the donor goes on, so that the new slice ends later than the donor.
inline constexpr double k_estimated_split_rows = 100000;

struct SplitResult {
  std::optional<int> slice;  // the new slice, free to be claimed
  bool too_small = false;    // no slice has enough work left to be split
  bool held = false;         // a command holds the job (reset, retry-failed, ...): no split now
};

// The rows below which no slice of `job` is split.
long long split_floor(pqxx::connection& conn, const StateSchema& schema, const ResolvedJob& job);

// Splits the one of `slices` (open slices of `job`, held by other workers) with the most rows
// left, when it has at least split_floor rows left and no command holds the job.
SplitResult split_biggest(pqxx::connection& conn, const StateSchema& schema, const ResolvedJob& job,
                          const std::vector<Cursor>& slices);

}  // namespace pgxform
