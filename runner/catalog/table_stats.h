// table_stats: what the database can tell of a job's leading table beyond its definition — its
// estimated rows, its smallest and largest key, the keys at given positions of the key's
// distribution. Read-only. Every command that needs one of these asks here, so that each is
// read one way and its unknowns mean one thing.
#pragma once

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "analysis/key_span.h"
#include "catalog/catalog.h"

namespace pgxform {

// The planner's estimate of the table's rows (pg_class.reltuples); none when the table was
// never vacuumed or analyzed, which PostgreSQL says with -1. Costs nothing.
std::optional<double> estimated_rows(pqxx::transaction_base& tx, const ResolvedJob& job);
// The same for a table named as SQL text ("schema"."table", quoted): for a job that does not
// resolve yet (its function is created by a pending script) but whose table is there. None
// when the table does not exist either.
std::optional<double> estimated_rows(pqxx::transaction_base& tx, const std::string& table_sql);

// The planner's estimate of the table's rows whose key is above `key` (a key as text, as the
// state records a cursor): from the key's histogram and its index's end, so that it holds where
// the key space has jumps (a sequence that leapt ahead) and for rows appended since the table
// was analyzed. None when the table was never analyzed (the planner would only guess a third).
std::optional<double> estimated_rows_after(pqxx::transaction_base& tx, const ResolvedJob& job,
                                           const std::string& key);
// The same for the rows after `after` (none: from the first key) up to `hi` included (none: to
// the end): a slice's rows left.
std::optional<double> estimated_rows_in(pqxx::transaction_base& tx, const ResolvedJob& job,
                                        const std::optional<std::string>& after,
                                        const std::optional<std::string>& hi);

// The job's rows in all, as status and the metrics estimate them while it is under way: the
// rows done (job_state.rows_done) and those the planner sees above its cursor `last_key`, which
// holds where the key space has jumps; a job with slices (no one cursor), or before its first
// batch, the table's estimate. None when the table was never analyzed.
std::optional<double> estimated_total_rows(pqxx::transaction_base& tx, const ResolvedJob& job,
                                           long long rows_done,
                                           const std::optional<std::string>& last_key, int slices);

// Whether a btree index leads with the key (else each batch scans the table), and whether the
// table was analyzed since it was loaded (else the planner guesses its size). A table whose
// statistics were reset (after a crash) reads as never analyzed.
// And how much of it the visibility map marks all-visible (pg_class.relallvisible, as the last
// VACUUM or ANALYZE left it): where it is low, each batch's walk of the key index to its bound
// (batch_sql.h) reads the table's pages too, to check each key's row is visible.
struct TableHealth {
  bool key_index = false;
  bool analyzed = false;
  std::optional<double> estimated_rows;  // as estimated_rows() below
  long long pages = 0;                   // pg_class.relpages
  long long all_visible_pages = 0;       // pg_class.relallvisible
};
TableHealth table_health(pqxx::transaction_base& tx, const ResolvedJob& job);

// The first and last key of the table (analysis/key_span.h), and `at` when given.
std::optional<KeySpan> key_span(pqxx::transaction_base& tx, const ResolvedJob& job,
                                const std::optional<std::string>& at = std::nullopt);

// The keys at `positions` (each 0..1) of the key's distribution, as text, in the same order:
// from the planner's histogram of the key when the table was analyzed, else from one ordered
// pass over the key. Empty when the table has no keys (or, without a histogram, fewer keys
// than can be told apart).
std::vector<std::string> keys_at(pqxx::transaction_base& tx, const ResolvedJob& job,
                                 const std::vector<double>& positions);

}  // namespace pgxform
