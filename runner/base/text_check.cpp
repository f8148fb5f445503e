#include "base/text_check.h"

#include <cstdio>

namespace pgxform {

namespace {

// The length of the well-formed UTF-8 sequence at `text[i]`, 0 when there is none.
std::size_t sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b = byte(i);
  if (b < 0x80) return 1;
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
  if (b >= 0xC2 && b <= 0xDF) {
    n = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    n = 3;
    if (b == 0xE0) lo = 0xA0;  // no overlong forms
    if (b == 0xED) hi = 0x9F;  // no surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    n = 4;
    if (b == 0xF0) lo = 0x90;  // no overlong forms
    if (b == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return n;
}

enum class Controls { allowed, refused };

std::optional<TextFlaw> flaw(std::string_view text, Controls controls) {
  for (std::size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b == 0) return TextFlaw{i, "a NUL byte"};
    const std::size_t n = sequence_length(text, i);
    if (n == 0) return TextFlaw{i, "bytes that are not UTF-8"};
    const bool c0 = b < 0x20 || b == 0x7F;
    const bool c1 = b == 0xC2 && static_cast<unsigned char>(text[i + 1]) <= 0x9F;
    if (controls == Controls::refused && (c0 || c1)) return TextFlaw{i, "a control character"};
    i += n;
  }
  return std::nullopt;
}

}  // namespace

std::optional<TextFlaw> text_flaw(std::string_view text) {
  return flaw(text, Controls::allowed);
}

std::optional<TextFlaw> name_flaw(std::string_view text) {
  return flaw(text, Controls::refused);
}

std::string printable(std::string_view text) {
  std::string out;
  // One offending byte at a time: a control character of two bytes (U+0085) comes out as
  // \xc2\x85, its second byte being refused once the first is gone.
  while (const auto f = name_flaw(text)) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(text[f->offset]));
    out.append(text.substr(0, f->offset)).append(hex);
    text.remove_prefix(f->offset + 1);
  }
  return out.append(text);
}

int line_at(std::string_view text, std::size_t offset) {
  int line = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) line += text[i] == '\n';
  return line;
}

}  // namespace pgxform
