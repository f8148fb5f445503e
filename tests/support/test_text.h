// test_text: small helpers for what the tests read in a command's output.
#pragma once

#include <cstddef>
#include <string>

namespace pgxform_test {

// How many times `part` occurs in `text` (overlapping occurrences count).
inline std::size_t occurrences(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

}  // namespace pgxform_test
