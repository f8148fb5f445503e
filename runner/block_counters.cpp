#include "block_counters.h"

#include <nlohmann/json.hpp>

namespace pgxform {

BlockCounters& BlockCounters::operator+=(const BlockCounters& other) {
  for (const auto& field : k_counter_fields) this->*field.member += other.*field.member;
  return *this;
}

std::optional<BlockCounters> top_node_counters(std::string_view explain_json) {
  // Without exceptions: a plan that is not JSON simply has no counters.
  const auto plan = nlohmann::json::parse(explain_json, nullptr, /*allow_exceptions=*/false);
  if (!plan.is_array() || plan.empty() || !plan[0].is_object()) return std::nullopt;
  const auto top = plan[0].find("Plan");
  if (top == plan[0].end() || !top->is_object()) return std::nullopt;
  BlockCounters counters;
  for (const auto& field : k_counter_fields) {
    const auto value = top->find(field.explain_name);
    if (value == top->end() || !value->is_number_integer()) return std::nullopt;
    counters.*field.member = value->get<long long>();
  }
  return counters;
}

}  // namespace pgxform
