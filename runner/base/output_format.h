// output_format: numbers as the commands print them in their tables (status, validate, plan,
// profile, rehearse, info). Their --json output goes through json_output.h.
#pragma once

#include <string>

namespace pgxform {

// `value` with `precision` decimals, e.g. fixed(2.345, 1) == "2.3".
std::string fixed(double value, int precision);
// Rows per second, short: "850", "4.5", "12.3k", "1.2M" (status's RATE, run's live display).
std::string rate_text(double rows_per_s);
// Seconds left, short: "45s", "12m05s", "3h05m", "2d04h" (status's ETA, run's live display).
std::string eta_text(double seconds);

}  // namespace pgxform
