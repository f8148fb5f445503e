// output_format: numbers as the commands print them in their tables (status, validate, plan,
// profile, rehearse, info). Their --json output goes through json_output.h.
#pragma once

#include <string>

namespace pgxform {

// `value` with `precision` decimals, e.g. fixed(2.345, 1) == "2.3".
std::string fixed(double value, int precision);

}  // namespace pgxform
