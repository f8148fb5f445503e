// output_format: numbers and strings as the commands print them, in their tables and in their
// --json output (status, validate, plan, profile, rehearse). JSON is written by hand, as its
// shapes are small and fixed: these are the only escaping and number rules it needs.
#pragma once

#include <optional>
#include <string>

namespace pgxform {

// `value` with `precision` decimals, e.g. fixed(2.345, 1) == "2.3".
std::string fixed(double value, int precision);

// A JSON string literal, quotes included; control characters escaped.
std::string json_string(const std::string& text);

// A JSON number with `precision` decimals; null for NaN, infinities and none.
std::string json_number(double value, int precision);
std::string json_number(const std::optional<double>& value, int precision);

}  // namespace pgxform
