#include "capture/slot_reader.h"

#include <spdlog/spdlog.h>

#include "capture/logical_capture.h"
#include "capture/pgoutput.h"
#include "state/capture_state.h"
#include "state/change_log.h"
#include "state/state_locks.h"

namespace pgxform {

namespace {

using Clock = std::chrono::steady_clock;

// The slot's messages are fetched this many at a time, so that a transaction of a million rows
// is not held in memory twice.
constexpr long long k_fetch = 5000;

// The slot lock, held from before a read to after the slot moved; released on every way out.
class SlotLock {
 public:
  SlotLock(pqxx::connection& conn, const StateSchema& schema, SlotReader::Wait wait)
      : m_conn(conn), m_key(slot_lock(schema)) {
    pqxx::nontransaction tx(conn);
    if (wait == SlotReader::Wait::yes) {
      session_lock(tx, m_key);
      m_held = true;
    } else {
      m_held = try_session_lock(tx, m_key);
    }
  }
  ~SlotLock() {
    if (!m_held) return;
    try {
      pqxx::nontransaction tx(m_conn);
      session_unlock(tx, m_key);
    } catch (const std::exception&) {
      // The session is gone, and the lock with it.
    }
  }
  SlotLock(const SlotLock&) = delete;
  SlotLock& operator=(const SlotLock&) = delete;
  bool held() const { return m_held; }

