#include "output_format.h"

#include <cmath>
#include <iomanip>
#include <sstream>

namespace pgxform {

std::string fixed(double value, int precision) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << value;
  return s.str();
}

std::string json_string(const std::string& text) {
  std::ostringstream out;
  out << '"';
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out << "\\\"";
        break;
      case '\\':
        out << "\\\\";
        break;
      case '\n':
        out << "\\n";
        break;
      case '\r':
        out << "\\r";
        break;
      case '\t':
        out << "\\t";
        break;
      default:
        if (c < 0x20)
          out << "\\u" << std::hex << std::setw(4) << std::setfill('0') << int(c) << std::dec;
        else
          out << c;
    }
  }
  out << '"';
  return out.str();
}

std::string json_number(double value, int precision) {
  return std::isfinite(value) ? fixed(value, precision) : "null";
}

std::string json_number(const std::optional<double>& value, int precision) {
  return value ? json_number(*value, precision) : "null";
}

}  // namespace pgxform
