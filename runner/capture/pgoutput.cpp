#include "capture/pgoutput.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace pgxform {

namespace {

// Reads the message's fields in network byte order; throws when it ends early.
class Reader {
 public:
  explicit Reader(std::string_view data) : m_data(data) {}

  std::uint64_t unsigned_int(int bytes) {
    need(std::size_t(bytes));
    std::uint64_t value = 0;
    for (int i = 0; i < bytes; ++i)
      value = (value << 8) | static_cast<unsigned char>(m_data[m_at++]);
    return value;
  }
  std::int64_t int64() { return static_cast<std::int64_t>(unsigned_int(8)); }
  std::uint32_t int32() { return static_cast<std::uint32_t>(unsigned_int(4)); }
  char byte() {
    need(1);
    return m_data[m_at++];
  }
  std::string string() {
    const std::size_t end = m_data.find('\0', m_at);
    if (end == std::string_view::npos) throw std::runtime_error("a pgoutput string is not ended");
    std::string out(m_data.substr(m_at, end - m_at));
    m_at = end + 1;
    return out;
  }
  std::string bytes(std::size_t count) {
    need(count);
    std::string out(m_data.substr(m_at, count));
    m_at += count;
    return out;
  }
  Tuple tuple() {
    Tuple out(unsigned_int(2));
    for (TupleValue& value : out) {
      switch (byte()) {
        case 'n':
          value.kind = TupleValue::Kind::null;
          break;
        case 'u':
          value.kind = TupleValue::Kind::unchanged;
          break;
        case 't':
        case 'b':
          value.kind = TupleValue::Kind::text;
          value.text = bytes(int32());
          break;
        default:
          throw std::runtime_error("a pgoutput tuple column of an unknown kind");
      }
    }
    return out;
  }

 private:
  void need(std::size_t count) const {
    if (m_data.size() - m_at < count) throw std::runtime_error("a pgoutput message is cut short");
  }
  std::string_view m_data;
  std::size_t m_at = 0;
};

void read_relation(Reader& in, PgoutputMessage& out) {
  out.relid = in.int32();
  out.nspname = in.string();
  out.relname = in.string();
  in.byte();  // replica identity
  const std::uint64_t columns = in.unsigned_int(2);
  for (std::uint64_t i = 0; i < columns; ++i) {
    in.byte();  // flags: part of the key
    out.columns.push_back(in.string());
    in.int32();  // type
    in.int32();  // typmod
  }
}

void read_update(Reader& in, PgoutputMessage& out) {
  out.relid = in.int32();
  char kind = in.byte();
  if (kind == 'K' || kind == 'O') {
    out.old_tuple = in.tuple();
    kind = in.byte();
  }
  if (kind != 'N') throw std::runtime_error("a pgoutput update without its new tuple");
  out.new_tuple = in.tuple();
}

}  // namespace

std::uint64_t lsn_from_text(const std::string& text) {
  unsigned long high = 0, low = 0;
  char rest = 0;
  if (std::sscanf(text.c_str(), "%lX/%lX%c", &high, &low, &rest) != 2 || high > 0xffffffffUL ||
      low > 0xffffffffUL)
    throw std::invalid_argument("'" + text + "' is not a WAL position");
  return (std::uint64_t(high) << 32) | low;
}

std::string lsn_text(std::uint64_t lsn) {
  char out[32];
  std::snprintf(out, sizeof out, "%X/%X", unsigned(lsn >> 32), unsigned(lsn & 0xffffffffu));
  return out;
}

PgoutputMessage parse_pgoutput(std::string_view data) {
  Reader in(data);
  PgoutputMessage out;
  switch (in.byte()) {
    case 'B':
      out.kind = PgoutputMessage::Kind::begin;
      in.unsigned_int(8);  // final LSN
      out.timestamp = in.int64();
      break;
    case 'C':
      out.kind = PgoutputMessage::Kind::commit;
      in.byte();  // flags
      out.commit_lsn = in.unsigned_int(8);
      out.end_lsn = in.unsigned_int(8);
      break;
    case 'R':
      out.kind = PgoutputMessage::Kind::relation;
      read_relation(in, out);
      break;
    case 'I':
      out.kind = PgoutputMessage::Kind::insert;
      out.relid = in.int32();
      if (in.byte() != 'N') throw std::runtime_error("a pgoutput insert without its tuple");
      out.new_tuple = in.tuple();
      break;
    case 'U':
      out.kind = PgoutputMessage::Kind::update;
      read_update(in, out);
      break;
    case 'D': {
      out.kind = PgoutputMessage::Kind::remove;
      out.relid = in.int32();
      const char kind = in.byte();
      if (kind != 'K' && kind != 'O') throw std::runtime_error("a pgoutput delete without a key");
      out.old_tuple = in.tuple();
      break;
    }
    case 'T': {
      out.kind = PgoutputMessage::Kind::truncate;
      const std::uint32_t relations = in.int32();
      in.byte();  // options
      for (std::uint32_t i = 0; i < relations; ++i) out.relids.push_back(in.int32());
      break;
    }
    case 'M':
      out.kind = PgoutputMessage::Kind::message;
      out.transactional = (in.byte() & 1) != 0;
      in.unsigned_int(8);  // its LSN
      out.prefix = in.string();
      break;
    default:
      break;  // origin, type: nothing to keep
  }
  return out;
}

