#include "state/job_control.h"

namespace pgxform {

namespace {

int specificity(ControlScope scope) {
  switch (scope) {
    case ControlScope::job:
      return 2;
    case ControlScope::list:
      return 1;
    case ControlScope::all:
      break;
  }
  return 0;
}

ControlScope scope_of(const std::string& text) {
  if (text == "job") return ControlScope::job;
  if (text == "list") return ControlScope::list;
  return ControlScope::all;
}

template <typename T>
std::optional<T> optional_field(const pqxx::field& f) {
  return f.is_null() ? std::nullopt : std::optional<T>(f.as<T>());
}

std::vector<ControlRow> control_rows(const pqxx::result& r) {
  std::vector<ControlRow> rows;
  for (const auto& row : r) {
    ControlRow c;
    c.scope = scope_of(row[0].as<std::string>());
    c.name = row[1].as<std::string>();
    c.values.paused = optional_field<bool>(row[2]);
    c.values.batch_size = optional_field<long long>(row[3]);
    c.values.target_batch_ms = optional_field<long long>(row[4]);
    c.values.pause_ms = optional_field<long long>(row[5]);
    rows.push_back(std::move(c));
  }
  return rows;
}

const char* k_control_columns = "scope, name, paused, batch_size, target_batch_ms, pause_ms";

}  // namespace

std::string scope_name(ControlScope scope) {
  switch (scope) {
    case ControlScope::job:
      return "job";
    case ControlScope::list:
      return "list";
    case ControlScope::all:
      break;
  }
  return "all";
}

bool JobControl::operator==(const JobControl& o) const {
  return paused == o.paused && paused_by == o.paused_by && batch_size == o.batch_size &&
         target_batch_ms == o.target_batch_ms && pause_ms == o.pause_ms;
}

JobControl resolve_control(const std::vector<ControlRow>& rows, const std::string& job,
                           const std::string& list) {
  // For each setting, the most specific row that sets it.
  const ControlRow* paused = nullptr;
  const ControlRow* batch_size = nullptr;
  const ControlRow* target = nullptr;
  const ControlRow* pause = nullptr;
  const auto better = [](const ControlRow* now, const ControlRow& row) {
    return !now || specificity(row.scope) > specificity(now->scope);
  };
  for (const auto& row : rows) {
    const bool applies = row.scope == ControlScope::all ||
                         (row.scope == ControlScope::job && row.name == job) ||
                         (row.scope == ControlScope::list && row.name == list);
    if (!applies) continue;
    if (row.values.paused && better(paused, row)) paused = &row;
    if (row.values.batch_size && better(batch_size, row)) batch_size = &row;
    if (row.values.target_batch_ms && better(target, row)) target = &row;
    if (row.values.pause_ms && better(pause, row)) pause = &row;
  }
  JobControl c;
  if (paused && *paused->values.paused) {
    c.paused = true;
    c.paused_by =
        paused->scope == ControlScope::all ? "all" : scope_name(paused->scope) + " " + paused->name;
  }
  if (batch_size) c.batch_size = batch_size->values.batch_size;
  if (target) c.target_batch_ms = target->values.target_batch_ms;
  if (pause) c.pause_ms = *pause->values.pause_ms;
  return c;
}

std::vector<ControlRow> read_control_rows(pqxx::transaction_base& tx, const StateSchema& schema,
                                          const std::string& job, const std::string& list) {
  static const char* const k_sql = R"(
    SELECT @columns@ FROM @control@
    WHERE scope = 'all' OR (scope = 'job' AND name = $1) OR (scope = 'list' AND name = $2))";
  return control_rows(
      tx.exec_params(schema.fill(k_sql, {{"@columns@", k_control_columns}}), job, list));
}

std::vector<ControlRow> read_all_control(pqxx::transaction_base& tx, const StateSchema& schema) {
  return control_rows(
      tx.exec(schema.fill("SELECT @columns@ FROM @control@", {{"@columns@", k_control_columns}})));
}

void write_control(pqxx::transaction_base& tx, const StateSchema& schema, ControlScope scope,
                   const std::string& name, const ControlValues& v) {
  // COALESCE keeps what this change does not name; an explicit NULL is never written here.
  static const char* const k_sql = R"(
    INSERT INTO @control@ AS c (scope, name, paused, batch_size, target_batch_ms, pause_ms)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (scope, name) DO UPDATE
    SET paused = COALESCE(EXCLUDED.paused, c.paused),
        batch_size = COALESCE(EXCLUDED.batch_size, c.batch_size),
        target_batch_ms = COALESCE(EXCLUDED.target_batch_ms, c.target_batch_ms),
        pause_ms = COALESCE(EXCLUDED.pause_ms, c.pause_ms),
        updated_at = pg_catalog.now(), updated_by = CURRENT_USER)";
  tx.exec_params(schema.fill(k_sql), scope_name(scope), name, v.paused, v.batch_size,
                 v.target_batch_ms, v.pause_ms);
}

std::optional<int> read_threads(pqxx::transaction_base& tx, const StateSchema& schema) {
  const pqxx::result r = tx.exec(schema.fill(R"(
    SELECT threads FROM @control@ WHERE scope = 'all' AND name = '' AND threads IS NOT NULL)"));
  if (r.empty()) return std::nullopt;
  return r[0][0].as<int>();
}

void write_threads(pqxx::transaction_base& tx, const StateSchema& schema, int threads) {
  tx.exec_params(schema.fill(R"(
    INSERT INTO @control@ AS c (scope, name, threads) VALUES ('all', '', $1)
    ON CONFLICT (scope, name) DO UPDATE
    SET threads = EXCLUDED.threads, updated_at = pg_catalog.now(), updated_by = CURRENT_USER)"),
                 threads);
}

void set_paused_everywhere(pqxx::transaction_base& tx, const StateSchema& schema, bool paused) {
  tx.exec(schema.fill(R"(
    UPDATE @control@ SET paused = NULL, updated_at = pg_catalog.now(), updated_by = CURRENT_USER
    WHERE scope <> 'all' AND paused IS NOT NULL)"));
  ControlValues v;
  v.paused = paused;
  write_control(tx, schema, ControlScope::all, "", v);
}

}  // namespace pgxform
