// terminal_text: what pgxform prints of text it did not write itself — a key from the data, a
// server's error text, a name from a catalog or another session's application_name, a
// script's name from the history, a plan or a notice — so that none of it drives the terminal
// or passes for a line of pgxform's own. The one escaping of such text: the log's lines
// (logging.h: contained()) and every command's output go through it.
//
// Every control character (C0, DEL, and C1 as UTF-8 encodes it: U+0080..U+009F, which some
// terminals obey as ESC [ ... would) and every byte that is not well-formed UTF-8 (an 8-bit
// terminal reads a lone 0x9b as CSI) is written as \xNN, one byte at a time
// (text_check.h: printable). What becomes of a line break depends on where the text goes:
//   Lines::one       a value on one line (a table cell, a key in a sentence): \x0a, and a tab
//                    \x09, like every other control character;
//   Lines::indented  a message or a block of several lines (an error with its CONTEXT, a
//                    plan): each later line starts with four spaces, so that none of them
//                    passes for a line of its own; tabs are kept, and so is a line break
//                    that ends the text.
// Pure.
#pragma once

#include <string>
#include <string_view>

namespace pgxform {

enum class Lines { one, indented };

std::string terminal_text(std::string_view text, Lines lines = Lines::one);

}  // namespace pgxform
