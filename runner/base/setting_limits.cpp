#include "base/setting_limits.h"

namespace pgxform {

std::optional<std::string> out_of_range(const SettingLimit& limit, long long value) {
  if (value > limit.max)
    return std::string(limit.name) + " " + std::to_string(value) + " > " +
           std::to_string(limit.max);
  if (value < limit.min)
    return std::string(limit.name) + " " + std::to_string(value) + " < " +
           std::to_string(limit.min);
  return std::nullopt;
}

}  // namespace pgxform
