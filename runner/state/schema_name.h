// schema_name: the name of the state schema (the jobs file's `state_schema:`, default pgxform),
// as written and quoted, and its tables' qualified names. Every statement of the state layer
// names its tables through it.
#pragma once

#include <string>

namespace pgxform {

// The state schema of a jobs file: its name as written, and quoted for SQL text.
struct StateSchema {
  explicit StateSchema(std::string schema_name);
  std::string name;
  std::string sql;  // "pgxform"
  // "pgxform"."job_state"
  std::string table(const char* table_name) const { return sql + "." + table_name; }
};

}  // namespace pgxform
