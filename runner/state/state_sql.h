// state_sql: the SQL files of state/, compiled into the binary (see cmake/embed_sql.cmake).
// Each is one version of the state schema; @schema@ stands for the schema's quoted name.
#pragma once

#include <string>
#include <vector>

namespace pgxform {

struct StateMigration {
  int version;
  const char* name;
  const char* sql;
};

const std::vector<StateMigration>& state_migrations();

}  // namespace pgxform
