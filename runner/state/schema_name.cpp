#include "state/schema_name.h"

namespace pgxform {

namespace {

// Every table of the state schema (state/*.sql, and schema_version, which state_schema.cpp
// creates): a new one is added here.
const char* const k_state_tables[] = {"job_state",      "job_slice",      "batch_log",
                                      "failed_batches", "script_history", "schema_version",
                                      "control",        "change_log"};

}  // namespace

StateSchema::StateSchema(std::string schema_name)
    : name(std::move(schema_name)), sql(quote_ident(name)) {}

std::string StateSchema::fill(const std::string& statement, std::vector<SqlPart> parts) const {
  for (const char* table : k_state_tables) {
    const std::string placeholder = std::string("@") + table + "@";
    if (statement.find(placeholder) != std::string::npos)
      parts.push_back({placeholder, this->table(table)});
  }
  if (statement.find("@schema@") != std::string::npos) parts.push_back({"@schema@", sql});
  return fill_sql(statement, parts);
}

}  // namespace pgxform
