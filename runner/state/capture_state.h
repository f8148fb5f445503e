// capture_state: what the state schema records of the capture itself (state/012_logical.sql) —
// every statement on capture_slot (the logical replication slot of `changes: logical` and how
// far it was consumed), capture_table (what its reader records for each job) and
// job_state.capture_lost (why a capturing job's log may lack changes). The change_log rows the
// slot's reader inserts are change_log.h's (record_decoded_sql).
//
// The invariant a reader keeps (slot_reader.h): consumed_lsn moves only in the transaction that
// inserts the change_log rows of the changes before it, and the slot moves to it only after that
// transaction committed. So the slot's confirmed position is never past consumed_lsn, and
// whatever the slot hands out again below consumed_lsn is skipped.
//
// Every function reads or writes in the transaction it is given; the readers return nothing
// before version 12 (StateFeature::logical).
#pragma once

#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "state/schema_name.h"

namespace pgxform {

// The row of the schema's slot.
struct SlotRow {
  std::string slot, publication;
  std::string consumed_lsn;  // pg_lsn as text: 0/16B3748
  std::optional<double> read_age_s;
  double age_s = 0;  // since the slot was created
};

std::optional<SlotRow> read_slot_row(pqxx::transaction_base& tx, const StateSchema& schema);
// The slot's row, the consumed position set to `lsn` (the slot's own start when it was just
// made); replaces a row of another slot.
void write_slot_row(pqxx::transaction_base& tx, const StateSchema& schema, const std::string& slot,
                    const std::string& publication, const std::string& lsn);
// A read committed: every change before `lsn` is in change_log.
void record_consumed(pqxx::transaction_base& tx, const StateSchema& schema, const std::string& slot,
                     const std::string& lsn);
void delete_slot_row(pqxx::transaction_base& tx, const StateSchema& schema);

// One column a job's capture records (capture_table): via 0 its leading table's key, via N the
// column of its N-th `also:` table.
struct CapturedColumn {
  std::string job;
  int via = 0;
  unsigned table_oid = 0;
  std::string table_name;  // "schema"."table"
  std::string column;      // unquoted
  std::string type;        // format_type()
  char category = 'X';     // pg_type.typcategory
};

// Every job's, ordered by job and via.
std::vector<CapturedColumn> captured_columns(pqxx::transaction_base& tx, const StateSchema& schema);
// The job's rows become `columns`.
void set_captured_columns(pqxx::transaction_base& tx, const StateSchema& schema,
                          const std::string& job, const std::vector<CapturedColumn>& columns);
void delete_captured_columns(pqxx::transaction_base& tx, const StateSchema& schema,
                             const std::string& job);

// Records why the job's log may lack changes (the first reason stays until cleared).
void record_capture_lost(pqxx::transaction_base& tx, const StateSchema& schema,
                         const std::string& job, const std::string& reason);
// By job, those with a reason.
std::map<std::string, std::string> captures_lost(pqxx::transaction_base& tx,
                                                 const StateSchema& schema);
// `pgxform reset JOB`: a fresh pass re-covers what the log lacked.
void clear_capture_lost(pqxx::transaction_base& tx, const StateSchema& schema,
                        const std::string& job);

}  // namespace pgxform
