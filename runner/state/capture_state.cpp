#include "state/capture_state.h"

#include <algorithm>

#include "base/sql_text.h"
#include "state/state_schema.h"

namespace pgxform {

namespace {

bool has_tables(pqxx::transaction_base& tx, const StateSchema& schema) {
  return has_feature(state_version(tx, schema), StateFeature::logical);
}

}  // namespace

std::optional<SlotRow> read_slot_row(pqxx::transaction_base& tx, const StateSchema& schema) {
  if (!has_tables(tx, schema)) return std::nullopt;
  static const std::string k_read = R"(
    SELECT slot, publication, consumed_lsn::text,
           extract(epoch FROM pg_catalog.now() - read_at)::float8,
           extract(epoch FROM pg_catalog.now() - created_at)::float8
    FROM @capture_slot@ LIMIT 1)";
  const pqxx::result r =
      tx.exec(fill_sql(k_read, {{"@capture_slot@", schema.table("capture_slot")}}));
  if (r.empty()) return std::nullopt;
  SlotRow row;
  row.slot = r[0][0].as<std::string>();
  row.publication = r[0][1].as<std::string>();
  row.consumed_lsn = r[0][2].as<std::string>();
  if (!r[0][3].is_null()) row.read_age_s = std::max(0.0, r[0][3].as<double>());
  row.age_s = std::max(0.0, r[0][4].as<double>());
  return row;
}

void write_slot_row(pqxx::transaction_base& tx, const StateSchema& schema, const std::string& slot,
                    const std::string& publication, const std::string& lsn) {
  static const std::string k_write = R"(
    WITH gone AS (DELETE FROM @capture_slot@ WHERE slot <> $1)
    INSERT INTO @capture_slot@ (slot, publication, consumed_lsn) VALUES ($1, $2, $3::pg_lsn)
    ON CONFLICT (slot) DO UPDATE SET publication = EXCLUDED.publication,
      consumed_lsn = EXCLUDED.consumed_lsn, read_at = NULL, created_at = pg_catalog.now())";
  tx.exec_params(fill_sql(k_write, {{"@capture_slot@", schema.table("capture_slot")}}), slot,
                 publication, lsn);
}

void record_consumed(pqxx::transaction_base& tx, const StateSchema& schema, const std::string& slot,
                     const std::string& lsn) {
  static const std::string k_consumed = R"(
    UPDATE @capture_slot@ SET consumed_lsn = GREATEST(consumed_lsn, $2::pg_lsn),
      read_at = pg_catalog.now()
    WHERE slot = $1)";
  tx.exec_params(fill_sql(k_consumed, {{"@capture_slot@", schema.table("capture_slot")}}), slot,
                 lsn);
}

void delete_slot_row(pqxx::transaction_base& tx, const StateSchema& schema) {
  if (!has_tables(tx, schema)) return;
  tx.exec(schema.fill("DELETE FROM @capture_slot@"));
}

std::vector<CapturedColumn> captured_columns(pqxx::transaction_base& tx,
                                             const StateSchema& schema) {
  std::vector<CapturedColumn> out;
  if (!has_tables(tx, schema)) return out;
  static const std::string k_columns = R"(
    SELECT job, via, table_oid::bigint, table_name, column_name, column_type, column_category
    FROM @capture_table@ ORDER BY job, via)";
  for (const auto& r :
       tx.exec(fill_sql(k_columns, {{"@capture_table@", schema.table("capture_table")}}))) {
    CapturedColumn c;
    c.job = r[0].as<std::string>();
    c.via = r[1].as<int>();
    c.table_oid = static_cast<unsigned>(r[2].as<long long>());
    c.table_name = r[3].as<std::string>();
    c.column = r[4].as<std::string>();
    c.type = r[5].as<std::string>();
    const std::string category = r[6].as<std::string>();
    c.category = category.empty() ? 'X' : category[0];
    out.push_back(c);
  }
  return out;
}

void set_captured_columns(pqxx::transaction_base& tx, const StateSchema& schema,
                          const std::string& job, const std::vector<CapturedColumn>& columns) {
  delete_captured_columns(tx, schema, job);
  static const std::string k_insert = R"(
    INSERT INTO @capture_table@
      (job, via, table_oid, table_name, column_name, column_type, column_category)
    VALUES ($1, $2, $3::bigint::oid, $4, $5, $6, $7))";
  const std::string sql = fill_sql(k_insert, {{"@capture_table@", schema.table("capture_table")}});
  for (const CapturedColumn& c : columns)
    tx.exec_params(sql, job, c.via, static_cast<long long>(c.table_oid), c.table_name, c.column,
                   c.type, std::string(1, c.category));
}

void delete_captured_columns(pqxx::transaction_base& tx, const StateSchema& schema,
                             const std::string& job) {
  if (!has_tables(tx, schema)) return;
  tx.exec_params(schema.fill("DELETE FROM @capture_table@ WHERE job = $1"), job);
}

void record_capture_lost(pqxx::transaction_base& tx, const StateSchema& schema,
                         const std::string& job, const std::string& reason) {
  static const std::string k_lost = R"(
    UPDATE @job_state@ SET capture_lost = coalesce(capture_lost, $2) WHERE job = $1)";
  tx.exec_params(fill_sql(k_lost, {{"@job_state@", schema.table("job_state")}}), job, reason);
}

std::map<std::string, std::string> captures_lost(pqxx::transaction_base& tx,
                                                 const StateSchema& schema) {
  std::map<std::string, std::string> out;
  if (!has_tables(tx, schema)) return out;
  for (const auto& r : tx.exec(
           schema.fill("SELECT job, capture_lost FROM @job_state@ WHERE capture_lost IS NOT NULL")))
    out[r[0].as<std::string>()] = r[1].as<std::string>();
  return out;
}

void clear_capture_lost(pqxx::transaction_base& tx, const StateSchema& schema,
                        const std::string& job) {
  if (!has_tables(tx, schema)) return;
  tx.exec_params(schema.fill("UPDATE @job_state@ SET capture_lost = NULL WHERE job = $1"), job);
}

}  // namespace pgxform
