// fixtures: the small migrations the database tests run — a leading table, a target with no
// unique constraint (so that a batch applied twice shows as a duplicate), and its transform.
#pragma once

#include <string>
#include <vector>

#include "test_db.h"

namespace pgxform_test {

// legacy.items(id bigint PRIMARY KEY, v int) with `rows` rows, keys 3, 6, 9, ... (gaps);
// target.items(id bigint, v int) with no constraint; xf.items(bigint, bigint) copies a range,
// sleeping `sleep_ms` per batch, and returns the row count.
void create_items(TestDatabase& db, int rows, int sleep_ms = 0);

// Replaces xf.items with a plain INSERT ... SELECT of the range: no sleep, no failure (the
// fix a test applies after planting a slow or failing transform).
void plain_items_function(TestDatabase& db);

// A jobs file with one list holding one job over legacy.items.
std::string items_jobs_yaml(int batch_size, int parallel = 1);

// `args`, then -f `path` --dsn for `db`: a command line for run_cli or Child.
std::vector<std::string> with_db(TestDatabase& db, const std::string& path,
                                 std::vector<std::string> args);

// Source rows that are missing in the target, and target rows that are there twice.
long long missing_items(TestDatabase& db);
long long duplicate_items(TestDatabase& db);

// The sessions of pgxform runners in this database that are running a batch statement (see
// batch_sql.h), as a FROM clause over pg_stat_activity.
constexpr const char* k_batches_in_flight =
    "pg_stat_activity WHERE datname = current_database() AND state = 'active'"
    " AND application_name LIKE 'pgxform %' AND query LIKE 'EXPLAIN (ANALYZE%'";

}  // namespace pgxform_test
