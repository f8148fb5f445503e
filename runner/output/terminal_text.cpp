#include "output/terminal_text.h"

#include "base/text_check.h"

namespace pgxform {

namespace {

// A line of a block: a tab kept, everything else printable() refuses escaped.
std::string block_line(std::string_view line) {
  std::string out;
  for (std::size_t tab = line.find('\t'); tab != std::string_view::npos; tab = line.find('\t')) {
    out += printable(line.substr(0, tab)) + '\t';
    line.remove_prefix(tab + 1);
  }
  return out + printable(line);
}

}  // namespace

std::string terminal_text(std::string_view text, Lines lines) {
  if (lines == Lines::one) return printable(text);
  // A block's own last line break ends it, and is kept.
  if (!text.empty() && text.back() == '\n')
    return terminal_text(text.substr(0, text.size() - 1), lines) + "\n";
  std::string out;
  for (std::size_t end = text.find('\n'); end != std::string_view::npos; end = text.find('\n')) {
    out += block_line(text.substr(0, end)) + "\n    ";
    text.remove_prefix(end + 1);
  }
  return out + block_line(text);
}

}  // namespace pgxform
