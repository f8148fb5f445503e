// slice_split: the slices of a job with `parallel: auto`, as its workers share them — which
// are left, the lock a batch holds on its slice's row, and the split of a slice in two.
//
// Design note: no key is processed by two slices.
//   The slices of a job partition its key space: slice i covers lo_key < k <= hi_key (NULL
//   bounds open) and has processed the keys up to its last_key. A split only ever moves the
//   keys (mid, hi_key] of a slice (the donor) to a new slice with lo_key = last_key = mid: the
//   donor's hi_key becomes mid. Two rules make that safe while the donor runs, in any runner:
//   1. Every batch of a slice of an `auto` job first locks its slice's row (lock_slice, FOR
//      NO KEY UPDATE) and reads its hi_key there, in the batch's own transaction; the batch
//      then processes keys up to that hi_key only, and moves the cursor in the same
//      transaction. So the row lock is held from the bound's read to the batch's commit.
//   2. A split (split_slice) locks the donor's row (FOR UPDATE, so it waits for a batch in
//      flight to commit), reads the donor's cursor as it is now, and moves hi_key down to mid
//      only when last_key < mid < hi_key still holds; the new slice is inserted in the same
//      transaction. Splits of one job take turns (split_lock), so slice numbers never collide;
//      none is made while a command holds the job (JobClaim, state_locks.h: claim_lock).
//   Hence a batch either committed before the split (the split saw its last_key, and mid is
//   above it), or starts after it (it reads the new hi_key): the keys above mid are the new
//   slice's alone. A failing batch is narrowed down in several transactions, and a split may
//   come between any two: each of them processes or sets aside its range only as far as the
//   slice's hi_key reaches in that transaction (lock_slice_range, under the same row lock),
//   and leaves the keys above it to the slice that has them now, which processes them, or
//   sets them aside, itself. The cursor's move of a range is also bounded by the slice's
//   hi_key at its commit (task_cursor.h).
#pragma once

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "state/schema_name.h"
#include "state/task_cursor.h"

namespace pgxform {

// The job's slices that are not done, in slice order (none: the job is done, or was never cut).
std::vector<Cursor> open_slices(pqxx::connection& conn, const StateSchema& schema,
                                const std::string& job);

// Locks the slice's row for `tx` (rule 1 above) and returns its cursor as it is now; none when
// the slice has no row.
std::optional<Cursor> lock_slice(pqxx::transaction_base& tx, const StateSchema& schema,
                                 const std::string& job, int slice);

// A key range [first, last] of a slice, as much of it as is still the slice's: read under
// lock_slice's lock (rule 1 above), so that it stays the slice's until `tx` ends.
struct SliceRange {
  Cursor cursor;                    // the slice's cursor as it is now
  std::optional<std::string> last;  // last, or the slice's hi_key when that is below it; none
                                    // when first is above hi_key: the range is another slice's
};
// Locks the slice's row for `tx` as lock_slice does and clips [first, last] (keys of the job's
// type, compared as such) to the slice's hi_key as it is now; none when the slice has no row.
std::optional<SliceRange> lock_slice_range(pqxx::transaction_base& tx, const StateSchema& schema,
                                           const ResolvedJob& job, int slice,
                                           const std::string& first, const std::string& last);

// Splits slice `donor` of `job` at `mid` (rule 2 above): the new slice's number, or none when
// the donor is done, its cursor is no longer below mid, or a command holds the job (JobClaim).
std::optional<int> split_slice(pqxx::connection& conn, const StateSchema& schema,
                               const ResolvedJob& job, int donor, const std::string& mid);

// Whether a command holds the job now (JobClaim, state_locks.h): no slice of it is split then.
bool held_by_command(pqxx::connection& conn, const StateSchema& schema, const std::string& job);

// recorded_slices (state_locks.h) in a transaction of its own.
int recorded_slices(pqxx::connection& conn, const StateSchema& schema, const std::string& job);

// The rows of the job's recent batches, on average (the size its batches settled at, as the
// batch sizer aims them at target_batch_ms); none before its first batch.
std::optional<long long> recent_batch_rows(pqxx::connection& conn, const StateSchema& schema,
                                           const std::string& job);

}  // namespace pgxform
