#include "engine/bound_finder.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "database/retry.h"

namespace pgxform {

namespace {

// A found key serves a batch of `size` keys when it was walked for that size, or for a size down
// to half of it (the sizer grows by steps of at most k_max_growth: batch_sizer.h); the end of
// the range serves every size that takes all its keys.
bool serves(const FoundBound& found, const std::optional<std::string>& after, long size) {
  return found.after == after && found.size <= size && (found.end || 2 * found.size >= size);
}

// The walk's session: named apart from the pool's workers, and read-only.
const char* const k_session_sql = R"(SELECT pg_catalog.set_config('application_name', $1, false),
  pg_catalog.set_config('default_transaction_read_only', 'on', false))";

}  // namespace

BoundFinder::BoundFinder(std::string dsn) : m_session(std::move(dsn)) {}

BoundFinder::~BoundFinder() {
  {
    const std::lock_guard<std::mutex> lock(m_mutex);
    m_stop = true;
  }
  m_changed.notify_all();
  if (m_thread.joinable()) m_thread.join();
}

void BoundFinder::request(BoundRequest request) {
  {
    const std::lock_guard<std::mutex> lock(m_mutex);
    if (m_disabled || m_stop) return;
    m_found.erase(request.task);
    auto same = std::find_if(m_queue.begin(), m_queue.end(),
                             [&](const BoundRequest& r) { return r.task == request.task; });
    if (same != m_queue.end())
      *same = std::move(request);
    else
      m_queue.push_back(std::move(request));
    if (!m_thread.joinable()) m_thread = std::thread([this] { loop(); });
  }
  m_changed.notify_all();
}

std::optional<FoundBound> BoundFinder::take(const std::string& task,
                                            const std::optional<std::string>& after, long size) {
  std::unique_lock<std::mutex> lock(m_mutex);
  // Its walk running now: waiting costs no more than walking again.
  m_changed.wait(lock, [&] { return !m_running || m_running->first != task; });
  m_queue.erase(std::remove_if(m_queue.begin(), m_queue.end(),
                               [&](const BoundRequest& r) { return r.task == task; }),
                m_queue.end());
  const auto found = m_found.find(task);
  if (found == m_found.end()) return std::nullopt;
  const FoundBound result = found->second;
  m_found.erase(found);
  if (!serves(result, after, size)) return std::nullopt;
  ++m_taken;
  return result;
}

long long BoundFinder::tries() const {
  const std::lock_guard<std::mutex> lock(m_mutex);
  return m_tries;
}

bool BoundFinder::gave_up() const {
  const std::lock_guard<std::mutex> lock(m_mutex);
  return m_disabled;
}

long long BoundFinder::walks() const {
  const std::lock_guard<std::mutex> lock(m_mutex);
  return m_walks;
}

long long BoundFinder::taken() const {
  const std::lock_guard<std::mutex> lock(m_mutex);
  return m_taken;
}

void BoundFinder::loop() {
  std::unique_lock<std::mutex> lock(m_mutex);
  while (true) {
    m_changed.wait(lock, [&] { return m_stop || !m_queue.empty(); });
    if (m_stop) break;
    const BoundRequest request = std::move(m_queue.front());
    m_queue.pop_front();
    m_running.emplace(request.task, FoundBound{request.after, "", request.size});
    lock.unlock();
    const std::optional<FoundBound> found = walk(request);
    lock.lock();
    if (found) m_found[request.task] = *found;
    ++m_tries;
    m_running.reset();
    m_changed.notify_all();
  }
  m_session.close();
}

std::optional<FoundBound> BoundFinder::walk(const BoundRequest& request) {
  try {
    const int generation = m_session.generation();
    pqxx::connection& conn = m_session.conn();
    if (m_session.generation() != generation)
      pqxx::nontransaction(conn).exec_params(k_session_sql,
                                             k_application_prefix + runner_identity() + " bounds");
    const std::string sql = bounds_query(*request.job, request.shape);
    const std::string name = "bounds_" + std::to_string(std::hash<std::string>{}(sql));
    m_session.prepare(name, [&] { return sql; });
    pqxx::nontransaction tx(conn);
    const pqxx::row r = tx.exec_prepared1(name, request.after, std::to_string(request.size),
                                          request.job->name, request.slice, request.hi_key);
    FoundBound found{request.after, "", request.size};
    if (!r[0].is_null()) found.last_key = r[1].as<std::string>();
    // Not full: the end of the range, up to its last key (r[1]); how many keys that is.
    if (!r[0].is_null() && !r[6].as<bool>()) {
      found.end = true;
      found.size =
          tx.exec_params1(range_rows_query(*request.job), r[0].c_str(), r[1].c_str())[0].as<long>();
    }
    const std::lock_guard<std::mutex> lock(m_mutex);
    ++m_walks;
    m_failures = 0;
    if (r[0].is_null() || found.size <= 0) return std::nullopt;  // no key left
    return found;
  } catch (const std::exception& e) {
    const Failure failure = classify(e);
    if (failure.kind == FailureKind::connection_lost || failure.kind == FailureKind::in_doubt)
      m_session.close();
    const std::lock_guard<std::mutex> lock(m_mutex);
    if (++m_failures >= k_max_failures) {
      m_disabled = true;
      m_queue.clear();
    }
    spdlog::debug("{}: the next batch's bound was not found beforehand: {}{}", request.task,
                  redact(e.what()), m_disabled ? " (no more tries this run)" : "");
    return std::nullopt;
  }
}

}  // namespace pgxform
