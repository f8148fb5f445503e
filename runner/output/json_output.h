// json_output: the --json output of the commands (status, plan, profile, rehearse), built with
// nlohmann-json: ordered_json keeps the keys in the order the commands add them, which is the
// order the docs list them in. One JSON value per command, on one line.
//
// Numbers are rounded to the decimals the command's table shows (rounded()), so that a figure
// reads the same in both and carries no tail of binary noise; NaN, infinities and unknown
// figures are null.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>

namespace pgxform {

using Json = nlohmann::ordered_json;

double rounded(double value, int decimals);

// A number rounded to `decimals`, or null.
Json json_number(const std::optional<double>& value, int decimals);
// A string, or null.
Json json_text(const std::optional<std::string>& value);

// `value` on one line. Text from the data reaches a terminal as escapes only: nlohmann-json
// escapes U+0000..U+001F and replaces bytes that are not UTF-8; DEL and the C1 controls
// (U+0080..U+009F, which some terminals obey) are written \u007f..\u009f too. The JSON
// means the same.
std::string json_line(const Json& value);
// json_line(value), and a newline.
void print_json(std::ostream& out, const Json& value);

}  // namespace pgxform
