// fleet_budget: the workers of a fleet run (fleet_run.h), shared by its targets' worker pools.
//
// A fleet run is each target's ordinary run (its own state schema, claims, resume), all in one
// process, drawing from one budget of workers (--threads N for the whole fleet) instead of
// each taking N. The budget does not run anything: each target's WorkerPool asks it once a
// second, through PoolSizing::draw (worker_pool.h), how many of the workers it could use now
// it may have. So there is one scheduler per target and one batch loop, the engine's.
//
// The rules, under one mutex:
//   - A target waits (in the order it was added: the file's, or largest first) until a worker
//     is free for it: admit() hands out the first waiting target whose host has room. Every
//     target in the fleet holds at least one worker from its admission to its leave(): a pool
//     never has fewer than one.
//   - A target never has more than its max_threads, nor its host more than the per-host cap.
//   - draw(): a pool that wants fewer workers than it holds gives them back at once (they go
//     to whoever waits); one that wants more gets what is free, less one for each waiting
//     target whose host has room: a target not started yet comes before a second worker for
//     one that runs, so that work spreads over the fleet and no worker idles while any target
//     has work.
// A target's workers are counted against its host as the fleet names it (targets.yaml's
// `host`, else the connection string's host and port).
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pgxform {

struct BudgetSeat {
  std::string target;
  std::string host;
  std::optional<int> max_threads;
};

class FleetBudget {
 public:
  FleetBudget(int threads, std::optional<int> per_host);

  // Queues a target (before admit()).
  void add(BudgetSeat seat);
  // The next waiting target that can have a worker now, which it holds from now on; none
  // when no target waits. Blocks while every waiting target's host (or the fleet) is full,
  // until a worker is given back or `stopping()` (called without the budget's lock, every
  // 100 ms) is true (then none).
  template <typename Stopping>
  std::optional<std::string> admit(Stopping stopping);
  // Without blocking: as admit(), none when no target can start now.
  std::optional<std::string> try_admit();
  // The workers `target` may have when it could use `wanted` (at least 1).
  int draw(const std::string& target, int wanted);
  // The target is done (or failed): its workers go back to the budget.
  void leave(const std::string& target);

  int held(const std::string& target) const;
  // The running targets and their workers, most workers first (the busiest), then by name.
  std::vector<std::pair<std::string, int>> workers() const;
  int free() const;
  std::size_t waiting() const;

 private:
  struct Seat {
    BudgetSeat seat;
    int held = 0;
  };
  int host_room(const std::string& host) const;  // under the lock
  int reserve_for_waiting() const;               // under the lock
  std::optional<std::string> admit_locked();

  const int m_threads;
  const std::optional<int> m_per_host;
  mutable std::mutex m_mutex;
  std::condition_variable m_changed;
  std::vector<BudgetSeat> m_waiting;
  std::map<std::string, Seat> m_running;
  int m_used = 0;
};

template <typename Stopping>
std::optional<std::string> FleetBudget::admit(Stopping stopping) {
  std::unique_lock<std::mutex> lock(m_mutex);
  while (!m_waiting.empty()) {
    if (auto name = admit_locked()) return name;
    // Without the lock: `stopping` may ask the budget (held(), workers()).
    lock.unlock();
    const bool stop = stopping();
    lock.lock();
    if (stop) return std::nullopt;
    m_changed.wait_for(lock, std::chrono::milliseconds(100));
  }
  return std::nullopt;
}

}  // namespace pgxform
