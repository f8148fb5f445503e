#include "analysis/block_counters.h"

#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

namespace pgxform {

namespace {

using PlanJson = nlohmann::json;

// Reads the top plan node's fields as nlohmann-json's SAX parser hands them over, and stops at
// its children ("Plans") or its end: the rest of the plan, often most of it, is never parsed.
// Nesting: the plan is [ { "Plan": { fields..., "Plans": [...] }, "Planning": {...} } ].
class TopNode : public nlohmann::json_sax<PlanJson> {
 public:
  BlockCounters counters;
  int found = 0;

  bool start_object(std::size_t) override { return enter(); }
  bool start_array(std::size_t) override { return enter(); }
  bool end_object() override { return leave(); }
  bool end_array() override { return leave(); }
  bool key(string_t& name) override {
    if (m_depth == 2) m_entry_key = name;
    if (in_top_node()) {
      if (name == "Plans") return false;  // the children: everything needed is read
      m_field = name;
    }
    return true;
  }
  bool number_integer(number_integer_t value) override { return number(value); }
  bool number_unsigned(number_unsigned_t value) override {
    return number(static_cast<long long>(value));
  }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  bool in_top_node() const { return m_depth == 3 && m_entry_key == "Plan"; }
  bool enter() {
    ++m_depth;
    return true;
  }
  bool leave() {
    if (in_top_node()) return false;  // the top node ended without children
    --m_depth;
    return true;
  }
  bool number(long long value) {
    if (!in_top_node()) return true;
    for (const auto& field : k_counter_fields)
      if (m_field == field.explain_name) {
        counters.*field.member = value;
        ++found;
      }
    return true;
  }

  int m_depth = 0;
  std::string m_entry_key;  // the key at the level of "Plan"
  std::string m_field;      // the top node's field being read
};

}  // namespace

BlockCounters& BlockCounters::operator+=(const BlockCounters& other) {
  for (const auto& field : k_counter_fields) this->*field.member += other.*field.member;
  return *this;
}

std::optional<BlockCounters> top_node_counters(std::string_view explain_json) {
  TopNode top;
  PlanJson::sax_parse(explain_json.begin(), explain_json.end(), &top,
                      nlohmann::detail::input_format_t::json,
                      /*strict=*/false);
  if (top.found != int(std::size(k_counter_fields))) return std::nullopt;
  return top.counters;
}

}  // namespace pgxform
