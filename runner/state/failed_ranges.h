// failed_ranges: failed_batches (state schema version 2), the key ranges that `on_error: skip`
// set aside. A range is recorded in the same statement that moves its task's cursor past it,
// so a skipped range is never lost: it is either still ahead of the cursor or recorded here.
// retry-failed redoes the unresolved ones, each in a transaction that also marks it resolved;
// one that fails again keeps its row, with the new error and one more attempt.
#pragma once

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "database/retry.h"
#include "state/schema_name.h"
#include "state/task_cursor.h"

namespace pgxform {

// Moves the task's cursor from $1 past [$2, $5] and records the range with SQLSTATE $6 and
// error $7, in one statement ($3 the job, $4 the slice). Returns `moved` and `recorded`.
std::string set_aside_sql(const StateSchema& schema, Slicing slicing);

struct FailedRange {
  long long id = 0;
  int slice = 0;
  std::string first_key, last_key;
  // A key whose refresh failed in catch-up (first_key = last_key, its text form as change_log
  // records it; state version 11), not a range of the main pass.
  bool catch_up = false;
};

// The job's unresolved ranges, oldest first; none before version 2. `which`: every one, or
// only the main pass's, or only catch-up's keys.
enum class SetAsideKind { any, main_pass, catch_up };
std::vector<FailedRange> unresolved_ranges(pqxx::transaction_base& tx, const StateSchema& schema,
                                           const std::string& job,
                                           SetAsideKind which = SetAsideKind::any);
// Locks the range for `tx`: false when another session works on it, or it was resolved.
bool take_range(pqxx::transaction_base& tx, const StateSchema& schema, long long id);
void resolve_range(pqxx::transaction_base& tx, const StateSchema& schema, long long id);
void record_retry_failure(pqxx::transaction_base& tx, const StateSchema& schema, long long id,
                          const Failure& failure);

// The unresolved ranges of all jobs, and how many jobs they belong to.
struct SetAside {
  long long ranges = 0;
  long long jobs = 0;
};
SetAside count_unresolved(pqxx::transaction_base& tx, const StateSchema& schema);
// The count of job `job` (an SQL text expression) as an SQL expression, "0" before version 2.
std::string unresolved_count_sql(const StateSchema& schema, int version, const std::string& job);

// Whether the batch_log row `row` (its alias in the query) is a range that retry-failed redid,
// as an SQL expression: a range of its job and slice resolved by the very transaction that
// wrote the row (their xmin), which is how retry-failed commits the two. "false" before
// version 2.
std::string retried_range_sql(const StateSchema& schema, int version, const std::string& row);

// Drops the job's unresolved ranges: all of them, or those starting after `key`.
void drop_unresolved(pqxx::transaction_base& tx, const StateSchema& schema, const std::string& job);
void drop_unresolved_after(pqxx::transaction_base& tx, const StateSchema& schema,
                           const ResolvedJob& job, const std::string& key);

}  // namespace pgxform
