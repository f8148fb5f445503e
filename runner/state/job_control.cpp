#include "state/job_control.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <set>

#include "base/setting_limits.h"
#include "base/sql_text.h"

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
         target_batch_ms == o.target_batch_ms && pause_ms == o.pause_ms && ignored == o.ignored;
}

namespace {

// "job items", "list shop", "all": the row a value came from.
std::string row_text(const ControlRow& row) {
  return row.scope == ControlScope::all ? "all" : scope_name(row.scope) + " " + row.name;
}

// The value of `setting` from the first of `rows` (most specific first) that sets it within
// `limit`; the values out of it on the way are listed in `ignored`.
std::optional<long long> first_valid(const std::vector<const ControlRow*>& rows,
                                     std::optional<long long> ControlValues::*setting,
                                     const SettingLimit& limit, std::vector<std::string>& ignored) {
  for (const ControlRow* row : rows) {
    const std::optional<long long>& value = row->values.*setting;
    if (!value) continue;
    if (const auto problem = out_of_range(limit, *value)) {
      ignored.push_back(*problem + " (" + row_text(*row) + ")");
      continue;
    }
    return value;
  }
  return std::nullopt;
}

// Says once per process that a value of the control table is out of its limit: every task of a
// run reads the rows once a second, and the operator needs to hear of it once.
void warn_ignored_once(const std::string& problem, const std::string& consequence) {
  static std::mutex mutex;
  static std::set<std::string> said;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!said.insert(problem).second) return;
  }
  spdlog::warn("control: ignored {}: out of its limit, as if not set{}", problem, consequence);
}

void warn_out_of_range(const std::vector<ControlRow>& rows) {
  const auto check = [](const ControlRow& row, const std::optional<long long>& value,
                        const SettingLimit& limit) {
    if (!value) return;
    if (const auto problem = out_of_range(limit, *value))
      warn_ignored_once(*problem + " (" + row_text(row) + ")", "");
  };
  for (const auto& row : rows) {
    check(row, row.values.batch_size, k_batch_size);
    check(row, row.values.target_batch_ms, k_target_batch_ms);
    check(row, row.values.pause_ms, k_pause_ms);
  }
}

}  // namespace

JobControl resolve_control(const std::vector<ControlRow>& rows, const std::string& job,
                           const std::string& list) {
  // The rows that apply, the most specific first: for each setting, the first that sets it.
  std::vector<const ControlRow*> applying;
  for (const auto& row : rows)
    if (row.scope == ControlScope::all || (row.scope == ControlScope::job && row.name == job) ||
        (row.scope == ControlScope::list && row.name == list))
      applying.push_back(&row);
  std::stable_sort(applying.begin(), applying.end(), [](const ControlRow* a, const ControlRow* b) {
    return specificity(a->scope) > specificity(b->scope);
  });
  JobControl c;
  for (const ControlRow* row : applying)
    if (row->values.paused) {
      c.paused = *row->values.paused;
      if (c.paused) c.paused_by = row_text(*row);
      break;
    }
  c.batch_size = first_valid(applying, &ControlValues::batch_size, k_batch_size, c.ignored);
  c.target_batch_ms =
      first_valid(applying, &ControlValues::target_batch_ms, k_target_batch_ms, c.ignored);
  c.pause_ms = first_valid(applying, &ControlValues::pause_ms, k_pause_ms, c.ignored).value_or(0);
  return c;
}

std::vector<ControlRow> read_control_rows(pqxx::transaction_base& tx, const StateSchema& schema,
                                          const std::string& job, const std::string& list) {
  static const char* const k_sql = R"(
    SELECT @columns@ FROM @control@
    WHERE scope = 'all' OR (scope = 'job' AND name = $1) OR (scope = 'list' AND name = $2))";
  std::vector<ControlRow> rows = control_rows(
      tx.exec_params(schema.fill(k_sql, {{"@columns@", k_control_columns}}), job, list));
  warn_out_of_range(rows);
  return rows;
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

