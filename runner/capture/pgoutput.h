// pgoutput: the changes of `changes: logical` read from the messages of PostgreSQL's own output
// plugin, pgoutput, protocol version 1 (the "Logical Replication Message Formats" of the
// PostgreSQL manual), as pg_logical_slot_peek_binary_changes returns them: one message per row,
// whole transactions in commit order, each BEGIN ... COMMIT. Pure: no database, no clock.
//
// What it keeps is only what catch-up needs: for each job, the values of its captured column
// (capture_state.h: CapturedColumn) in the rows a transaction inserted, updated or deleted, old
// and new (the old value comes in the old tuple, which PostgreSQL writes when the column is part
// of the table's replica identity and changed, or always with REPLICA IDENTITY FULL), each with
// the earliest commit time it was seen at. Values are text, as the type's output function wrote
// them in the reading session (pgxform's, whose settings are fixed: database.h).
//
// A transaction is skipped whole when
//   - its commit record starts before `consumed`: it was recorded by an earlier read whose
//     COMMIT went through while the slot did not move after it (slot_reader.h); or
//   - it holds a transactional logical message with the prefix "pgxform" (k_own_writes_prefix):
//     pgxform's own batches emit one, so that what a transform or a refresh writes to a
//     captured table is not captured, as the triggers ignore pgxform's sessions.
// What cannot be turned into keys makes the job's capture lost (a reason per job): a TRUNCATE of
// a captured table, a captured column the relation no longer has (renamed), a key that is not
// in the WAL (an UPDATE whose key is an unchanged TOASTed value).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "state/capture_state.h"

namespace pgxform {

// The prefix of the logical message pgxform's own transactions emit.
inline constexpr const char* k_own_writes_prefix = "pgxform";

// "16/B374D848" <-> its 64-bit position. lsn_from_text throws std::invalid_argument.
std::uint64_t lsn_from_text(const std::string& text);
std::string lsn_text(std::uint64_t lsn);

// One column of a tuple: NULL, an unchanged TOASTed value (not sent), or its text.
struct TupleValue {
  enum class Kind { null, unchanged, text };
  Kind kind = Kind::null;
  std::string text;
};
using Tuple = std::vector<TupleValue>;

// One message, as far as the decoder reads it.
struct PgoutputMessage {
  enum class Kind { begin, commit, relation, insert, update, remove, truncate, message, other };
  Kind kind = Kind::other;
  std::uint64_t commit_lsn = 0, end_lsn = 0;  // commit: where its record starts and ends
  std::int64_t timestamp = 0;                 // begin: the commit time, µs since 2000-01-01
  std::uint32_t relid = 0;                    // relation, insert, update, remove
  std::string nspname, relname;               // relation
  std::vector<std::string> columns;           // relation: the column names, in tuple order
  std::optional<Tuple> old_tuple, new_tuple;  // insert, update, remove
  std::vector<std::uint32_t> relids;          // truncate
  bool transactional = false;                 // message
  std::string prefix;                         // message
};

// Throws std::runtime_error for a message it cannot read (cut short, an unknown tuple kind).
PgoutputMessage parse_pgoutput(std::string_view data);

// What one read of the slot decoded.
struct DecodedChanges {
  // (job, via) -> value -> the earliest commit time of a transaction that changed it (µs since
  // 2000-01-01).
  std::map<std::pair<std::string, int>, std::map<std::string, std::int64_t>> keys;
  std::map<std::string, std::string> lost;  // job -> why its log lacks changes
  std::optional<std::uint64_t> last_end;    // the end of the last whole transaction read
  long long transactions = 0;               // committed transactions read
  long long skipped = 0;                    // ... of which were skipped (see above)
};

class ChangeDecoder {
 public:
  ChangeDecoder(std::vector<CapturedColumn> columns, std::uint64_t consumed);
  // The next message of the slot.
  void add(std::string_view data);
  const DecodedChanges& changes() const { return m_changes; }

 private:
  struct Relation {
    std::string name;  // "schema"."table" as the message names it
    std::vector<std::string> columns;
  };
  void change(const PgoutputMessage& message);
  void commit(const PgoutputMessage& message);
  void lose(const std::string& job, const std::string& reason);

  std::vector<CapturedColumn> m_columns;
  std::uint64_t m_consumed;
  std::map<std::uint32_t, Relation> m_relations;
  // The transaction being read.
  std::int64_t m_timestamp = 0;
  bool m_own = false;
  std::map<std::pair<std::string, int>, std::vector<std::string>> m_keys;
  std::map<std::string, std::string> m_lost;
  DecodedChanges m_changes;
};

}  // namespace pgxform
