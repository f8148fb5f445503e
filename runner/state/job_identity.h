// job_identity: what a job transforms, recorded in its state row (job_state.table_schema,
// table_name, key_column, key_type, function_schema, function_name; state version 10), so that
// a job's state is never taken for another job's. A job is known by its name; its cursor,
// counters, batches, set-aside ranges and change log only mean something for the table, key and
// function they were made with. Two jobs files on one database may both have a job `load`, or
// a file's job may keep its name and name another table: without the record, the second would
// resume from the first one's cursor ("done, nothing new to process") and never transform its
// own table.
//
// So every command that writes for a job (run, catch-up, capture, retry-failed, verify
// --repair, reset --to) first compares the job as the catalog resolves it now with its record:
//   - table, key column or function differ: refused, exit 2, nothing written (PreflightError
//     naming both, the jobs file's line and `pgxform reset JOB`), whatever the job's status;
//   - the key's type differs (an ALTER of the column): warned of and recorded anew, as the
//     cursor's text goes on in the new type; a type it cannot take fails the next batch;
//   - nothing recorded (a row of an older version, or after reset): recorded by the command
//     that writes (pin_identities), never refused.
// The function's body is not part of the identity: its version (state_store.h: fn_version)
// keeps its own warning and --accept-changed.
//
// The state layer owns these columns; reset clears them (forget_identity, in reset's
// transaction) so that the next run records the job anew.
#pragma once

#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "plan/jobs_file.h"
#include "state/state_schema.h"

namespace pgxform {

struct JobIdentity {
  std::string table_schema, table_name, key_column, key_type, function_schema, function_name;
  // "legacy.items", "id"
  std::string table_text() const;
  // "legacy.items by id (bigint) through xf.items"
  std::string text() const;
  // The same table, key column and function (not the key's type).
  bool same_source(const JobIdentity& o) const;
};

// The job as the catalog resolved it now.
JobIdentity identity_of(const ResolvedJob& job);

// What a job's state row records: its identity, and its status for messages.
struct RecordedJob {
  JobIdentity identity;
  std::string status;
};

// The recorded identity of every job that has one; empty before state version 10 and without a
// state schema. Reads only.
std::map<std::string, RecordedJob> read_identities(pqxx::transaction_base& tx,
                                                   const StateSchema& schema);

// Pure: one problem per job of `jobs` whose record names another table, key column or
// function ("jobs.yaml:7: job 'load' was recorded on ..."), in the order of `jobs`.
std::vector<std::string> identity_problems(const JobsFile& file,
                                           const std::map<std::string, ResolvedJob>& jobs,
                                           const std::map<std::string, RecordedJob>& recorded);

// Read-only: throws PreflightError with identity_problems, when there are any.
void check_identities(pqxx::connection& conn, const StateSchema& schema, const JobsFile& file,
                      const std::map<std::string, ResolvedJob>& jobs);
void check_identities(pqxx::connection& conn, const StateSchema& schema, const JobsFile& file,
                      const std::vector<ResolvedJob>& jobs);

// Records the identity of each job of `jobs` that has none, and a changed key type (warned);
// in one transaction under the setup lock (state_locks.h), after the rows exist
// (StateStore::register_jobs). Throws PreflightError, writing nothing, when a record differs:
// another command recorded the job since this one checked it.
void pin_identities(pqxx::connection& conn, const StateSchema& schema, const JobsFile& file,
                    const std::map<std::string, ResolvedJob>& jobs);

// In reset's transaction: the job is recorded anew by the next command that writes for it.
// Needs state version 10.
void forget_identity(pqxx::transaction_base& tx, const StateSchema& schema, const std::string& job);

}  // namespace pgxform
