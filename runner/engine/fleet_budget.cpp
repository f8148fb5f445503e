#include "engine/fleet_budget.h"

#include <algorithm>
#include <limits>

namespace pgxform {

FleetBudget::FleetBudget(int threads, std::optional<int> per_host)
    : m_threads(std::max(1, threads)), m_per_host(per_host) {}

void FleetBudget::add(BudgetSeat seat) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_waiting.push_back(std::move(seat));
}

int FleetBudget::host_room(const std::string& host) const {
  if (!m_per_host) return std::numeric_limits<int>::max();
  int used = 0;
  for (const auto& [name, s] : m_running)
    if (s.seat.host == host) used += s.held;
  return std::max(0, *m_per_host - used);
}

int FleetBudget::reserve_for_waiting() const {
  int reserve = 0;
  std::map<std::string, int> room;
  for (const auto& w : m_waiting) {
    auto [it, fresh] = room.try_emplace(w.host, 0);
    if (fresh) it->second = host_room(w.host);
    if (it->second > 0) {
      --it->second;
      ++reserve;
    }
  }
  return reserve;
}

std::optional<std::string> FleetBudget::admit_locked() {
  if (m_used >= m_threads) return std::nullopt;
  for (auto it = m_waiting.begin(); it != m_waiting.end(); ++it) {
    if (host_room(it->host) < 1) continue;
    const std::string name = it->target;
    m_running[name] = Seat{std::move(*it), 1};
    m_waiting.erase(it);
    ++m_used;
    return name;
  }
  return std::nullopt;
}

std::optional<std::string> FleetBudget::try_admit() {
  std::lock_guard<std::mutex> lock(m_mutex);
  return admit_locked();
}

int FleetBudget::draw(const std::string& target, int wanted) {
  std::unique_lock<std::mutex> lock(m_mutex);
  const auto it = m_running.find(target);
  if (it == m_running.end()) return 1;
  Seat& s = it->second;
  wanted = std::max(1, std::min(wanted, s.seat.max_threads.value_or(wanted)));
  if (wanted < s.held) {
    m_used -= s.held - wanted;
    s.held = wanted;
    lock.unlock();
    m_changed.notify_all();
    return wanted;
  }
  const int free_now = m_threads - m_used - reserve_for_waiting();
  const int more = std::max(0, std::min({wanted - s.held, free_now, host_room(s.seat.host)}));
  s.held += more;
  m_used += more;
  return s.held;
}

void FleetBudget::leave(const std::string& target) {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    const auto it = m_running.find(target);
    if (it == m_running.end()) return;
    m_used -= it->second.held;
    m_running.erase(it);
  }
  m_changed.notify_all();
}

int FleetBudget::held(const std::string& target) const {
  std::lock_guard<std::mutex> lock(m_mutex);
  const auto it = m_running.find(target);
  return it == m_running.end() ? 0 : it->second.held;
}

std::vector<std::pair<std::string, int>> FleetBudget::workers() const {
  std::vector<std::pair<std::string, int>> list;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    for (const auto& [name, seat] : m_running) list.emplace_back(name, seat.held);
  }
  std::stable_sort(list.begin(), list.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return list;
}

int FleetBudget::free() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_threads - m_used;
}

std::size_t FleetBudget::waiting() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_waiting.size();
}

}  // namespace pgxform
