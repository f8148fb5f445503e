#include "base/output_format.h"

#include <cstdio>
#include <iomanip>
#include <sstream>

namespace pgxform {

std::string fixed(double value, int precision) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << value;
  return s.str();
}

// Rows per second as RATE shows them: "850", "12.3k", "1.2M".
std::string rate_text(double rate) {
  if (rate >= 1e6) return fixed(rate / 1e6, 1) + "M";
  if (rate >= 1e4) return fixed(rate / 1e3, 1) + "k";
  return fixed(rate, rate < 10 ? 1 : 0);
}

// Seconds as ETA shows them: "45s", "12m", "3h05m", "2d04h".
std::string eta_text(double seconds) {
  const long long s = (long long)(seconds + 0.5);
  char text[32];
  if (s < 60)
    std::snprintf(text, sizeof text, "%llds", s);
  else if (s < 3600)
    std::snprintf(text, sizeof text, "%lldm%02llds", s / 60, s % 60);
  else if (s < 86400)
    std::snprintf(text, sizeof text, "%lldh%02lldm", s / 3600, s / 60 % 60);
  else
    std::snprintf(text, sizeof text, "%lldd%02lldh", s / 86400, s / 3600 % 24);
  return text;
}

}  // namespace pgxform
