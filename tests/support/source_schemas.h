// source_schemas: made-up legacy schemas (catalog/source_schema.h) for the pure tests of init's
// skeleton, its files and its summary: tables keyed by a bigint id, foreign keys between them.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "catalog/skeleton.h"
#include "catalog/source_schema.h"

namespace pgxform_test {

inline pgxform::SourceColumn column(const std::string& name, const std::string& type = "bigint",
                                    bool not_null = true) {
  const std::string base = type.substr(0, type.find('('));
  return {name, type, base, not_null};
}

inline pgxform::SourceIndex index(const std::string& name, std::vector<std::string> columns,
                                  bool primary = false, bool unique = false) {
  pgxform::SourceIndex i;
  i.name = name;
  i.columns = std::move(columns);
  i.primary = primary;
  i.unique = unique || primary;
  return i;
}

inline pgxform::SourceIndex primary_key(const std::string& table,
                                        std::vector<std::string> columns) {
  return index(table + "_pkey", std::move(columns), true);
}

inline pgxform::SourceForeignKey references(const std::string& name, const std::string& column,
                                            const std::string& table,
                                            const std::string& schema = "legacy") {
  return {name, {column}, schema, table, {"id"}};
}

// A table keyed by a bigint id primary key, with the foreign keys `to` (name -> table).
inline pgxform::SourceTable keyed(const std::string& name,
                                  const std::vector<std::string>& to = {}) {
  pgxform::SourceTable t;
  t.name = name;
  t.columns = {column("id")};
  t.indexes = {primary_key(name, {"id"})};
  for (const auto& target : to) {
    t.columns.push_back(column(target + "_id"));
    t.foreign_keys.push_back(references(name + "_" + target + "_fk", target + "_id", target));
  }
  t.estimated_rows = 1000;
  return t;
}

// The schema legacy holding `tables` (sorted by name, as the catalog reads them).
inline pgxform::SourceSchema schema_of(std::vector<pgxform::SourceTable> tables) {
  pgxform::SourceSchema s;
  s.name = "legacy";
  s.schemas = {"legacy", "public", "pg_catalog"};
  std::sort(tables.begin(), tables.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  s.tables = std::move(tables);
  return s;
}

// init's skeleton of `s` into its default target schema.
inline pgxform::Skeleton plan(const pgxform::SourceSchema& s) {
  return pgxform::plan_skeleton(s, pgxform::default_target_schema(s.name));
}

}  // namespace pgxform_test
