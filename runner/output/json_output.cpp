#include "output/json_output.h"

#include <cmath>

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

void print_json(std::ostream& out, const Json& value) {
  // Invalid UTF-8 (a key or an error message in another encoding) is replaced, not thrown on.
  out << value.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
}

}  // namespace pgxform
