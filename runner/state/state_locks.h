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
//   split    ('pgxform split <state schema>', <job>)    transaction lock: one split of a job's
//            slices at a time (slice_split.h).
//   claim    ('pgxform claim <state schema>', <job>)    shared by each split of the job's slices
//            (a transaction lock, tried: no split while a JobClaim holds the job), exclusive in
//            a JobClaim (a session lock, tried: no JobClaim while a split is under way). So a
//            JobClaim counts the job's slices after every split that committed and before any
//            other, and holds every one of them.
//   slot     ('pgxform slot', <state schema>)             session lock: one session at a time
//            reads, moves or drops the schema's replication slot (changes: logical), from
//            before its read to after the slot moved (slot_reader.h).
// pg_locks shows the two keys of a granted advisory lock as classid and objid, each the int4
// reinterpreted as an unsigned oid, with objsubid = 2; lock_held_sql() matches them so.
//
// Advisory locks need no privilege: any role that may connect can take any of these keys, and
// so hold up a job (a task lock) or every runner's start (the setup lock) for as long as its
// session lives, and name itself "pgxform host:pid" (docs/security.md). So a wait for a lock is
// never silent: transaction_lock() says who holds the lock before it waits, and ends a wait
// that the session's lock_timeout bounds (run --lock-timeout) with LockWaitError naming the
// holder; task_holders() tells status who holds each task, with the session's role, address
// and times, and whether it is the runner its state row records.
#pragma once

#include <optional>
#include <pqxx/pqxx>
#include <stdexcept>
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
// ('pgxform split <state schema>', <job>), a transaction lock: the splits of a job's slices
// (`parallel: auto`, slice_split.h) take turns.
LockKey split_lock(const StateSchema& schema, const std::string& job);
// ('pgxform claim <state schema>', <job>): a split shares it, a JobClaim holds it alone (above).
LockKey claim_lock(const StateSchema& schema, const std::string& job);
LockKey slot_lock(const StateSchema& schema);

// A wait for a lock that lock_timeout ended (55P03): which lock, who held it. Not transient,
// so that no retry waits again.
class LockWaitError : public std::runtime_error {
 public:
  explicit LockWaitError(const std::string& message) : std::runtime_error(message) {}
};

// Session locks: held until unlocked or the session ends, whatever becomes of `tx`.
bool try_session_lock(pqxx::transaction_base& tx, const LockKey& key);
void session_lock(pqxx::transaction_base& tx, const LockKey& key);
void session_unlock(pqxx::transaction_base& tx, const LockKey& key);
// Shared with other sessions that share it, until `tx` ends; false (without waiting) when a
// session holds it alone.
bool try_transaction_lock_shared(pqxx::transaction_base& tx, const LockKey& key);
// Held until `tx` ends. When another session holds it, says so (who, at info level) and waits,
// as long as the session's lock_timeout lets it; a timeout throws LockWaitError.
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
  std::string role;         // the session's role
  bool other_role = false;  // not the role of the session that asks
};
std::optional<LockHolder> lock_holder(pqxx::transaction_base& tx, const LockKey& key);
// The holder as a message names it: a runner by its identity ("host:pid", as status's RUNNER
// shows it), any other session as "backend PID 'application'"; either with ", role R" when its
// role is not the asker's.
std::string holder_name(const LockHolder& holder);

// A session that holds a task's lock, as status shows it (task_holders).
struct TaskHolder {
  std::string job;
  int slice = 0;
  int pid = 0;
  std::string role;
  std::string application_name;
  std::optional<std::string> client_addr;  // none: a Unix socket, or hidden
  // pg_stat_activity hides these of another role's session from a role without
  // pg_read_all_stats: none then.
  std::optional<std::string> connected_at;  // backend_start
  std::optional<std::string> state;         // active, idle, idle in transaction, ...
  std::optional<std::string> state_since;   // state_change
  // Its application_name names the runner that the job's (or the slice's) row records as the
  // last to claim it: false for a session that is no pgxform runner, or poses as another.
  bool recorded = false;
  // Its transaction's age while one is open (a batch in flight: the runner opens one per
  // batch), what it waits on ("Lock:transactionid", "IO:DataFileRead") and the sessions that
  // block it (pg_blocking_pids); none, none and empty between batches, or where
  // pg_stat_activity hides them.
  std::optional<double> in_flight_s;
  std::optional<std::string> wait_event;
  std::vector<int> blocked_by;
};
// The number of slices recorded for the job (slices are numbered 0, 1, ...); 0 for none, and
// without a state schema. JobClaim counts them under the job's claim lock.
int recorded_slices(pqxx::transaction_base& tx, const StateSchema& schema, const std::string& job);

// Every task of the state schema (version > 0) that a session holds now.
std::vector<TaskHolder> task_holders(pqxx::transaction_base& tx, const StateSchema& schema);

// Holds every task lock of a job and its catch-up lock for its own life, so that no runner and
// no catch-up works on the job meanwhile (reset, retry-failed, verify --repair, catch-up's
// settling of the log); throws JobHeldError when one of them is held. The tasks are `slices`
// (at least one), or as many as the job's slices recorded when that is more: counted under the
// job's claim lock, which it holds too, so that no slice of `parallel: auto` is split off
// meanwhile, and none that a split committed before is missed, whatever the caller read.
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
