// logged_batch: a batch as batch_log recorded it (state/batch_log.h reads the rows), the input
// of every figure the analysis computes of a job's batches: trend, profile, throughput.
#pragma once

#include <optional>
#include <string>

#include "analysis/block_counters.h"

namespace pgxform {

// What made a batch_log row. A run's own batches ask for a size; the ranges that bisect
// narrowed down and those that retry-failed redid are explicit ranges, logged without one
// (batch_size NULL, state version 6 on), mostly of a row or a few: their cost is their fixed
// overhead, and mixed with the job's batches they would pull its percentiles to a few ms.
// retry-failed resolves its range in the transaction that logs it, which tells the two apart.
// Rows logged before version 6 are all batches: nothing tells their ranges apart.
enum class BatchKind { batch, bisect, retry };
// "batch", "bisect", "retry".
const char* batch_kind_name(BatchKind kind);

struct LoggedBatch {
  BatchKind kind = BatchKind::batch;
  long long batch_no = 0;
  int slice = 0;
  std::string first_key, last_key;
  long long rows = 0;
  double duration_ms = 0;
  double started_s = 0;                 // seconds since the epoch
  std::optional<long long> asked;       // the batch's size; none for a range and before v6
  std::optional<BlockCounters> blocks;  // none before version 5 and for rows without them
};

}  // namespace pgxform
