// slice_sharing: how a worker with nothing to run gets a part of a job with `parallel: auto` —
// the split of the biggest slice left past its batch in flight and half of the rest of its keys
// (state/slice_split.h says how a split and the slice's own batches keep out of each other's
// way).
//
// The split point is a row count on the key's index, not the key values' middle, so sparse and
// skewed keys split evenly, for every key type: the key of the row B + (R - B) / 2 after the
// slice's cursor, where R is the rows it has left and B the rows of its batch in flight (the
// slice is held by a worker that is running it; the job's recent batches' average, else its
// batch_size). The split waits for that batch to commit (slice_split.h, rule 2) and both parts
// start from there, so the donor's batch in flight counts as the donor's: the median (B = 0)
// gave the new slice B rows more, and it ended about a batch after the donor, one worker idle
// (bench/longtail.sh). The donor's next batch may lock the slice's row before the waiting split
// does (a row lock keeps no queue for a newcomer; seen with the split's session starved of CPU):
// the split then waits for that batch too, and its point is still ahead of the donor unless the
// slice was near the floor; a point the donor has passed loses the split, which is tried again
// from fresh figures (task_runner.cpp). R and the point are found by one count and one walk of the
// index (batch_sql.h split_point_query), or, for a large slice, by the planner's estimate of R and
// one walk. A slice is split only while it has at least k_split_floor_batches batches of work left
// (the same batch size): a batch or more past the one in flight, half a batch or more for each
// part. Below that, splitting would cost more than it saves, and the job's last slices end on
// the workers that hold them.
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

// Splits the one of `slices` (open slices of `job`, held by other workers) with the most rows
// left, past its batch in flight and half the rest, when it has at least k_split_floor_batches
// batches left and no command holds the job.
SplitResult split_biggest(pqxx::connection& conn, const StateSchema& schema, const ResolvedJob& job,
                          const std::vector<Cursor>& slices);

}  // namespace pgxform
