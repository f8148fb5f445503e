// key_span: where a job's keys lie, as numbers on the key's own scale (catalog/table_stats.h
// reads it from the leading table): the analysis turns a cursor into a share of the key range.
#pragma once

#include <optional>

namespace pgxform {

// The first and last key of the table, and `at` when given, as numbers on the key's own scale:
// numeric keys as they are, date and time keys as seconds since the epoch. None for keys of
// other types, and for a table without keys. Two probes on the key's index (ORDER BY ... LIMIT
// 1 rather than min/max, which not every key type has).
struct KeySpan {
  double first = 0;
  double last = 0;
  std::optional<double> at;
};

}  // namespace pgxform
