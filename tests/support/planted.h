// planted: the planted O(N²) migration of the profiling tests (profile, explain, rehearse and
// the batch log's counters) — a transform that anti-joins the target it fills, without an
// index, next to a linear one over the same table, run by the real runner.
#pragma once

#include <optional>
#include <string>

#include "support/test_db.h"

namespace pgxform_test {

constexpr int k_planted_rows = 40000;  // keys 3, 6, ..., 120000
constexpr int k_planted_batch = 500;

// legacy.items as in fixtures.h; target.items WITHOUT an index, filled by xf.quadratic only
// with the rows NOT EXISTS in it yet (each batch scans everything the batches before it wrote);
// target.copies filled by xf.linear with a plain INSERT ... SELECT, after 5 ms of other work
// (batches of 1 ms move between two speeds with the machine's state: a step, not a trend).
void create_planted(TestDatabase& db);

// The lists planted (job quadratic) and plain (job linear): fixed batches of k_planted_batch
// rows, or as `sizing` says (e.g. "batch_size: 100, target_batch_ms: 10").
std::string planted_yaml(const std::string& sizing = "");

// One run, one thread: the two jobs one after the other, so that neither slows the other.
void run_planted(TestDatabase& db, const std::string& path);

// profile --json, in this process.
std::string profile_json(TestDatabase& db, const std::string& path);
// The value of `key` in the --json object of `job`, as JSON text ("\"flat\"", "80", "null").
std::string profile_field(const std::string& json, const std::string& job, const std::string& key);

// explain of `job` (at key `at`, or its first batch), in this process.
std::string explain_text(TestDatabase& db, const std::string& path, const std::string& job,
                         std::optional<std::string> at);

// Everything a rehearsal or an explain must leave as it was.
std::string planted_snapshot(TestDatabase& db);

}  // namespace pgxform_test