namespace {

// The `all` row's threads as stored (an integer column; NULL: not set); none before version 8
// or without the row.
std::optional<long long> stored_threads(pqxx::transaction_base& tx, const StateSchema& schema) {
  const pqxx::result r = tx.exec(schema.fill(R"(
    SELECT threads FROM @control@ WHERE scope = 'all' AND name = '' AND threads IS NOT NULL)"));
  if (r.empty()) return std::nullopt;
  return r[0][0].as<long long>();
}

}  // namespace

std::optional<int> read_threads(pqxx::transaction_base& tx, const StateSchema& schema) {
  const std::optional<long long> threads = stored_threads(tx, schema);
  if (!threads) return std::nullopt;
  if (const auto problem = out_of_range(k_threads, *threads)) {
    warn_ignored_once(*problem + " (all)", "; the runners keep the threads they were started with");
    return std::nullopt;
  }
  return int(*threads);
}

std::optional<std::string> ignored_threads(pqxx::transaction_base& tx, const StateSchema& schema) {
  if (!has_feature(state_version(tx, schema), StateFeature::control_threads)) return std::nullopt;
  const std::optional<long long> threads = stored_threads(tx, schema);
  if (!threads) return std::nullopt;
  if (const auto problem = out_of_range(k_threads, *threads)) return *problem + " (all)";
  return std::nullopt;
}

void write_threads(pqxx::transaction_base& tx, const StateSchema& schema, int threads) {
  tx.exec_params(schema.fill(R"(
    INSERT INTO @control@ AS c (scope, name, threads) VALUES ('all', '', $1)
    ON CONFLICT (scope, name) DO UPDATE
    SET threads = EXCLUDED.threads, updated_at = pg_catalog.now(), updated_by = CURRENT_USER)"),
                 threads);
}

void clear_control(pqxx::transaction_base& tx, const StateSchema& schema, ControlScope scope,
                   const std::string& name, const ControlClear& clear) {
  static const char* const k_sql = R"(
    UPDATE @control@
    SET batch_size = CASE WHEN $3 THEN NULL ELSE batch_size END,
        target_batch_ms = CASE WHEN $4 THEN NULL ELSE target_batch_ms END,
        pause_ms = CASE WHEN $5 THEN NULL ELSE pause_ms END,
        updated_at = pg_catalog.now(), updated_by = CURRENT_USER
    WHERE scope = $1 AND name = $2)";
  tx.exec_params(schema.fill(k_sql), scope_name(scope), name, clear.batch_size,
                 clear.target_batch_ms, clear.pause_ms);
}

void clear_threads(pqxx::transaction_base& tx, const StateSchema& schema) {
  tx.exec(schema.fill(R"(
    UPDATE @control@ SET threads = NULL, updated_at = pg_catalog.now(), updated_by = CURRENT_USER
    WHERE scope = 'all' AND name = '' AND threads IS NOT NULL)"));
}

std::vector<std::string> override_texts(const std::vector<ControlRow>& rows,
                                        std::optional<long long> threads) {
  std::vector<std::string> out;
  for (const auto& row : rows) {
    std::string settings;
    const auto add = [&](const char* key, const std::optional<long long>& value) {
      if (value) settings += std::string(" ") + key + "=" + std::to_string(*value);
    };
    add("batch_size", row.values.batch_size);
    add("target_batch_ms", row.values.target_batch_ms);
    add("pause_ms", row.values.pause_ms);
    if (!settings.empty()) out.push_back(row_text(row) + settings);
  }
  if (threads) out.push_back("all threads=" + std::to_string(*threads));
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> read_overrides(pqxx::transaction_base& tx, const StateSchema& schema) {
  const int version = state_version(tx, schema);
  if (!has_feature(version, StateFeature::control)) return {};
  std::optional<long long> threads;
  if (has_feature(version, StateFeature::control_threads)) threads = stored_threads(tx, schema);
  return override_texts(read_all_control(tx, schema), threads);
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
