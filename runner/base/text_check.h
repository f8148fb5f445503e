// text_check: what text may travel to PostgreSQL. libpq sends parameters and SQL text as C
// strings, so a NUL byte silently ends them there (two jobs named "items\0a" and "items\0b"
// would both be "items"), and the server refuses text that is not UTF-8 only when it arrives,
// perhaps after pgxform wrote something. So every string a user gives — the jobs file, the
// scripts, the command line — is checked when it is read, and refused as an input error that
// names where it came from. Names (of jobs and lists) are also written into log lines, so
// they may hold no control character either: a CR, LF or ESC in one would forge a line.
// Pure.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pgxform {

struct TextFlaw {
  std::size_t offset = 0;  // of the first offending byte
  std::string what;        // "a NUL byte", "bytes that are not UTF-8", "a control character"
};

// A NUL byte or bytes that are not well-formed UTF-8 (overlong forms and surrogates included).
std::optional<TextFlaw> text_flaw(std::string_view text);
// The same, and control characters (U+0000..U+001F, U+007F..U+009F).
std::optional<TextFlaw> name_flaw(std::string_view text);

// `text` with every byte that name_flaw refuses written as \xNN, so that a name read from a
// catalog can go into a comment or a message on one line: "a\nb" -> "a\x0ab".
std::string printable(std::string_view text);

// The 1-based line of `offset` in `text`.
int line_at(std::string_view text, std::size_t offset);

}  // namespace pgxform
