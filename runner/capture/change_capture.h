// change_capture: the triggers that record, for catch-up, the changes of a job's leading table
// (`changes: trigger`, docs/catch-up.md) and of the tables of its `changes.also:` entries, in
// the state schema's change_log (change_log.h holds its statements: the triggers are one
// producer of its rows).
//
// Each captured table has four triggers of the job. Three statement triggers, one per event,
// because a trigger with transition tables may name only one of INSERT, UPDATE and DELETE:
//   <stem>_ins  AFTER INSERT ... REFERENCING NEW TABLE AS pgxform_new
//   <stem>_upd  AFTER UPDATE ... REFERENCING OLD TABLE AS pgxform_old NEW TABLE AS pgxform_new
//   <stem>_del  AFTER DELETE ... REFERENCING OLD TABLE AS pgxform_old
// each FOR EACH STATEMENT, calling the job's function <state schema>.capture_<h>[_a<N>](),
// which appends one change_log row per distinct value the statement touched: the key of the
// leading table (both keys of an update that changed it), or the recorded column of the N-th
// `also:` table (via N), old and new; and one row trigger
//   <stem>_rep  AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW, ENABLE REPLICA
// calling capture_<h>[_a<N>]_row(), for the sessions in replica mode (session_replication_role =
// replica): a logical replication apply worker fires row triggers only, never statement
// triggers, and only those enabled REPLICA or ALWAYS. The statement triggers are enabled for
// origin and local sessions only, so that no change is recorded twice (a subscription's initial
// copy, also in replica mode, fires the row trigger). <stem> is pgxform_<h> for the leading
// table and pgxform_<h>_a<N> for the N-th `also:` table, <h> the first 12 hex digits of
// md5(state schema || '/' || job): two jobs (or two state schemas) on one table never share a
// trigger, and the name fits PostgreSQL's 63 bytes whatever the job's name.
//
// pgxform's own sessions set pgxform.capture_off (database.h: connect), which every function
// obeys: a batch or a refresh function that writes a captured table does not feed the log.
//
// Installing is DDL on a user's table: one transaction, under the job's lock_timeout (it waits
// for each table's ShareRowExclusiveLock behind the writers' transactions) and the setup lock
// (state_locks.h: one installer at a time), idempotent (only
// what is missing is created; a trigger of the job on a table it no longer captures is
// dropped). TRUNCATE fires no row transition table and is not captured.
#pragma once

#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "state/state_schema.h"

namespace pgxform {

// Installs the job's triggers where missing, each enabled as above, on its leading table and
// its `also:` tables. The state schema must be at version 11 (StateFeature::exact). Returns how
// many triggers it created, re-enabled or dropped (0: all were in place). Each table in a
// transaction of its own (so are the drops below): the table's lock is never held while
// another's is waited for, and a writer cannot deadlock with it (docs/catch-up.md, "Installing
// capture on a live source"); a lock not granted within `lock_timeout` throws, saying so and
// what to do, and running it again finishes the tables left.
int install_capture(pqxx::connection& conn, const StateSchema& schema, const ResolvedJob& job,
                    const std::string& lock_timeout);

// The functions are the job's own, static SQL naming the recorded column (so that a writer's
// session caches their plans), SECURITY DEFINER with search_path = pg_catalog: a writer needs
// no privilege on the state schema. A date or time value is recorded in its ISO (JSON) text
// form, whatever the writer's DateStyle.
//
// Drops the job's triggers, wherever they are, and their functions; returns how many triggers
// it dropped. Its change_log rows stay (catch-up may still drain them).
int drop_capture(pqxx::connection& conn, const StateSchema& schema, const std::string& job,
                 const std::string& lock_timeout);

// The job's tables ("schema"."table") whose four triggers are not all in place, enabled as
// above: the leading table first, then its `also:` tables; empty when every change is
// captured. Reads only.
std::vector<std::string> uncaptured_tables(pqxx::transaction_base& tx, const StateSchema& schema,
                                           const ResolvedJob& job);
// Whether the job has a capture trigger on any table. Reads only.
bool has_capture_triggers(pqxx::transaction_base& tx, const StateSchema& schema,
                          const std::string& job);

// A capture trigger of pgxform in this database (named pgxform_<h>..., calling a capture_<h>...
// function), whatever job and state schema it records for: the two are read from its
// function's comment ("?" for a trigger of an older pgxform, whose functions had none).
struct CaptureTrigger {
  std::string name, table_sql;
  std::string state_schema = "?", job = "?";
};
// The capture triggers of jobs that `trigger_jobs` (the file's jobs with changes: trigger, in
// `schema`) does not name: a job renamed or removed, another state_schema, another jobs file on
// this database. Each records every write of its table, for nobody. Reads only.
std::vector<CaptureTrigger> trigger_orphans(pqxx::transaction_base& tx, const StateSchema& schema,
                                            const std::vector<std::string>& trigger_jobs);
// Drops them and their functions; returns what it dropped, one line each.
std::vector<std::string> drop_trigger_orphans(pqxx::connection& conn, const StateSchema& schema,
                                              const std::vector<std::string>& trigger_jobs,
                                              const std::string& lock_timeout);

}  // namespace pgxform
