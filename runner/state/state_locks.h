// state_locks: the advisory locks through which runners (and the commands beside them) keep
// out of each other's way. The one place that knows their keys.
//
// Every lock is PostgreSQL's two-key advisory lock (hashtext(space), hashtext(name)) in the
// migrated database:
//   task     (<state schema>, <job> or <job>\x1f<slice>)  session lock: a runner works on a task
//            only while its session holds it; commands that must not work beside a runner
//            (retry-failed, reset, verify --repair) take every task lock of the job and its
//            catch-up lock (JobClaim).
//            It dies with the session, so a killed runner's claims are free again as soon as
//            the server notices its session ended.
//   setup    ('pgxform ddl', <state schema>)             transaction lock: what a runner does
//            before its first batch — creating or upgrading the state schema, registering
//            jobs, cutting slices, pinning function versions — one session at a time, so that
//            any number of runners may start at once.
//   scripts  ('pgxform scripts', <state schema>)         session lock: one session at a time
//            applies scripts (each script commits on its own).
//   slot     ('pgxform slot', <state schema>)             session lock: one session at a time
//            reads, moves or drops the schema's replication slot (changes: logical), from
//            before its read to after the slot moved (slot_reader.h).
// pg_locks shows the two keys of a granted advisory lock as classid and objid, each the int4
// reinterpreted as an unsigned oid, with objsubid = 2; lock_held_sql() matches them so.
#pragma once

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "plan/scheduler.h"
#include "state/schema_name.h"

namespace pgxform {

struct LockKey {
  std::string space;
  std::string name;
};

// A main-pass task's lock; a catch-up task's is catch_up_lock.
LockKey task_lock(const StateSchema& schema, const TaskId& task);
LockKey setup_lock(const StateSchema& schema);
// ('pgxform catch-up <state schema>', <job>), a session lock: the one session draining the
// job's change_log (change_drain.h). Not the task lock: catch-up works beside a run.
LockKey catch_up_lock(const StateSchema& schema, const std::string& job);
LockKey scripts_lock(const StateSchema& schema);
LockKey slot_lock(const StateSchema& schema);

// Session locks: held until unlocked or the session ends, whatever becomes of `tx`.
bool try_session_lock(pqxx::transaction_base& tx, const LockKey& key);
void session_lock(pqxx::transaction_base& tx, const LockKey& key);
void session_unlock(pqxx::transaction_base& tx, const LockKey& key);
// Held until `tx` ends.
void transaction_lock(pqxx::transaction_base& tx, const LockKey& key);

// A condition on pg_locks `l`: a granted advisory lock of this database whose keys are the
// SQL text expressions `space` and `name`.
std::string lock_held_sql(const std::string& space, const std::string& name);
// The SQL text expression naming task `slice` (an integer expression) of job `job` (a text
// expression), as task_lock() names it.
std::string task_name_sql(const std::string& job, const std::string& slice);

// Who holds a session lock now, when someone does.
struct LockHolder {
  int pid = 0;
  std::string application_name;
};
std::optional<LockHolder> lock_holder(pqxx::transaction_base& tx, const LockKey& key);
// The holder as a message names it: a runner by its identity ("host:pid", as status's RUNNER
// shows it), any other session as "backend PID 'application'".
std::string holder_name(const LockHolder& holder);

// Holds every task lock of a job (its `slices`, at least one) and its catch-up lock for its own
// life, so that no runner and no catch-up works on the job meanwhile (reset, retry-failed,
// verify --repair); throws JobHeldError when one of them is held.
class JobClaim {
 public:
  JobClaim(pqxx::connection& conn, const StateSchema& schema, const std::string& job, int slices);
  ~JobClaim();
  JobClaim(const JobClaim&) = delete;
  JobClaim& operator=(const JobClaim&) = delete;

 private:
  pqxx::connection& m_conn;
  std::vector<LockKey> m_held;
};

}  // namespace pgxform
