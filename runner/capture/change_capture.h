// change_capture: the triggers that record, for catch-up, the keys of the rows changed in a
// job's leading table (`changes: trigger`, docs/catch-up.md), and what they recorded.
//
// A capturing job has four triggers on its leading table. Three statement triggers, one per
// event, because a trigger with transition tables may name only one of INSERT, UPDATE and
// DELETE:
//   pgxform_<h>_ins  AFTER INSERT ... REFERENCING NEW TABLE AS pgxform_new
//   pgxform_<h>_upd  AFTER UPDATE ... REFERENCING OLD TABLE AS pgxform_old NEW TABLE AS pgxform_new
//   pgxform_<h>_del  AFTER DELETE ... REFERENCING OLD TABLE AS pgxform_old
// each FOR EACH STATEMENT, calling the job's function <state schema>.capture_<h>(), which
// appends one change_log row (state/009_changes.sql) per distinct key the statement touched
// (both keys of an update that changed the key); and one row trigger
//   pgxform_<h>_rep  AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW, ENABLE REPLICA
// calling capture_<h>_row(), for the sessions in replica mode (session_replication_role =
// replica): a logical replication apply worker fires row triggers only, never statement
// triggers, and only those enabled REPLICA or ALWAYS. The statement triggers are enabled for
// origin and local sessions only, so that no change is recorded twice (a subscription's initial
// copy, also in replica mode, fires the row trigger). <h> is the first 12 hex digits of
// md5(state schema || '/' || job): two jobs (or two state schemas) on one table never share a
// trigger, and the name fits PostgreSQL's 63 bytes whatever the job's name.
//
// pgxform's own sessions set pgxform.capture_off (database.h: connect), which both functions
// obey: a batch or a refresh function that writes a leading table does not feed the log.
//
// Installing is DDL on a user's table: one transaction, under the job's lock_timeout (it waits
// for the table's ShareRowExclusiveLock behind the writers' transactions), idempotent (only
// what is missing is created). TRUNCATE fires no row transition table and is not captured.
#pragma once

#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <string>

#include "catalog/catalog.h"
#include "state/state_schema.h"

namespace pgxform {

// Installs the job's four triggers where missing, each enabled as above. The state
// schema must be at version 9 (StateFeature::changes). Returns how many triggers it created
// or re-enabled (0: all were in place).
int install_capture(pqxx::connection& conn, const StateSchema& schema, const ResolvedJob& job,
                    const std::string& lock_timeout);

// The functions are the job's own, static SQL naming its key column (so that a writer's session
// caches their plans), SECURITY DEFINER with search_path = pg_catalog: a writer needs no
// privilege on the state schema. A date or time key is recorded in its ISO (JSON) text form,
// whatever the writer's DateStyle.
//
// Drops the job's triggers, wherever they are, and their functions; returns how many triggers
// it dropped. Its change_log rows
// stay (catch-up may still drain them).
int drop_capture(pqxx::connection& conn, const StateSchema& schema, const std::string& job,
                 const std::string& lock_timeout);

// How many of the job's triggers are on `table_sql` ("schema"."table"), enabled as above:
// k_capture_triggers when its changes are captured. Reads only.
constexpr int k_capture_triggers = 4;
int capture_triggers(pqxx::transaction_base& tx, const StateSchema& schema, const std::string& job,
                     const std::string& table_sql);

// What change_log holds for a job: rows (one per changed key per statement) and the age of the
// oldest, in seconds.
struct PendingChanges {
  long long count = 0;
  std::optional<double> oldest_s;
};
// Per job with rows; empty before version 9 or without a state schema. Reads only.
std::map<std::string, PendingChanges> pending_changes(pqxx::transaction_base& tx,
                                                      const StateSchema& schema);

}  // namespace pgxform
