#include "state/schema_name.h"

namespace pgxform {

const std::vector<StateTable>& state_tables() {
  static const std::vector<StateTable> k_tables = {
      {"schema_version", 1, "the state schema's version"},
      {"job_state", 1, "every job's status and cursor"},
      {"job_slice", 1, "the cursors of the slices of parallel: jobs"},
      {"batch_log", 1, "one row per committed batch"},
      {"failed_batches", 2, "the key ranges that on_error: skip set aside"},
      {"script_history", 3, "the scripts applied (without it migrate would apply them again)"},
      {"control", 7, "the pauses and live settings of pause, resume and set"},
      {"change_log", 9, "the changes captured for catch-up"},
      {"runner_pool", 10, "the workers of the runners at work"},
      {"capture_slot", 12, "the replication slot of changes: logical and how far it was read"},
      {"capture_table", 12, "what the slot's reader records for each job"},
  };
  return k_tables;
}

StateSchema::StateSchema(std::string schema_name)
    : name(std::move(schema_name)), sql(quote_ident(name)) {}

std::string StateSchema::fill(const std::string& statement, std::vector<SqlPart> parts) const {
  for (const StateTable& t : state_tables()) {
    const std::string placeholder = std::string("@") + t.name + "@";
    if (statement.find(placeholder) != std::string::npos)
      parts.push_back({placeholder, table(t.name)});
  }
  if (statement.find("@schema@") != std::string::npos) parts.push_back({"@schema@", sql});
  return fill_sql(statement, parts);
}

}  // namespace pgxform
