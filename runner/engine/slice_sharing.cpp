#include "engine/slice_sharing.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "catalog/table_stats.h"
#include "engine/batch_sql.h"
#include "state/slice_split.h"

namespace pgxform {

namespace {

// The rows a slice has left after its cursor, and the key of the middle one.
struct Left {
  long long rows = 0;
  std::optional<std::string> median;
};

Left rows_left(pqxx::connection& conn, const ResolvedJob& job, const Cursor& slice) {
  const BatchShape shape{Slicing::slice,
                         slice.last_key ? CursorStart::after_last_key : CursorStart::none,
                         slice.hi_key ? UpperBound::hi_key : UpperBound::open};
  pqxx::read_transaction tx(conn);
  // Many rows left: the planner's estimate of them, and one walk to its middle.
  const std::optional<double> estimate = estimated_rows_in(tx, job, slice.last_key, slice.hi_key);
  if (estimate && *estimate >= k_estimated_split_rows) {
    const long long rows = std::llround(*estimate);
    const pqxx::row r =
        tx.exec_params1(key_at_query(job, shape), slice.last_key, slice.hi_key, (rows - 1) / 2);
    if (!r[0].is_null()) return {rows, r[0].as<std::string>()};
  }
  const pqxx::row r = tx.exec_params1(median_query(job, shape), slice.last_key, slice.hi_key);
  Left left{r[0].as<long long>(), std::nullopt};
  if (!r[1].is_null()) left.median = r[1].as<std::string>();
  return left;
}

}  // namespace

long long split_floor(pqxx::connection& conn, const StateSchema& schema, const ResolvedJob& job) {
  const long long batch = recent_batch_rows(conn, schema, job.name).value_or(job.batch_size);
  return k_split_floor_batches * std::max(1LL, batch);
}

SplitResult split_biggest(pqxx::connection& conn, const StateSchema& schema, const ResolvedJob& job,
                          const std::vector<Cursor>& slices) {
  // Asked first, as finding the medians costs a count of each slice's keys left.
  if (held_by_command(conn, schema, job.name)) return {std::nullopt, false, true};
  std::optional<Cursor> donor;
  Left most;
  for (const Cursor& slice : slices) {
    const Left left = rows_left(conn, job, slice);
    if (left.median && left.rows > most.rows) {
      most = left;
      donor = slice;
    }
  }
  const long long floor = split_floor(conn, schema, job);
  if (!donor || most.rows < floor) return {std::nullopt, true};
  SplitResult result;
  result.slice = split_slice(conn, schema, job, donor->slice, *most.median);
  if (result.slice)
    spdlog::info(
        "{}: slice {} split at its median key ({} rows left): slice {} takes the upper "
        "half",
        job.name, donor->slice, most.rows, *result.slice);
  return result;
}

}  // namespace pgxform
