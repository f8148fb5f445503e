// logical_capture: `changes: logical` (docs/catch-up.md) — the replication slot and the
// publication through which the changes of the capturing jobs' tables reach change_log (read by
// slot_reader.h), as the triggers of change_capture.h do for `changes: trigger`.
//
// One slot and one publication per state schema, both named pgxform_<h>, <h> the first 12 hex
// digits of md5(database || '/' || state schema): slot names are the server's, shared by all its
// databases. The publication (FOR TABLE, publish_via_partition_root, every operation) holds the
// leading table and the `also:` tables of every job of the schema with changes: logical; the slot
// decodes the database's WAL with pgoutput, the plugin that ships with PostgreSQL (and with the
// managed services), which passes on only those tables' changes. capture_table (capture_state.h)
// records, per job, which column of which table its reader records.
//
// Installing, before a job's first batch (run, catch-up, capture), in this order: the
// publication with the job's tables (pgoutput reads a publication as it was where a change was
// written, so it must exist before the slot starts); the job's capture_table rows; then the
// slot, when the schema has none, whose creation waits for the transactions in progress on the
// server to end (under the job's lock_timeout): every change committed after it is decoded.
// Dropping a job: its tables leave the publication (unless another job of the schema captures
// them) and its rows leave capture_table; the last one's drop takes the slot and the
// publication with it.
#pragma once

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "state/capture_state.h"
#include "state/schema_name.h"

namespace pgxform {

struct SlotNames {
  std::string slot, publication;
};
// The names of the schema's slot and publication in this database. Reads only.
SlotNames slot_names(pqxx::transaction_base& tx, const StateSchema& schema);

// What the slot's reader records for `job`: its key column and its `also:` tables' columns.
// Reads the tables' oids.
std::vector<CapturedColumn> capture_columns(pqxx::transaction_base& tx, const ResolvedJob& job);

// Installs the capture of `jobs` (each with changes: logical) where missing; the state schema
// must be at version 12. Returns what it did, one line each ("slot pgxform_3f... created",
// "legacy.items added to publication ..."), empty when all was in place.
std::vector<std::string> install_logical(pqxx::connection& conn, const StateSchema& schema,
                                         const std::vector<const ResolvedJob*>& jobs,
                                         const std::string& lock_timeout);

// Drops the job's part of the capture, and the slot and publication when no job is left;
// returns what it dropped, one line each. Its change_log rows stay.
std::vector<std::string> drop_logical(pqxx::connection& conn, const StateSchema& schema,
                                      const std::string& job, const std::string& lock_timeout);

// Why the logical capture of `job` does not record its changes now: no capture_table rows (or
// rows of another table or column than the job's), no slot or a lost one (wal_status 'lost': it
// retained more than max_slot_wal_keep_size), no publication, a table not in it. None when it
// does. Reads only.
std::optional<std::string> logical_missing(pqxx::transaction_base& tx, const StateSchema& schema,
                                           const ResolvedJob& job);

// The schema's slot as status shows it.
struct SlotFigures {
  std::string slot;
  bool exists = false;                    // in pg_replication_slots
  std::optional<double> retained_mb;      // the WAL it keeps: from its restart_lsn to now
  std::optional<double> read_age_s;       // since the last read that committed
  double age_s = 0;                       // since it was created
  std::optional<std::string> wal_status;  // reserved, extended, unreserved, lost
};
// None when the schema has no slot row. Reads only.
std::optional<SlotFigures> slot_figures(pqxx::transaction_base& tx, const StateSchema& schema);

// Slots and publications named pgxform_ in this database that are not the schema's (another
// state schema's, one left by an older setting of state_schema), and capture_table rows of jobs
// that `logical_jobs` (the file's jobs with changes: logical) does not name: "slot pgxform_...",
// "publication pgxform_...", "job 'x' (capture_table)". Reads only.
std::vector<std::string> logical_orphans(pqxx::transaction_base& tx, const StateSchema& schema,
                                         const std::vector<std::string>& logical_jobs);
// Drops them; returns what it dropped.
std::vector<std::string> drop_logical_orphans(pqxx::connection& conn, const StateSchema& schema,
                                              const std::vector<std::string>& logical_jobs,
                                              const std::string& lock_timeout);

}  // namespace pgxform
