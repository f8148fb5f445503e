// The property of the one engine (task_runner.h) that run and catch-up share: every captured
// change is applied once, by the main pass or by a refresh, in any order of run, catch-up,
// catch-up --follow, capture, reset, SIGKILL and restart (docs/catch-up.md).
//
// A seeded sequence drives a real PostgreSQL: the Shop (fixtures.h: orders, and lines that read
// their order's status through changes.also, in two lists side by side) under a writer that
// changes the source all along (statuses, quantities, lines moved between orders, new keys
// above every cursor, keys put back into gaps below them, deletions, a line's key changed),
// while steps chosen by the seed start `run`, `catch-up` and `catch-up --follow` as real child
// processes, alone or together, and end them by SIGKILL, SIGINT or their own end at random
// moments, reset a job (its target emptied first, as docs/state-tables.md asks), or install the
// capture again. After the sequence the writer stops, a run and a catch-up drain everything, and
// then the targets must equal a from-scratch transform of the final source row by row (EXCEPT
// ALL both ways), with no key refreshed more often than its changes were recorded.
//
// CI runs PGXFORM_PROPERTY_SEEDS sequences (default 3) from Catch's --rng-seed (or
// PGXFORM_PROPERTY_SEED); scripts/property_test runs hundreds, one process per seed.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

long long env_or(const char* name, long long fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::atoll(value) : fallback;
}

// The source changing all along, at a pace of its own, until stop().
class Writer {
 public:
  Writer(Shop& shop, unsigned seed) : m_shop(shop) {
    m_thread = std::thread([this, seed] {
      pqxx::connection conn(m_shop.db.dsn());
      std::mt19937 rng(seed);
      std::uniform_int_distribution<int> pause(0, 15);
      while (m_writing) {
        m_shop.change(conn, rng);
        std::this_thread::sleep_for(std::chrono::milliseconds(pause(rng)));
      }
    });
  }
  ~Writer() { stop(); }
  void stop() {
    m_writing = false;
    if (m_thread.joinable()) m_thread.join();
  }

 private:
  Shop& m_shop;
  std::atomic<bool> m_writing{true};
  std::thread m_thread;
};

// One step of a sequence: pgxform commands as children, each ended at a random moment.
class Sequence {
 public:
  Sequence(Shop& shop, unsigned seed) : m_shop(shop), m_rng(seed) {}

  void step() {
    switch (pick(0, 6)) {
      case 0:
        children({{"run"}});
        break;
      case 1:
        children({{"catch-up"}});
        break;
      case 2:
        children({{"run"}, {"catch-up", "--follow"}});
        break;
      case 3:
        children({{"run", "--threads", "1"}, {"catch-up"}});
        break;
      case 4:
        reset(pick(0, 1) == 0 ? "orders" : "lines");
        break;
      case 5:
        reset_orders_to();
        break;
      default:
        REQUIRE(m_shop.pgxform({"capture"}).exit_code == 0);
    }
  }

 private:
  int pick(int low, int high) { return std::uniform_int_distribution<int>(low, high)(m_rng); }

  // Starts the commands together; after a random while each is killed (SIGKILL), stopped
  // (SIGINT), or waited for.
  void children(const std::vector<std::vector<std::string>>& commands) {
    std::vector<std::unique_ptr<Child>> running;
    for (const auto& args : commands) {
      running.push_back(std::make_unique<Child>(m_shop.command(args), m_shop.dir.path()));
      log += args.front() + (args.size() > 1 ? " " + args[1] : "") + ", ";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(pick(0, 2500)));
    for (std::size_t i = 0; i < running.size(); ++i) {
      Child* child = running[i].get();
      const bool follows = commands[i].size() > 1 && commands[i][1] == "--follow";
      // A catch-up --follow ends only on a signal.
      const int how = follows ? pick(0, 1) : pick(0, 2);
      if (how == 0) child->kill(SIGKILL);
      if (how == 1) child->kill(SIGINT);
      int code = 0;
      if (!child->wait_for(60000, code)) {
        child->kill(SIGKILL);
        code = child->wait();
      }
      log += std::to_string(code) + (how == 0 ? " killed; " : how == 1 ? " stopped; " : "; ");
      INFO("exit " << code << ": " << child->err());
      // A SIGINT before the command installed its handler ends it as the signal's default.
      CHECK((code == 0 || code == 3 || code == 128 + SIGKILL || code == 128 + SIGINT));
    }
  }

  // reset JOB, its target emptied first. A killed runner's claim may outlive it a moment.
  void reset(const std::string& job) {
    m_shop.db.exec(std::string("DELETE FROM target.") + (job == "orders" ? "orders" : "lines"));
    wait_until([&] { return m_shop.pgxform({"reset", job}).exit_code == 0; });
    log += "reset " + job + "; ";
  }

  // reset orders --to a key below its cursor, the target's rows after it deleted first.
  void reset_orders_to() {
    const std::string cursor =
        m_shop.db.scalar("SELECT last_key FROM pgxform.job_state WHERE job = 'orders'");
    if (cursor.empty()) return;
    const std::string key = std::to_string(std::stoll(cursor) * pick(0, 100) / 100);
    m_shop.db.exec("DELETE FROM target.orders WHERE id > " + key);
    wait_until([&] { return m_shop.pgxform({"reset", "orders", "--to", key}).exit_code == 0; });
    log += "reset orders --to " + key + "; ";
  }

  Shop& m_shop;
  std::mt19937 m_rng;

 public:
  std::string log;  // what the sequence did, for a failure's message
};

// One seeded sequence and the checks after its full drain.
void sequence(unsigned seed) {
  INFO("seed " << seed);
  Shop shop(150, 4, 30, 15);
  // The lines in two slices: a key is at or below its slice's cursor.
  shop.path = shop.dir.write("jobs.yaml", Shop::yaml(30, 2));
  REQUIRE(shop.pgxform({"capture"}).exit_code == 0);
  shop.count_changes();
  Sequence steps(shop, seed);
  {
    Writer writer(shop, seed + 1);
    for (int i = 0; i < 6; ++i) steps.step();
    writer.stop();
  }
  INFO("steps: " << steps.log);
  // The window: nothing writes any more, and a run and a catch-up finish what is left.
  const auto run = shop.pgxform({"run"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  const auto caught_up = shop.pgxform({"catch-up"});
  INFO(caught_up.err);
  REQUIRE(caught_up.exit_code == 0);
  CHECK(shop.pending() == 0);
  CHECK(shop.differences() == 0);
  CHECK(shop.refreshed_too_often() == 0);
}

}  // namespace

TEST_CASE("every captured change is applied once in any order of run, catch-up, kills and resets",
          "[property][kill]") {
  const long long seeds = env_or("PGXFORM_PROPERTY_SEEDS", 3);
  const auto first = static_cast<unsigned>(env_or("PGXFORM_PROPERTY_SEED", Catch::rngSeed()));
  for (long long i = 0; i < seeds; ++i) sequence(first + static_cast<unsigned>(i) * 7919u);
}
