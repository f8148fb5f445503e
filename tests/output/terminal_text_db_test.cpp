// Every command that prints data, against a real PostgreSQL, fed keys and server errors full
// of control and escape bytes (a window title, a colour, a carriage return, a line break
// followed by a forged log line, an 8-bit CSI): none of those bytes reaches stdout or stderr
// raw, and no line of either starts with the forged one (terminal_text.h).
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

const std::string k_forged = "2026-12-06T00:00:00 info FORGED";
// What follows a key's plain start: it drives a terminal and forges a line.
const std::string k_tail = "\x1b]0;pwned\x07\x1b[31m\r\n" + k_forged +
                           "\xc2\x9b"
                           "2J";

// The offending bytes of `text`, described; empty when there is none.
std::string raw_bytes(const std::string& text) {
  std::string found;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ||
        (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) <= 0x9f))
      found += "byte " + std::to_string(c) + " at " + std::to_string(i) + "; ";
  }
  for (std::size_t line = 0; line != std::string::npos;
       line = text.find('\n', line) == std::string::npos ? std::string::npos
                                                         : text.find('\n', line) + 1)
    if (text.compare(line, k_forged.size(), k_forged) == 0)
      found += "a forged line at " + std::to_string(line) + "; ";
  return found;
}

void check_contained(const std::string& what, const CliResult& r) {
  INFO(what << " (exit " << r.exit_code << ")\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(raw_bytes(r.out).empty());
  CHECK(raw_bytes(r.err).empty());
}

}  // namespace

TEST_CASE(
    "status, verify, explain, reset, retry-failed, rehearse, validate, plan, info and run "
    "print no control byte of a key or an error raw, and forge no line") {
  TestDatabase db;
  const std::string last = "k010" + k_tail;  // the last key of the first batch
  const std::string bad = "z" + k_tail;      // the key whose batch fails
  {
    pqxx::connection conn(db.dsn());
    pqxx::work tx(conn);
    tx.exec(
        "CREATE SCHEMA legacy; CREATE SCHEMA xf;"
        "CREATE TABLE legacy.hostile (k text COLLATE \"C\" PRIMARY KEY, v int);"
        "INSERT INTO legacy.hostile SELECT 'k' || lpad(g::text, 3, '0'), g"
        " FROM generate_series(1, 9) g;");
    tx.exec("INSERT INTO legacy.hostile VALUES (" + tx.quote(last) + ", 10), (" + tx.quote(bad) +
            ", 11)");
    // The error names the key, as a transform's own RAISE would; a notice names the range.
    tx.exec(
        "CREATE FUNCTION xf.hostile(a text, b text) RETURNS bigint LANGUAGE plpgsql AS $$"
        " DECLARE found text; BEGIN"
        "  RAISE NOTICE 'range % to %', a, b;"
        "  SELECT k INTO found FROM legacy.hostile WHERE k BETWEEN a AND b AND k LIKE 'z%';"
        "  IF found IS NOT NULL THEN RAISE EXCEPTION 'bad key %', found; END IF;"
        "  RETURN (SELECT count(*) FROM legacy.hostile WHERE k BETWEEN a AND b); END $$");
    tx.commit();
  }
  TempDir dir;
  const std::string job =
      "        table: legacy.hostile\n        key: k\n        function: xf.hostile\n"
      "        batch_size: 10\n        target_batch_ms: 0\n"
      "        verify: SELECT k FROM legacy.hostile WHERE k BETWEEN $1 AND $2 AND v > 1\n";
  const auto path =
      dir.write("jobs.yaml",
                "version: 1\nlists:\n"
                "  - name: stop\n    jobs:\n      - name: hostile\n" +
                    job + "  - name: skip\n    jobs:\n      - name: hostile_skip\n" + job +
                    "        on_error: skip\n"
                    "  - name: steps\n    jobs:\n"
                    "      - {name: step, sql: \"SELECT 1 -- \\e[2J\"}\n");
  const auto run = run_cli(with_db(db, path, {"run"}));
  check_contained("run", run);
  REQUIRE(run.exit_code == 1);
  REQUIRE(db.scalar("SELECT last_key FROM pgxform.job_state WHERE job = 'hostile'") == last);
  REQUIRE(db.count("SELECT count(*) FROM pgxform.failed_batches") == 1);
  db.exec(
      "INSERT INTO pgxform.script_history (script, type, version, description, checksum,"
      " duration_ms) VALUES (E'V9__gone\\x1b[2J.sql', 'V', '9', 'gone', '0', 1)");

  // Status says what it is to say, escaped.
  const auto status = run_cli(with_db(db, path, {"status"}));
  CHECK_THAT(status.out, Catch::Contains("k010\\x1b]0;pwned\\x07\\x1b[31m\\x0d\\x0a2026"));
  CHECK_THAT(status.out, Catch::Contains("bad key z\\x1b]0;pwned"));
  for (const std::vector<std::string>& command : {std::vector<std::string>{"status"},
                                                  {"status", "--json"},
                                                  {"verify", "hostile"},
                                                  {"explain", "hostile"},
                                                  {"rehearse"},
                                                  {"retry-failed", "hostile_skip"},
                                                  {"plan"},
                                                  {"validate"},
                                                  {"info"},
                                                  {"profile"},
                                                  {"run"},
                                                  {"reset", "hostile", "--to", last}}) {
    std::string what;
    for (const auto& word : command) what += word + " ";
    check_contained(what, run_cli(with_db(db, path, command)));
  }
}
