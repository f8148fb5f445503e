// pgoutput: the messages of PostgreSQL's pgoutput plugin (protocol 1) read into the keys catch-up
// needs, without a database — built here byte by byte as the manual's "Logical Replication
// Message Formats" lays them out. The decoding of a real slot is tested in
// logical_capture_db_test.cpp.
#include "capture/pgoutput.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

using pgxform::CapturedColumn;
using pgxform::ChangeDecoder;

namespace {

// One message, written field by field in network byte order.
class Message {
 public:
  explicit Message(char kind) { m_bytes.push_back(kind); }
  Message& i8(int v) {
    m_bytes.push_back(char(v));
    return *this;
  }
  Message& i16(int v) { return integer(std::uint64_t(v), 2); }
  Message& i32(std::uint32_t v) { return integer(v, 4); }
  Message& i64(std::uint64_t v) { return integer(v, 8); }
  Message& text(const std::string& s) {
    m_bytes += s;
    m_bytes.push_back('\0');
    return *this;
  }
  // A tuple of columns: a value, or "\x01" for NULL, "\x02" for an unchanged TOASTed value.
  Message& tuple(const std::vector<std::string>& columns) {
    i16(int(columns.size()));
    for (const std::string& c : columns) {
      if (c == "\x01") {
        i8('n');
      } else if (c == "\x02") {
        i8('u');
      } else {
        i8('t');
        i32(std::uint32_t(c.size()));
        m_bytes += c;
      }
    }
    return *this;
  }
  const std::string& bytes() const { return m_bytes; }

 private:
  Message& integer(std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) m_bytes.push_back(char((v >> (8 * i)) & 0xff));
    return *this;
  }
  std::string m_bytes;
};

std::string begin(std::int64_t time) {
  return Message('B').i64(0).i64(time).i32(7).bytes();
}
std::string commit(std::uint64_t at, std::uint64_t end) {
  return Message('C').i8(0).i64(at).i64(end).i64(0).bytes();
}
std::string relation(std::uint32_t relid, const std::vector<std::string>& columns) {
  Message m('R');
  m.i32(relid).text("legacy").text("items").i8('d').i16(int(columns.size()));
  for (const std::string& c : columns) m.i8(c == "id" ? 1 : 0).text(c).i32(20).i32(-1);
  return m.bytes();
}
std::string insert(std::uint32_t relid, const std::vector<std::string>& row) {
  return Message('I').i32(relid).i8('N').tuple(row).bytes();
}
std::string update(std::uint32_t relid, const std::vector<std::string>& old_key,
                   const std::vector<std::string>& row) {
  Message m('U');
  m.i32(relid);
  if (!old_key.empty()) m.i8('K').tuple(old_key);
  return m.i8('N').tuple(row).bytes();
}
std::string remove(std::uint32_t relid, const std::vector<std::string>& key) {
  return Message('D').i32(relid).i8('K').tuple(key).bytes();
}
std::string own_message() {
  return Message('M').i8(1).i64(0).text(pgxform::k_own_writes_prefix).i32(0).bytes();
}

// Job `items` records column id of table 100; job `lines` records column order_id of table 200.
std::vector<CapturedColumn> columns() {
  return {{"items", 0, 100, "legacy.items", "id", "bigint", 'N'},
          {"lines", 1, 100, "legacy.items", "id", "bigint", 'N'},
          {"lines", 0, 200, "legacy.lines", "line_id", "bigint", 'N'}};
}

std::vector<std::string> keys_of(const ChangeDecoder& decoder, const std::string& job, int via) {
  std::vector<std::string> out;
  const auto& keys = decoder.changes().keys;
  if (const auto it = keys.find({job, via}); it != keys.end())
    for (const auto& [key, time] : it->second) out.push_back(key);
  return out;
}

}  // namespace

TEST_CASE("a WAL position reads and prints as PostgreSQL writes it") {
  CHECK(pgxform::lsn_from_text("16/B374D848") == 0x16B374D848ULL);
  CHECK(pgxform::lsn_text(0x16B374D848ULL) == "16/B374D848");
  CHECK(pgxform::lsn_text(0) == "0/0");
  CHECK_THROWS_AS(pgxform::lsn_from_text("16B374D848"), std::invalid_argument);
  CHECK_THROWS_AS(pgxform::lsn_from_text("1/2x"), std::invalid_argument);
}

