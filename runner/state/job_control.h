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
// Any SQL session may write the table, so what a runner reads is held to the limits the jobs
// file and `pgxform set` hold a value to (setting_limits.h): a value out of its limit is
// ignored, as if the row did not set it (the next wider row, else the jobs file, decides),
// listed in JobControl::ignored for status, and warned of once per process and value by the
// readers a runner calls (read_control_rows, read_threads), not once per batch.
//
// resolve_control is pure; the read_* and write_* functions are the table's only readers and
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
  // The values of the rows that apply which were out of their limit and so ignored:
  // "batch_size 9223372036854775807 > 1000000000 (job items)". Only those that would otherwise
  // have applied: a wider row's value that a narrower valid one overrides is not listed.
  std::vector<std::string> ignored;
  bool operator==(const JobControl& o) const;
  bool operator!=(const JobControl& o) const { return !(*this == o); }
};

JobControl resolve_control(const std::vector<ControlRow>& rows, const std::string& job,
                           const std::string& list);

// The rows that concern `job` of `list`, as stored; each value out of its limit is warned of,
// once per process. Needs state version 7.
std::vector<ControlRow> read_control_rows(pqxx::transaction_base& tx, const StateSchema& schema,
                                          const std::string& job, const std::string& list);
// The workers every runner of this state schema should have now (`set --threads`, the `all`
// row's `threads`); nullopt when not set, or when out of its limit (warned of once per process
// and value). Needs state version 8.
std::optional<int> read_threads(pqxx::transaction_base& tx, const StateSchema& schema);
// For status: the `all` row's threads when out of its limit, "threads 10000 > 1024 (all)";
// none when it is within it or not set, or before state version 8. Warns of nothing.
std::optional<std::string> ignored_threads(pqxx::transaction_base& tx, const StateSchema& schema);
// Sets it (the `all` row, created if missing).
void write_threads(pqxx::transaction_base& tx, const StateSchema& schema, int threads);

// Every row, for status.
std::vector<ControlRow> read_all_control(pqxx::transaction_base& tx, const StateSchema& schema);

// The settings `set KEY=default` clears: each one marked is set back to NULL on its row ("not
// set here"), so that the next wider row, else the jobs file, decides again.
struct ControlClear {
  bool batch_size = false;
  bool target_batch_ms = false;
  bool pause_ms = false;
  bool any() const { return batch_size || target_batch_ms || pause_ms; }
};
void clear_control(pqxx::transaction_base& tx, const StateSchema& schema, ControlScope scope,
                   const std::string& name, const ControlClear& clear);
// `set --threads default`: the `all` row's threads back to NULL; each runner goes back to the
// threads it was started with.
void clear_threads(pqxx::transaction_base& tx, const StateSchema& schema);

// The settings the table holds, one text each in the words of `pgxform set`, for run's log
// and status: "job orders batch_size=5000", "list shop pause_ms=100", "all threads=2". Pure.
std::vector<std::string> override_texts(const std::vector<ControlRow>& rows,
                                        std::optional<long long> threads);
// The same, read from the table (nothing before version 7; threads from version 8).
std::vector<std::string> read_overrides(pqxx::transaction_base& tx, const StateSchema& schema);

// Sets the given values on the row of (scope, name), creating it; values not given stay.
void write_control(pqxx::transaction_base& tx, const StateSchema& schema, ControlScope scope,
                   const std::string& name, const ControlValues& values);
// `pause --all` and `resume --all`: every row's own `paused` cleared, and all's set to `paused`.
void set_paused_everywhere(pqxx::transaction_base& tx, const StateSchema& schema, bool paused);

std::string scope_name(ControlScope scope);

}  // namespace pgxform
