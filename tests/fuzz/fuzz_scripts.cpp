// libFuzzer target: any bytes as a script's file name (the first line) and text (the rest),
// through everything pgxform does to a script before it reaches the database: the name, the
// checksum, the transaction directive, the text checks (NUL, UTF-8, transaction control).
// Each either succeeds or throws ScriptError; anything else is a bug libFuzzer reports.
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/sql_text.h"
#include "base/text_check.h"
#include "plan/script_files.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string name = input.substr(0, newline);
  const std::string text = newline == std::string::npos ? "" : input.substr(newline + 1);
  try {
    pgxform::parse_script_name(name);
  } catch (const pgxform::ScriptError&) {
  }
  const std::string checksum = pgxform::script_checksum(text);
  // The checksum ignores line endings: LF and CRLF give the same, whatever the text.
  if (checksum.size() != 16) __builtin_trap();
  if (text.find('\r') == std::string::npos) {
    std::string crlf;
    for (const char c : text) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    if (pgxform::script_checksum(crlf) != checksum) __builtin_trap();
  }
  try {
    const auto transaction = pgxform::script_transaction(text, "fuzz.sql");
    pgxform::check_script_text(text, "fuzz.sql", transaction);
  } catch (const pgxform::ScriptError&) {
  }
  if (const auto control = pgxform::find_transaction_control(text))
    if (control->offset >= text.size()) __builtin_trap();
  pgxform::text_flaw(text);
  pgxform::name_flaw(name);
  return 0;
}
