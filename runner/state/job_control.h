// job_control: steering jobs while they run — the state table `control` (state/007_control.sql).
// `pgxform pause`, `resume` and `set` write it (control_command.h), and so may any SQL session;
// each task of a run reads what applies to it between two batches, at most once a second
// (batch_runner.h), and obeys without a restart:
//   paused           takes no new batch (the one in flight commits); waits, saying so
//   batch_size       the next batch's size; with target_batch_ms 0, every batch's
//   target_batch_ms  the duration time-sized batches aim at (0: fixed batch_size)
//   pause_ms         a sleep between two batches, to leave the database to other work
// A row names one job (scope job), the jobs of one list (scope list) or every job (scope all);
// for each setting a job's own row wins over its list's, which wins over all's, and NULL means
// "not set here". So `pause --all` then `resume orders` runs orders alone.
//
// resolve_control is pure; read_control and write_control are the table's only readers and
// writers.
#pragma once

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "state/state_schema.h"

namespace pgxform {

enum class ControlScope { job, list, all };

// Settings as a row of `control` holds them: each one set or not.
struct ControlValues {
  std::optional<bool> paused;
  std::optional<long long> batch_size;
  std::optional<long long> target_batch_ms;
  std::optional<long long> pause_ms;
};

struct ControlRow {
  ControlScope scope = ControlScope::all;
  std::string name;  // the job or list; empty for all
  ControlValues values;
};

// What applies to one job: each setting from the most specific row that sets it.
struct JobControl {
  bool paused = false;
  std::string paused_by;  // "job orders", "list shop", "all": who paused it
  std::optional<long long> batch_size;
  std::optional<long long> target_batch_ms;
  long long pause_ms = 0;
  bool operator==(const JobControl& o) const;
  bool operator!=(const JobControl& o) const { return !(*this == o); }
};

JobControl resolve_control(const std::vector<ControlRow>& rows, const std::string& job,
                           const std::string& list);

// The rows that concern `job` of `list`. Needs state version 7.
std::vector<ControlRow> read_control_rows(pqxx::transaction_base& tx, const StateSchema& schema,
                                          const std::string& job, const std::string& list);
// The workers every runner of this state schema should have now (`set --threads`, the `all`
// row's `threads`); nullopt when not set. Needs state version 8.
std::optional<int> read_threads(pqxx::transaction_base& tx, const StateSchema& schema);
// Sets it (the `all` row, created if missing).
void write_threads(pqxx::transaction_base& tx, const StateSchema& schema, int threads);

// Every row, for status.
std::vector<ControlRow> read_all_control(pqxx::transaction_base& tx, const StateSchema& schema);

// Sets the given values on the row of (scope, name), creating it; values not given stay.
void write_control(pqxx::transaction_base& tx, const StateSchema& schema, ControlScope scope,
                   const std::string& name, const ControlValues& values);
// `pause --all` and `resume --all`: every row's own `paused` cleared, and all's set to `paused`.
void set_paused_everywhere(pqxx::transaction_base& tx, const StateSchema& schema, bool paused);

std::string scope_name(ControlScope scope);

}  // namespace pgxform
