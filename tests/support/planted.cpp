#include "support/planted.h"

#include <catch2/catch.hpp>
#include <sstream>

#include "commands/explain_command.h"
#include "commands/profile_command.h"
#include "support/test_json.h"

namespace pgxform_test {

void create_planted(TestDatabase& db) {
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.items (id bigint PRIMARY KEY, v int NOT NULL);"
      "INSERT INTO legacy.items SELECT g * 3, g FROM generate_series(1, " +
      std::to_string(k_planted_rows) +
      ") g;"
      "CREATE TABLE target.items (id bigint NOT NULL, v int NOT NULL);"
      "CREATE TABLE target.copies (id bigint NOT NULL, v int NOT NULL);"
      "CREATE FUNCTION xf.quadratic(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS $$"
      "  WITH ins AS (INSERT INTO target.items SELECT l.id, l.v * 10 FROM legacy.items l"
      "   WHERE l.id BETWEEN first_key AND last_key"
      "   AND NOT EXISTS (SELECT 1 FROM target.items t WHERE t.id = l.id) RETURNING 1)"
      "  SELECT count(*) FROM ins $$;"
      "CREATE FUNCTION xf.linear(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS $$ SELECT pg_sleep(0.005);"
      "  WITH ins AS (INSERT INTO target.copies SELECT l.id, l.v * 10 FROM legacy.items l"
      "   WHERE l.id BETWEEN first_key AND last_key RETURNING 1)"
      "  SELECT count(*) FROM ins $$;"
      "ANALYZE legacy.items;");
}

std::string planted_yaml(const std::string& sizing) {
  const std::string batch =
      sizing.empty() ? "batch_size: " + std::to_string(k_planted_batch) + ", target_batch_ms: 0"
                     : sizing;
  return "version: 1\nlists:\n"
         "  - name: planted\n    jobs:\n"
         "      - {name: quadratic, table: legacy.items, key: id, function: xf.quadratic,"
         " " +
         batch +
         "}\n"
         "  - name: plain\n    jobs:\n"
         "      - {name: linear, table: legacy.items, key: id, function: xf.linear,"
         " " +
         batch + "}\n";
}

void run_planted(TestDatabase& db, const std::string& path) {
  const auto r = run_cli({"run", "-f", path, "--dsn", db.dsn(), "--threads", "1"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
}

std::string profile_json(TestDatabase& db, const std::string& path) {
  pgxform::ProfileOptions o;
  o.file = path;
  o.dsn = db.dsn();
  o.format = pgxform::ProfileFormat::json;
  std::ostringstream out;
  REQUIRE(pgxform::profile_command(o, out) == 0);
  return out.str();
}

std::string profile_field(const std::string& json, const std::string& job, const std::string& key) {
  return job_in(parse_json(json), job).at(key).dump();
}

std::string explain_text(TestDatabase& db, const std::string& path, const std::string& job,
                         std::optional<std::string> at) {
  pgxform::ExplainOptions o;
  o.file = path;
  o.dsn = db.dsn();
  o.job = job;
  o.at = std::move(at);
  std::ostringstream out;
  REQUIRE(pgxform::explain_command(o, out) == 0);
  return out.str();
}

std::string planted_snapshot(TestDatabase& db) {
  std::string s =
      db.scalar("SELECT count(*) || '/' || coalesce(sum(id * v), 0) FROM target.items") + " " +
      db.scalar("SELECT count(*) FROM target.copies") + " " +
      db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgxform'") + " " +
      db.scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = 'target'") + " " +
      db.scalar("SELECT count(*) FROM pg_extension");
  if (db.schema_exists("pgxform"))
    s += " " +
         db.scalar(
             "SELECT string_agg(job || status || rows_done || coalesce(last_key, '-'),"
             " ',' ORDER BY job) FROM pgxform.job_state") +
         " " + db.scalar("SELECT count(*) FROM pgxform.batch_log");
  return s;
}

}  // namespace pgxform_test
