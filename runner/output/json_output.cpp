#include "output/json_output.h"

#include <cmath>
#include <cstdio>

namespace pgxform {

double rounded(double value, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

Json json_number(const std::optional<double>& value, int decimals) {
  if (!value || !std::isfinite(*value)) return nullptr;
  return rounded(*value, decimals);
}

Json json_text(const std::optional<std::string>& value) {
  if (!value) return nullptr;
  return *value;
}

std::string json_line(const Json& value) {
  // Invalid UTF-8 (a key or an error message in another encoding) is replaced, not thrown on.
  const std::string dumped = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  // Such bytes stand only inside strings, where \uXXXX means the same character.
  std::string out;
  for (std::size_t i = 0; i < dumped.size(); ++i) {
    const auto c = static_cast<unsigned char>(dumped[i]);
    const auto next = i + 1 < dumped.size() ? static_cast<unsigned char>(dumped[i + 1]) : 0;
    if (c == 0x7f) {
      out += "\\u007f";
    } else if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04x", unsigned(next));
      out += escape;
      ++i;
    } else {
      out += char(c);
    }
  }
  return out;
}

void print_json(std::ostream& out, const Json& value) {
  out << json_line(value) << "\n";
}

}  // namespace pgxform
