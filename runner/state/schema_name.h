// schema_name: the name of the state schema (the jobs file's `state_schema:`, default pgxform),
// as written and quoted, and its tables' qualified names. Every statement of the state layer
// names its tables through it: written out whole as one raw string, each table as a
// placeholder (@job_state@, @job_slice@, ...), filled by fill().
#pragma once

#include <string>
#include <vector>

#include "base/sql_text.h"

namespace pgxform {

// The state schema of a jobs file: its name as written, and quoted for SQL text.
struct StateSchema {
  explicit StateSchema(std::string schema_name);
  std::string name;
  std::string sql;  // "pgxform"
  // "pgxform"."job_state"
  std::string table(const char* table_name) const { return sql + "." + table_name; }
  // `statement` with each placeholder of a state table (@job_state@, @job_slice@, @batch_log@,
  // @failed_batches@, @script_history@, @schema_version@, @control@, @change_log@) replaced by
  // the table's qualified name, @schema@ by the quoted schema, and the others by `parts`
  // (fill_sql: a placeholder without its part, or a part without its placeholder, throws).
  std::string fill(const std::string& statement, std::vector<SqlPart> parts = {}) const;
};

// A table of the state schema: its name, the version that brought it, and what a message says
// it holds.
struct StateTable {
  const char* name;
  int version;
  const char* holds;
};
// Every table of the state schema, by version: a state file that adds a table adds its row here
// (StateSchema::fill then knows its placeholder, and a missing one is named as such).
const std::vector<StateTable>& state_tables();

}  // namespace pgxform
