#include "engine/slice_sharing.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "catalog/table_stats.h"
#include "engine/batch_sql.h"
#include "state/slice_split.h"

namespace pgxform {

namespace {

// The rows a slice has left after its cursor, and the key where it is split.
struct Left {
  long long rows = 0;
  std::optional<std::string> split_point;
};

// `ahead`: the rows of the slice's batch in flight, which stay the donor's.
Left rows_left(pqxx::connection& conn, const ResolvedJob& job, const Cursor& slice,
               long long ahead) {
  const BatchShape shape{Slicing::slice,
                         slice.last_key ? CursorStart::after_last_key : CursorStart::none,
                         slice.hi_key ? UpperBound::hi_key : UpperBound::open};
  pqxx::read_transaction tx(conn);
  // Many rows left: the planner's estimate of them, and one walk to the split point.
  const std::optional<double> estimate = estimated_rows_in(tx, job, slice.last_key, slice.hi_key);
  if (estimate && *estimate >= k_estimated_split_rows) {
    const long long rows = std::llround(*estimate);
    const pqxx::row r = tx.exec_params1(key_at_query(job, shape), slice.last_key, slice.hi_key,
                                        std::min(rows - 1, (rows + ahead - 1) / 2));
    if (!r[0].is_null()) return {rows, r[0].as<std::string>()};
  }
  const pqxx::row r =
      tx.exec_params1(split_point_query(job, shape), slice.last_key, slice.hi_key, ahead);
  Left left{r[0].as<long long>(), std::nullopt};
  if (!r[1].is_null()) left.split_point = r[1].as<std::string>();
  return left;
}

// The rows of the job's batches now: its recent batches' average, else its batch_size.
long long batch_rows_now(pqxx::connection& conn, const StateSchema& schema,
                         const ResolvedJob& job) {
  return std::max(1LL, recent_batch_rows(conn, schema, job.name).value_or(job.batch_size));
}

}  // namespace

SplitResult split_biggest(pqxx::connection& conn, const StateSchema& schema, const ResolvedJob& job,
                          const std::vector<Cursor>& slices) {
  // Asked first, as finding the split points costs a walk (or a count) of each slice's keys.
  if (held_by_command(conn, schema, job.name)) return {std::nullopt, false, true};
  const long long batch = batch_rows_now(conn, schema, job);
  std::optional<Cursor> donor;
  Left most;
  for (const Cursor& slice : slices) {
    const Left left = rows_left(conn, job, slice, batch);
    if (left.split_point && left.rows > most.rows) {
      most = left;
      donor = slice;
    }
  }
  if (!donor || most.rows < k_split_floor_batches * batch) return {std::nullopt, true};
  SplitResult result;
  result.slice = split_slice(conn, schema, job, donor->slice, *most.split_point);
  if (result.slice)
    spdlog::info(
        "{}: slice {} split past its batch in flight and half the rest ({} rows left): slice {} "
        "takes the upper part",
        job.name, donor->slice, most.rows, *result.slice);
  return result;
}

}  // namespace pgxform
