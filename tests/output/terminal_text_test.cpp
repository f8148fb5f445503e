// terminal_text (terminal_text.h) without a database: what reaches a terminal of text pgxform
// did not write — no control character, no C1 control, no byte that is not UTF-8, and no line
// of its own — and the log's contained() and JSON's json_line(), which rest on the same rule.
#include "output/terminal_text.h"

#include <catch2/catch.hpp>

#include "output/json_output.h"
#include "output/logging.h"
#include "support/test_json.h"

using pgxform::Lines;
using pgxform::terminal_text;

namespace {

// The key of the issue: a window title, a colour, a carriage return and a forged log line.
const std::string k_hostile =
    "k\x1b]0;pwned\x07\x1b[31mred\r\n2026-12-06T00:00:00 info FORGED\xc2\x9b"
    "2J\x7f\xff";

bool raw_controls(const std::string& text, bool newlines_allowed) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n' && newlines_allowed) continue;
    if (c == '\t' && newlines_allowed) continue;
    if (c < 0x20 || c == 0x7f || c == 0xff) return true;
    if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) <= 0x9f)
      return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a value on one line has every control character, C1 control and stray byte escaped") {
  const std::string shown = terminal_text(k_hostile);
  CHECK(shown ==
        "k\\x1b]0;pwned\\x07\\x1b[31mred\\x0d\\x0a2026-12-06T00:00:00 info FORGED\\xc2\\x9b"
        "2J\\x7f\\xff");
  CHECK_FALSE(raw_controls(shown, false));
  CHECK(terminal_text("tab\there") == "tab\\x09here");
  CHECK(terminal_text("Müller, 東京") == "Müller, 東京");
}

TEST_CASE("a block keeps its line breaks and tabs, each later line indented, its end kept") {
  const std::string shown =
      terminal_text("ERROR:  bad key " + k_hostile + "\nCONTEXT:\tline 3\n", Lines::indented);
  CHECK_FALSE(raw_controls(shown, true));
  CHECK(shown ==
        "ERROR:  bad key k\\x1b]0;pwned\\x07\\x1b[31mred\\x0d\n"
        "    2026-12-06T00:00:00 info FORGED\\xc2\\x9b2J\\x7f\\xff\n"
        "    CONTEXT:\tline 3\n");
  // The log's lines are such blocks.
  CHECK(pgxform::contained("a\nb\x1b\n") == "a\n    b\\x1b\n");
}

TEST_CASE("JSON output writes DEL and the C1 controls as escapes, meaning the same text") {
  const pgxform::Json value{{"key",
                             "a\x7f"
                             "b\xc2\x9b"
                             "c\x1b"
                             "d é"}};
  const std::string line = pgxform::json_line(value);
  CHECK_FALSE(raw_controls(line, false));
  CHECK(line == "{\"key\":\"a\\u007fb\\u009bc\\u001bd é\"}");
  CHECK(pgxform_test::parse_json(line) == pgxform_test::parse_json(value.dump()));
}
