#include "state/script_history.h"

#include <optional>

#include "database/database.h"

namespace pgxform {

std::vector<AppliedScript> read_script_history(pqxx::transaction_base& tx,
                                               const StateSchema& schema) {
  std::vector<AppliedScript> out;
  if (tx.exec_params1("SELECT pg_catalog.to_regclass($1) IS NULL",
                      schema.table("script_history"))[0]
          .as<bool>())
    return out;
  static const char* const k_sql = R"(
    SELECT script, type, coalesce(version, ''), description, checksum, applied_at::text,
           duration_ms
    FROM @script_history@)";
  for (const auto& r : tx.exec(schema.fill(k_sql))) {
    AppliedScript h;
    h.script = r[0].as<std::string>();
    h.type = r[1].as<std::string>().front();
    h.version = r[2].as<std::string>();
    h.description = r[3].as<std::string>();
    h.checksum = r[4].as<std::string>();
    h.applied_at = r[5].as<std::string>();
    h.duration_ms = r[6].as<double>();
    out.push_back(h);
  }
  return out;
}

void record_script(pqxx::transaction_base& tx, const StateSchema& schema,
                   const AppliedScript& script) {
  std::optional<std::string> version;
  if (script.type == 'V') version = script.version;
  // An R script applied again replaces its row; a V script's row is written once (@again@
  // empty: applying it twice fails on the key).
  static const char* const k_sql = R"(
    INSERT INTO @script_history@ (script, type, version, description, checksum, runner,
                                  duration_ms)
    VALUES ($1, $2, $3, $4, $5, $6, $7) @again@)";
  static const char* const k_again = R"(
    ON CONFLICT (script) DO UPDATE
    SET description = EXCLUDED.description, checksum = EXCLUDED.checksum,
        applied_at = EXCLUDED.applied_at, applied_by = EXCLUDED.applied_by,
        runner = EXCLUDED.runner, duration_ms = EXCLUDED.duration_ms)";
  tx.exec_params(schema.fill(k_sql, {{"@again@", script.type == 'R' ? k_again : ""}}),
                 script.script, std::string(1, script.type), version, script.description,
                 script.checksum, runner_identity(), script.duration_ms);
}

void update_script_checksum(pqxx::transaction_base& tx, const StateSchema& schema,
                            const std::string& script, const std::string& checksum) {
  tx.exec_params(schema.fill("UPDATE @script_history@ SET checksum = $2 WHERE script = $1"), script,
                 checksum);
}

}  // namespace pgxform
