// slot_reader: the replication slot of `changes: logical` (logical_capture.h) read into
// change_log, where catch-up and the main pass consume its rows exactly as the triggers' (the
// rule of change_log.h does not care who recorded a row).
//
// Read through the SQL functions, on one of pgxform's own sessions, under the schema's slot
// lock (state_locks.h: one reader at a time; a session that does not get it leaves the read to
// the one that has it):
//   1. L = pg_current_wal_flush_lsn(): the slot is read up to L, never past what is flushed;
//   2. in ONE transaction (synchronous_commit on): the slot's messages up to L, at most
//      k_read_messages at a time (pg_logical_slot_peek_binary_changes, pgoutput protocol 1, the
//      schema's publication, messages on), decoded (pgoutput.h: keys per job, skipping what is
//      below capture_slot.consumed_lsn and what pgxform's own batches wrote); their rows
//      inserted into change_log, each key in the canonical text form of its type (change_log.h:
//      record_decoded_sql; a value its type no longer reads goes in as it came, for catch-up to
//      set aside with the reason); a TRUNCATE or an unreadable change recorded as the job's
//      capture_lost; consumed_lsn moved to L (or to the end of the last whole transaction when
//      the read stopped at k_read_messages); COMMIT;
//   3. only then the slot moved to consumed_lsn (pg_replication_slot_advance), and the lock
//      released.
// So a change is in change_log before the slot passes it: a kill before the COMMIT leaves the
// slot where it was and nothing recorded; a kill between the COMMIT and the slot's move hands
// the same transactions out again, which step 2 skips by their position. Nothing is lost,
// nothing recorded twice.
//
// Who reads: `run`, every k_run_interval, from whichever of its tasks is between two batches
// (the slot decodes all the database's WAL, the main pass's writes too: read often enough,
// little piles up); catch-up, before each of its batches once k_catch_up_interval passed, and
// once more, waiting for the lock, before a task says its job is caught up. Each read decodes
// the WAL again from the slot's restart position (where PostgreSQL last logged the running
// transactions, every 15 s or so), which is why reads are not more frequent.
//
// After each read the slot's retained WAL is measured: past max_slot_retained_mb (jobs.yaml) a
// warning says so, at most every 5 minutes; the metrics show it.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "database/database.h"
#include "output/run_metrics.h"
#include "state/schema_name.h"

namespace pgxform {

inline constexpr std::chrono::milliseconds k_run_interval{10000};
inline constexpr std::chrono::milliseconds k_catch_up_interval{1000};
inline constexpr long long k_read_messages = 50000;

class SlotReader {
 public:
  SlotReader(StateSchema schema, long max_retained_mb, RunMetrics& metrics);

  enum class Wait { no, yes };  // yes: wait for the slot lock; no: leave the read to its holder
  struct Read {
    bool done = false;                      // false: another session holds the slot (Wait::no)
    std::map<std::string, long long> keys;  // change_log rows it added, by job
  };
  // Reads until the slot is read up to the WAL flushed when it started, on `conn` (a worker's
  // session, or a command's connection). Throws what the connection throws (a lost connection;
  // a permanent error: the slot is lost, say).
  Read read(pqxx::connection& conn, Wait wait);
  // read(session, Wait::no) when this process's last read is `interval` old or more; none when
  // it is not.
  std::optional<Read> read_if_due(Session& session, std::chrono::milliseconds interval);
  // The slot's retained WAL, to the metrics, and a warning past max_slot_retained_mb (at most
  // every 5 minutes); after each read, and when a command starts.
  void measure(pqxx::connection& conn);

 private:
  // One pass: at most k_read_messages; true when it reached L.
  bool read_once(pqxx::connection& conn, Read& read);

  StateSchema m_schema;
  long m_max_retained_mb;
  RunMetrics& m_metrics;
  std::mutex m_mutex;  // guards the times below: the tasks of one process share this reader
  std::optional<std::chrono::steady_clock::time_point> m_last_read, m_warned;
};

}  // namespace pgxform