ChangeDecoder::ChangeDecoder(std::vector<CapturedColumn> columns, std::uint64_t consumed)
    : m_columns(std::move(columns)), m_consumed(consumed) {}

void ChangeDecoder::lose(const std::string& job, const std::string& reason) {
  m_lost.emplace(job, reason);  // the first reason of the transaction stays
}

void ChangeDecoder::change(const PgoutputMessage& message) {
  const auto relation = m_relations.find(message.relid);
  if (relation == m_relations.end())
    throw std::runtime_error("a pgoutput change of relation " + std::to_string(message.relid) +
                             " before its description");
  const auto value = [](const std::optional<Tuple>& tuple, std::size_t at) -> const TupleValue* {
    return tuple && at < tuple->size() ? &(*tuple)[at] : nullptr;
  };
  for (const CapturedColumn& c : m_columns) {
    if (c.table_oid != message.relid) continue;
    const auto& names = relation->second.columns;
    const auto found = std::find(names.begin(), names.end(), c.column);
    if (found == names.end()) {
      lose(c.job, relation->second.name + " has no column " + c.column + " any more");
      continue;
    }
    const std::size_t at = std::size_t(found - names.begin());
    const TupleValue* old_value = value(message.old_tuple, at);
    const TupleValue* new_value = value(message.new_tuple, at);
    auto& keys = m_keys[{c.job, c.via}];
    for (const TupleValue* v : {old_value, new_value})
      if (v && v->kind == TupleValue::Kind::text) keys.push_back(v->text);
    const bool old_known = old_value && old_value->kind != TupleValue::Kind::unchanged;
    if (new_value && new_value->kind == TupleValue::Kind::unchanged && !old_known)
      lose(c.job, "an UPDATE of " + relation->second.name + " whose " + c.column +
                      " is an unchanged TOASTed value, which the WAL does not hold");
  }
}

void ChangeDecoder::commit(const PgoutputMessage& message) {
  ++m_changes.transactions;
  m_changes.last_end = message.end_lsn;
  if (m_own || message.commit_lsn < m_consumed) {
    ++m_changes.skipped;
  } else {
    for (const auto& [job_via, values] : m_keys) {
      auto& into = m_changes.keys[job_via];
      for (const std::string& v : values) {
        const auto [at, added] = into.emplace(v, m_timestamp);
        if (!added) at->second = std::min(at->second, m_timestamp);
      }
    }
    for (const auto& [job, reason] : m_lost) m_changes.lost.emplace(job, reason);
  }
  m_keys.clear();
  m_lost.clear();
  m_own = false;
}

void ChangeDecoder::add(std::string_view data) {
  const PgoutputMessage message = parse_pgoutput(data);
  switch (message.kind) {
    case PgoutputMessage::Kind::begin:
      m_timestamp = message.timestamp;
      m_own = false;
      m_keys.clear();
      m_lost.clear();
      break;
    case PgoutputMessage::Kind::commit:
      commit(message);
      break;
    case PgoutputMessage::Kind::relation: {
      Relation& relation = m_relations[message.relid];
      relation.name = message.nspname + "." + message.relname;
      relation.columns = message.columns;
      break;
    }
    case PgoutputMessage::Kind::insert:
    case PgoutputMessage::Kind::update:
    case PgoutputMessage::Kind::remove:
      change(message);
      break;
    case PgoutputMessage::Kind::truncate:
      for (const std::uint32_t relid : message.relids)
        for (const CapturedColumn& c : m_columns)
          if (c.table_oid == relid) lose(c.job, "TRUNCATE of " + c.table_name);
      break;
    case PgoutputMessage::Kind::message:
      if (message.transactional && message.prefix == k_own_writes_prefix) m_own = true;
      break;
    case PgoutputMessage::Kind::other:
      break;
  }
}

}  // namespace pgxform
