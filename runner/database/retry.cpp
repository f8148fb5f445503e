#include "database/retry.h"

#include <algorithm>
#include <pqxx/pqxx>
#include <random>

#include "base/redaction.h"

namespace pgxform {

namespace {

// libpqxx 6.4 raises some errors as a subclass of sql_error whose sqlstate() is empty (seen:
// insufficient_privilege). The class still says which SQLSTATE class it stands for.
std::string sqlstate_of_type(const pqxx::sql_error& e) {
  if (dynamic_cast<const pqxx::insufficient_privilege*>(&e)) return "42501";
  if (dynamic_cast<const pqxx::undefined_table*>(&e)) return "42P01";
  if (dynamic_cast<const pqxx::undefined_function*>(&e)) return "42883";
  if (dynamic_cast<const pqxx::undefined_column*>(&e)) return "42703";
  if (dynamic_cast<const pqxx::syntax_error*>(&e)) return "42601";
  if (dynamic_cast<const pqxx::unique_violation*>(&e)) return "23505";
  if (dynamic_cast<const pqxx::foreign_key_violation*>(&e)) return "23503";
  if (dynamic_cast<const pqxx::not_null_violation*>(&e)) return "23502";
  if (dynamic_cast<const pqxx::check_violation*>(&e)) return "23514";
  if (dynamic_cast<const pqxx::integrity_constraint_violation*>(&e)) return "23000";
  if (dynamic_cast<const pqxx::out_of_memory*>(&e)) return "53200";
  if (dynamic_cast<const pqxx::disk_full*>(&e)) return "53100";
  if (dynamic_cast<const pqxx::insufficient_resources*>(&e)) return "53000";
  if (dynamic_cast<const pqxx::feature_not_supported*>(&e)) return "0A000";
  if (dynamic_cast<const pqxx::data_exception*>(&e)) return "22000";
  return "";
}

}  // namespace

FailureKind classify_sqlstate(const std::string& sqlstate) {
  if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03" || sqlstate == "53300" ||
      sqlstate == "57P03")
    return FailureKind::transient;
  if (sqlstate.rfind("08", 0) == 0 || sqlstate == "57P01" || sqlstate == "57P02")
    return FailureKind::connection_lost;
  if (sqlstate == "57014") return FailureKind::cancelled;
  return FailureKind::permanent;
}

bool is_setup_error(const std::string& sqlstate) {
  return sqlstate.rfind("42", 0) == 0 || sqlstate.rfind("28", 0) == 0 || sqlstate == "3D000" ||
         sqlstate == "3F000";
}

std::string without_own_context(const std::string& message) {
  std::string out;
  std::size_t start = 0;
  while (start < message.size()) {
    std::size_t end = message.find('\n', start);
    if (end == std::string::npos) end = message.size();
    const std::string line = message.substr(start, end - start);
    if (line.find("pgxform_batch_") == std::string::npos) {
      if (!out.empty()) out += '\n';
      out += line;
    }
    start = end + 1;
  }
  return out;
}

Failure classify(const std::exception& error) {
  Failure f;
  f.message = without_own_context(redact(error.what()));
  while (!f.message.empty() && (f.message.back() == '\n' || f.message.back() == ' '))
    f.message.pop_back();
  // libpqxx 6.4 maps some SQLSTATEs to classes that do not derive from sql_error and carry no
  // sqlstate(): the 40xxx family (transaction_rollback) and 53300 (a broken_connection).
  // Order matters: the most specific type first.
  if (dynamic_cast<const pqxx::in_doubt_error*>(&error) ||
      dynamic_cast<const pqxx::statement_completion_unknown*>(&error)) {
    f.kind = FailureKind::in_doubt;
  } else if (dynamic_cast<const pqxx::serialization_failure*>(&error)) {
    f.sqlstate = "40001";
    f.kind = FailureKind::transient;
  } else if (dynamic_cast<const pqxx::deadlock_detected*>(&error)) {
    f.sqlstate = "40P01";
    f.kind = FailureKind::transient;
  } else if (dynamic_cast<const pqxx::transaction_rollback*>(&error)) {
    // Another 40xxx, e.g. a deferred constraint failing at COMMIT: trying again won't help.
    f.sqlstate = "40000";
    f.kind = FailureKind::permanent;
  } else if (dynamic_cast<const pqxx::too_many_connections*>(&error)) {
    f.sqlstate = "53300";
    f.kind = FailureKind::transient;
  } else if (dynamic_cast<const pqxx::broken_connection*>(&error)) {
    f.kind = FailureKind::connection_lost;
  } else if (auto sql = dynamic_cast<const pqxx::sql_error*>(&error)) {
    f.sqlstate = sql->sqlstate().empty() ? sqlstate_of_type(*sql) : sql->sqlstate();
    f.kind = classify_sqlstate(f.sqlstate);
  }
  return f;
}

std::chrono::milliseconds backoff_delay(int attempt, std::chrono::milliseconds base) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const long long cap = 30000;
  const int shift = std::clamp(attempt, 0, 20);
  long long ceiling = std::min<long long>(cap, base.count() << shift);
  std::uniform_int_distribution<long long> dist(ceiling / 2, std::max(ceiling, 1LL));
  return std::chrono::milliseconds(dist(rng));
}

std::chrono::milliseconds reconnect_delay(int attempt) {
  // Doubling from 200 ms, but never past 3.2 s: a server that is back should not wait for us.
  return backoff_delay(std::min(attempt, 4), std::chrono::milliseconds(200));
}

}  // namespace pgxform