TEST_CASE(
    "the decoder keeps the new key of an insert, the old key of a delete and both of a "
    "key's change, for every job that records the table") {
  ChangeDecoder decoder(columns(), 0);
  for (const std::string& m :
       {begin(1000), relation(100, {"id", "name"}), insert(100, {"5", "five"}),
        update(100, {}, {"6", "six"}), update(100, {"7", "\x01"}, {"70", "seventy"}),
        remove(100, {"8", "\x01"}), relation(200, {"line_id", "order_id"}),
        insert(200, {"11", "5"}), commit(0x100, 0x180)})
    decoder.add(m);
  CHECK(keys_of(decoder, "items", 0) == std::vector<std::string>{"5", "6", "7", "70", "8"});
  CHECK(keys_of(decoder, "lines", 1) == std::vector<std::string>{"5", "6", "7", "70", "8"});
  CHECK(keys_of(decoder, "lines", 0) == std::vector<std::string>{"11"});
  CHECK(decoder.changes().transactions == 1);
  CHECK(decoder.changes().skipped == 0);
  REQUIRE(decoder.changes().last_end);
  CHECK(*decoder.changes().last_end == 0x180);
  CHECK(decoder.changes().keys.at({"items", 0}).at("5") == 1000);
  CHECK(decoder.changes().lost.empty());
}

TEST_CASE("the decoder skips what an earlier read recorded and what pgxform itself wrote") {
  ChangeDecoder decoder(columns(), 0x200);
  for (const std::string& m :
       {begin(1), relation(100, {"id"}), insert(100, {"1"}), commit(0x100, 0x180),  // recorded
        begin(2), own_message(), insert(100, {"2"}), commit(0x200, 0x280),          // own
        begin(3), insert(100, {"3"}), own_message(), commit(0x300, 0x380),          // own, late
        begin(4), insert(100, {"4"}), commit(0x400, 0x480)})
    decoder.add(m);
  CHECK(keys_of(decoder, "items", 0) == std::vector<std::string>{"4"});
  CHECK(decoder.changes().transactions == 4);
  CHECK(decoder.changes().skipped == 3);
  CHECK(*decoder.changes().last_end == 0x480);
}

TEST_CASE("a key changed twice keeps the earliest commit time, and NULL keys are none") {
  ChangeDecoder decoder(columns(), 0);
  for (const std::string& m :
       {begin(500), relation(100, {"id"}), insert(100, {"9"}), insert(100, {"\x01"}),
        commit(0x10, 0x20), begin(300), update(100, {}, {"9"}), commit(0x30, 0x40)})
    decoder.add(m);
  CHECK(keys_of(decoder, "items", 0) == std::vector<std::string>{"9"});
  CHECK(decoder.changes().keys.at({"items", 0}).at("9") == 300);
}

TEST_CASE("a TRUNCATE, a renamed column or a key the WAL does not hold loses the job's changes") {
  ChangeDecoder renamed(columns(), 0);
  for (const std::string& m :
       {begin(1), relation(100, {"ident", "name"}), insert(100, {"1", "x"}), commit(1, 2)})
    renamed.add(m);
  CHECK_THAT(renamed.changes().lost.at("items"), Catch::Contains("has no column id"));
  const std::string truncate = Message('T').i32(1).i8(0).i32(200).bytes();
  ChangeDecoder decoder(columns(), 0);
  for (const std::string& m : {begin(2), truncate, commit(3, 4)}) decoder.add(m);
  CHECK_THAT(decoder.changes().lost.at("lines"), Catch::Contains("TRUNCATE of legacy.lines"));
  CHECK(decoder.changes().lost.count("items") == 0);
  ChangeDecoder toast(columns(), 0);
  for (const std::string& m :
       {begin(1), relation(100, {"id", "name"}), update(100, {}, {"\x02", "x"}), commit(1, 2)})
    toast.add(m);
  CHECK_THAT(toast.changes().lost.at("items"), Catch::Contains("unchanged TOASTed value"));
  // A lost transaction that was recorded before is skipped whole, its loss too.
  ChangeDecoder again(columns(), 10);
  for (const std::string& m : {begin(2), truncate, commit(3, 4)}) again.add(m);
  CHECK(again.changes().lost.empty());
}

TEST_CASE("a message cut short, or a change of a relation never described, is an error") {
  ChangeDecoder decoder(columns(), 0);
  const std::string whole = insert(100, {"1"});
  CHECK_THROWS_AS(decoder.add(whole.substr(0, whole.size() - 1)), std::runtime_error);
  CHECK_THROWS_WITH(decoder.add(whole), Catch::Contains("before its description"));
  CHECK_THROWS_AS(pgxform::parse_pgoutput(Message('R').i32(1).bytes()), std::runtime_error);
}
