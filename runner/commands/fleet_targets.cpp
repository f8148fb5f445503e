#include "commands/fleet_targets.h"

#include <libpq-fe.h>

#include <cctype>
#include <cstdlib>
#include <string_view>

#include "database/database.h"

namespace pgxform {

namespace {

std::optional<std::string> column(const pqxx::row& row, const char* name) {
  for (pqxx::row::size_type i = 0; i < row.size(); ++i)
    if (std::string_view(row[i].name()) == name)
      return row[i].is_null() ? std::nullopt : std::optional<std::string>(row[i].c_str());
  return std::nullopt;
}

std::vector<TargetRow> query_rows(const TargetsFile& file) {
  const TargetsQuery& query = *file.query;
  try {
    const auto conn = connect(query.dsn, Access::read_only);
    pqxx::read_transaction tx(*conn);
    const pqxx::result rows = tx.exec(query.sql);
    for (const char* required : {"name", "dsn"}) {
      bool found = false;
      for (pqxx::row::size_type i = 0; i < rows.columns(); ++i)
        found = found || std::string_view(rows.column_name(i)) == required;
      if (!found)
        throw TargetsFileError(file.path, query.line,
                               std::string("targets_query: its result has no column '") + required +
                                   "' (it needs name and dsn; max_threads and host "
                                   "may follow)");
    }
    std::vector<TargetRow> read;
    for (const auto& row : rows)
      read.push_back({column(row, "name"), column(row, "dsn"), column(row, "max_threads"),
                      column(row, "host")});
    return read;
  } catch (const ConnectError& e) {
    throw TargetsFileError(file.path, query.line,
                           "targets_query: cannot connect: " + redact(e.problems().front()));
  } catch (const pqxx::sql_error& e) {
    // The server refused the query (a syntax error, a missing table, a privilege): the file's.
    throw TargetsFileError(file.path, query.line, "targets_query failed: " + redact(e.what()));
  }
}

std::string environment(const char* name, const char* otherwise) {
  const char* value = std::getenv(name);
  return value && *value ? value : otherwise;
}

}  // namespace

TargetsFile read_targets(const std::string& path) {
  TargetsFile file = parse_targets_file(path);
  if (file.query) add_queried_targets(file, query_rows(file));
  return file;
}

std::string target_host(const FleetTarget& target) {
  if (!target.host.empty()) return target.host;
  std::string host = environment("PGHOST", "localhost");
  std::string port = environment("PGPORT", "5432");
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(target.dsn.c_str(), &error);
  if (error) PQfreemem(error);
  if (options) {
    for (const PQconninfoOption* o = options; o->keyword; ++o) {
      if (!o->val || !*o->val) continue;
      if (std::string_view(o->keyword) == "host" || std::string_view(o->keyword) == "hostaddr")
        host = o->val;
      if (std::string_view(o->keyword) == "port") port = o->val;
    }
    PQconninfoFree(options);
  }
  return host + ":" + port;
}

std::string target_problem(std::string text) {
  text = redact(std::move(text));
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

std::vector<FleetTarget> chosen_targets(const TargetsFile& file, const std::string& name) {
  if (name.empty()) return file.targets;
  return {find_target(file, name)};
}

}  // namespace pgxform
