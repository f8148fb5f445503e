#include "block_counters.h"

#include <cctype>
#include <string>

namespace pgxform {

BlockCounters& BlockCounters::operator+=(const BlockCounters& other) {
  for (const auto& field : k_counter_fields) this->*field.member += other.*field.member;
  return *this;
}

std::optional<BlockCounters> top_node_counters(std::string_view explain_json) {
  BlockCounters counters;
  for (const auto& field : k_counter_fields) {
    const std::string key = std::string("\"") + field.explain_name + "\":";
    std::size_t at = explain_json.find(key);
    if (at == std::string_view::npos) return std::nullopt;
    at += key.size();
    while (at < explain_json.size() && explain_json[at] == ' ') ++at;
    long long value = 0;
    const std::size_t first = at;
    for (; at < explain_json.size() && std::isdigit(static_cast<unsigned char>(explain_json[at]));
         ++at)
      value = value * 10 + (explain_json[at] - '0');
    if (at == first) return std::nullopt;
    counters.*field.member = value;
  }
  return counters;
}

}  // namespace pgxform