 private:
  pqxx::connection& m_conn;
  LockKey m_key;
  bool m_held = false;
};

// "{...}" of bigints, for a bound bigint[].
std::string bigint_array(const std::vector<std::int64_t>& values) {
  std::string out = "{";
  for (const std::int64_t v : values) out += (out.size() > 1 ? "," : "") + std::to_string(v);
  return out + "}";
}

const CapturedColumn* column_of(const std::vector<CapturedColumn>& columns, const std::string& job,
                                int via) {
  for (const CapturedColumn& c : columns)
    if (c.job == job && c.via == via) return &c;
  return nullptr;
}

// The decoded values of one job's column into change_log; those its type no longer reads go in
// as they came. Returns the rows added.
long long record(pqxx::work& tx, const StateSchema& schema, const CapturedColumn& column,
                 const std::map<std::string, std::int64_t>& values) {
  std::vector<std::string> keys;
  std::vector<std::int64_t> times;
  for (const auto& [key, time] : values) {
    keys.push_back(key);
    times.push_back(time);
  }
  const std::string key_array = text_array(keys), time_array = bigint_array(times);
  try {
    pqxx::subtransaction typed(tx, "record_decoded");
    start_savepoint(typed);
    typed.exec_params(record_decoded_sql(schema, column.type, column.category), column.job,
                      column.via, key_array, time_array);
    typed.commit();
  } catch (const pqxx::sql_error& e) {
    spdlog::warn(
        "{}: {} change(s) of {} whose {} is no longer read as {} ({}): recorded as they"
        " came, catch-up sets them aside",
        column.job, keys.size(), column.table_name, column.column, column.type, e.sqlstate());
    tx.exec_params(record_decoded_sql(schema, "", column.category), column.job, column.via,
                   key_array, time_array);
  }
  return static_cast<long long>(keys.size());
}

}  // namespace

SlotReader::SlotReader(StateSchema schema, long max_retained_mb, RunMetrics& metrics)
    : m_schema(std::move(schema)), m_max_retained_mb(max_retained_mb), m_metrics(metrics) {}

bool SlotReader::read_once(pqxx::connection& conn, Read& read) {
  std::string consumed;
  std::optional<SlotRow> row;
  {
    pqxx::work tx(conn);
    // The slot moves past these changes once this commits: the commit must be durable first.
    tx.exec("SET LOCAL synchronous_commit = on");
    row = read_slot_row(tx, m_schema);
    if (!row) return true;  // dropped meanwhile: nothing to read
    const std::vector<CapturedColumn> columns = captured_columns(tx, m_schema);
    const std::string upto =
        tx.exec("SELECT pg_catalog.pg_current_wal_flush_lsn()::text")[0][0].as<std::string>();
    ChangeDecoder decoder(columns, lsn_from_text(row->consumed_lsn));
    tx.exec_params(
        "DECLARE pgxform_slot NO SCROLL CURSOR FOR SELECT data FROM"
        " pg_catalog.pg_logical_slot_peek_binary_changes($1, $2::pg_lsn, $3::int,"
        " 'proto_version', '1', 'publication_names', $4, 'messages', 'true')",
        row->slot, upto, k_read_messages, row->publication);
    long long messages = 0;
    for (;;) {
      const pqxx::result chunk =
          tx.exec("FETCH FORWARD " + std::to_string(k_fetch) + " FROM pgxform_slot");
      for (const auto& r : chunk) {
        const pqxx::binarystring data(r[0]);
        decoder.add(std::string_view(data.get(), data.size()));
      }
      messages += static_cast<long long>(chunk.size());
      if (chunk.size() < std::size_t(k_fetch)) break;
    }
    tx.exec("CLOSE pgxform_slot");
    const DecodedChanges& changes = decoder.changes();
    // Fewer messages than asked for: the slot was read up to `upto`.
    const bool whole = messages < k_read_messages || !changes.last_end;
    consumed = whole ? upto : lsn_text(*changes.last_end);
    for (const auto& [job_via, values] : changes.keys)
      if (const CapturedColumn* c = column_of(columns, job_via.first, job_via.second))
        read.keys[c->job] += record(tx, m_schema, *c, values);
    for (const auto& [job, reason] : changes.lost) {
      spdlog::error("{}: its change log lacks changes from now on: {}", job, reason);
      record_capture_lost(tx, m_schema, job, reason);
    }
    record_consumed(tx, m_schema, row->slot, consumed);
    tx.commit();
    if (!whole)
      spdlog::debug("slot {}: read up to {}, more to read", row->slot, consumed);
    else
      read.done = true;
  }
  // Only now that the changes are durably in change_log may the slot pass them.
  pqxx::nontransaction tx(conn);
  tx.exec_params(
      "SELECT pg_catalog.pg_replication_slot_advance(s.slot_name, $2::pg_lsn)"
      " FROM pg_catalog.pg_replication_slots s"
      " WHERE s.slot_name = $1 AND s.confirmed_flush_lsn < $2::pg_lsn",
      row->slot, consumed);
  return read.done;
}

SlotReader::Read SlotReader::read(pqxx::connection& conn, Wait wait) {
  Read read;
  {
    const SlotLock lock(conn, m_schema, wait);
    if (!lock.held()) return read;
    while (!read_once(conn, read)) {
    }
    read.done = true;
  }
  {
    const std::lock_guard<std::mutex> guard(m_mutex);
    m_last_read = Clock::now();
  }
  measure(conn);
  return read;
}

std::optional<SlotReader::Read> SlotReader::read_if_due(Session& session,
                                                        std::chrono::milliseconds interval) {
  {
    const std::lock_guard<std::mutex> guard(m_mutex);
    const auto now = Clock::now();
    if (m_last_read && now - *m_last_read < interval) return std::nullopt;
    // Claimed for this caller: the other tasks of the process do not try meanwhile.
    m_last_read = now;
  }
  return read(session.conn(), Wait::no);
}

void SlotReader::measure(pqxx::connection& conn) {
  std::optional<SlotFigures> figures;
  {
    pqxx::read_transaction tx(conn);
    figures = slot_figures(tx, m_schema);
  }
  if (!figures || !figures->retained_mb) return;
  m_metrics.slot_state(figures->slot, *figures->retained_mb * 1024 * 1024,
                       figures->read_age_s.value_or(0));
  if (*figures->retained_mb <= double(m_max_retained_mb)) return;
  const std::lock_guard<std::mutex> guard(m_mutex);
  const auto now = Clock::now();
  if (m_warned && now - *m_warned < std::chrono::minutes(5)) return;
  m_warned = now;
  spdlog::warn(
      "slot {} retains {:.0f} MB of WAL, more than max_slot_retained_mb ({}): read it more often"
      " (pgxform catch-up --follow), or drop it when the migration is over (pgxform capture"
      " --drop); max_slot_wal_keep_size caps it on the server (docs/catch-up.md)",
      figures->slot, *figures->retained_mb, m_max_retained_mb);
}

}  // namespace pgxform
