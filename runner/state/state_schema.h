// state_schema: the runner's own schema in the migrated database (the jobs file's
// `state_schema:`, default pgxform), its DDL and its versions. One of the files of the state
// layer, which alone writes SQL on the state tables:
//   state_schema   the schema itself: created and upgraded here
//   state_locks    the advisory-lock keys of claims, setup and scripts
//   state_store    job_state and job_slice: jobs, cursors, claims, status transitions
//   batch_log      one row per committed batch: written with the batch, read by the reports
//   failed_ranges  failed_batches: the ranges that on_error: skip set aside
//   script_history the applied SQL scripts of scripts_dir
//
// The DDL lives in state/NNN_*.sql, compiled into the binary (state_sql.h); @schema@ in it
// stands for the schema's quoted name. The version is the highest row of
// <schema>.schema_version. A command that writes creates or upgrades the schema on first use,
// in one transaction under the setup lock (state_locks.h), so that two runners starting together
// never both create it; a command that only reads never creates it and reads what its version
// has (see StateFeature).
#pragma once

#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "base/errors.h"
#include "state/schema_name.h"

namespace pgxform {

// The versions that brought what later code reads, so that a command reading an older schema
// (status, profile and validate never upgrade it) knows what is there.
enum class StateFeature {
  tables = 1,             // job_state, job_slice, batch_log
  failed_batches = 2,     // failed_ranges.h
  script_history = 3,     // script_history.h
  function_versions = 4,  // job_state.fn_version, batch_log.fn_version
  batch_counters = 5,     // batch_log's block counters (block_counters.h)
  batch_sizes = 6,        // batch_log.batch_size: the size a batch asked for
  control = 7,            // control: pause, resume and settings of running jobs (job_control.h)
  control_threads = 8,    // control.threads: the workers of running runners (set --threads)
  changes = 9,            // change_log, batch_log.catch_up (change_capture.h, change_drain.h)
  job_identity = 10,      // job_state's table, key and function (job_identity.h)
  runner_pool = 10,       // runner_pool: the runners' workers (runner_pool.h)
  // change_log.via (changes.also:), failed_batches.catch_up (a refresh's keys set aside),
  // job_state.catch_up_waiting (change_log.h)
  exact = 11,
  // capture_slot, capture_table (changes: logical), job_state.capture_lost (capture_state.h)
  logical = 12,
};
inline bool has_feature(int version, StateFeature feature) {
  return version >= static_cast<int>(feature);
}

// When the schema reached the version of `feature`, as an SQL expression (timestamptz): rows
// written before it lack what the feature brought.
std::string feature_since_sql(const StateSchema& schema, StateFeature feature);

// The version of the schema, 0 when it does not exist yet. Reads only.
int state_version(pqxx::transaction_base& tx, const StateSchema& schema);
int state_version(pqxx::connection& conn, const StateSchema& schema);

// The version this binary creates.
int newest_state_version();

// A state schema that lost a table (dropped by hand): which one, what it held and what to do.
// The database's setup, found before anything is written: exit 2.
class StateSchemaError : public InputError {
 public:
  explicit StateSchemaError(std::vector<std::string> problems)
      : InputError(std::move(problems), "nothing was written") {}
};

// The schema's version, as state_version(), after checking that it holds every table of that
// version, and a schema_version beside its other tables: throws StateSchemaError naming each
// missing table, what it held and the way back (docs/state-tables.md). For the commands that
// read the state directly; ensure_state_schema checks the same.
int checked_state_version(pqxx::transaction_base& tx, const StateSchema& schema);

// Creates or upgrades the schema to the newest version, after the checks of
// checked_state_version. Refuses (std::runtime_error, not an input error: the database is
// ahead of the binary) a schema newer than this binary knows.
void ensure_state_schema(pqxx::connection& conn, const StateSchema& schema);

}  // namespace pgxform
