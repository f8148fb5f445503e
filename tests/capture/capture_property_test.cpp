// The property of issue 22 (every captured change applied once, in any order of run, catch-up,
// catch-up --follow, capture, reset, SIGKILL) with the capture of issue 24: the changes reach
// the log through the slot of changes: logical, or through the triggers, and the seed moves the
// job from one method to the other between the steps. Tagged [property] like issue 22's test
// (tests/engine/task_runner_test.cpp on its branch): scripts/property_test runs both for many
// seeds (PGXFORM_PROPERTY_SEEDS, PGXFORM_PROPERTY_SEED as there).
//
// A seeded sequence: legacy.people under a writer (updates, deletes, re-inserts into gaps, a
// key's change; never the top key, so that the final main pass reaches every key the writer
// touched), while `run`, `catch-up` and `catch-up --follow` start as real children, alone or
// together, and end by SIGKILL, SIGINT or their own end at random moments; a reset of the job
// (its target emptied first); the capture installed again, or by the other method. After the
// writer stops, a run and a catch-up drain everything; then the target equals a from-scratch
// transform of the source row by row, the log is empty, and no key is refreshed more often
// than its changes were recorded.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <pqxx/pqxx>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

constexpr int k_rows = 3000;

long long property_env(const char* name, long long fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::atoll(value) : fallback;
}

struct Captured {
  TestDatabase db;
  TempDir dir;
  std::string path;
  std::string mode;

  explicit Captured(const std::string& first_mode) : mode(first_mode) {
    db.exec(
        "CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
        "CREATE TABLE legacy.people (id bigint PRIMARY KEY, name text NOT NULL, score int);"
        "INSERT INTO legacy.people SELECT g, 'person ' || g, g % 100 FROM generate_series(1, " +
        std::to_string(k_rows) +
        ") g;"
        "CREATE TABLE target.people (id bigint, display text, doubled int);"
        "CREATE TABLE target.refreshed (id bigint);"
        "CREATE VIEW target.expected AS SELECT id, upper(name) AS display, score * 2 AS doubled"
        " FROM legacy.people;"
        "CREATE FUNCTION xf.people(lo bigint, hi bigint) RETURNS bigint LANGUAGE plpgsql AS $$"
        " DECLARE n bigint; BEGIN PERFORM pg_sleep(0.01);"
        " INSERT INTO target.people SELECT * FROM target.expected WHERE id BETWEEN lo AND hi;"
        " GET DIAGNOSTICS n = ROW_COUNT; RETURN n; END $$;"
        "CREATE FUNCTION xf.people_refresh(keys bigint[]) RETURNS bigint LANGUAGE sql AS $$"
        " INSERT INTO target.refreshed SELECT unnest(keys);"
        " DELETE FROM target.people t WHERE t.id = ANY (keys);"
        " INSERT INTO target.people SELECT * FROM target.expected WHERE id = ANY (keys);"
        " SELECT pg_catalog.cardinality(keys)::bigint $$;");
    write_file();
  }
  void write_file() {
    path = dir.write("jobs.yaml",
                     "version: 1\nlists:\n  - name: main\n    jobs:\n"
                     "      - {name: people, table: legacy.people, key: id, function: xf.people,"
                     " batch_size: 60, target_batch_ms: 0, parallel: 2, changes: " +
                         mode + ", refresh_function: xf.people_refresh}\n");
  }
  CliResult pgxform(std::vector<std::string> args) {
    return run_with_db(db, path, std::move(args));
  }
  long long differences() {
    return db.count(
        "SELECT (SELECT count(*) FROM (SELECT * FROM target.expected EXCEPT ALL"
        " SELECT * FROM target.people) a) + (SELECT count(*) FROM (SELECT * FROM target.people"
        " EXCEPT ALL SELECT * FROM target.expected) b)");
  }
  void count_changes() {
    db.exec(
        "CREATE TABLE target.changes (id bigint);"
        "CREATE FUNCTION target.count_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " INSERT INTO target.changes SELECT key::bigint FROM new_rows; RETURN NULL; END $$;"
        "CREATE TRIGGER count_change AFTER INSERT ON pgxform.change_log"
        " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
        " EXECUTE FUNCTION target.count_change()");
  }
  long long refreshed_too_often() {
    return db.count(
        "SELECT count(*) FROM (SELECT id, count(*) AS n FROM target.refreshed GROUP BY id) r"
        " WHERE r.n > (SELECT count(*) FROM target.changes c WHERE c.id = r.id)");
  }
};

// The source changing at its own pace until stop(): never the top key.
class PeopleWriter {
 public:
  PeopleWriter(Captured& c, unsigned seed) : m_c(c) {
    m_thread = std::thread([this, seed] {
      pqxx::connection conn(m_c.db.dsn());
      std::mt19937 rng(seed);
      std::uniform_int_distribution<int> key(1, k_rows - 1), what(0, 4), pause(0, 10);
      while (m_writing) {
        const std::string k = std::to_string(key(rng)), other = std::to_string(key(rng));
        pqxx::work tx(conn);
        switch (what(rng)) {
          case 0:
            tx.exec("UPDATE legacy.people SET name = name || '+' WHERE id = " + k);
            break;
          case 1:
            tx.exec("DELETE FROM legacy.people WHERE id = " + k);
            break;
          case 2:
            tx.exec("INSERT INTO legacy.people VALUES (" + k +
                    ", 'back', 5) ON CONFLICT DO"
                    " NOTHING");
            break;
          case 3:
            tx.exec("UPDATE legacy.people SET id = " + other + " WHERE id = " + k +
                    " AND NOT EXISTS (SELECT 1 FROM legacy.people WHERE id = " + other + ")");
            break;
          default:
            tx.exec("UPDATE legacy.people SET score = score + 1 WHERE id BETWEEN " + k + " AND " +
                    std::to_string(std::min(k_rows - 1, std::stoi(k) + 30)));
        }
        tx.commit();
        std::this_thread::sleep_for(std::chrono::milliseconds(pause(rng)));
      }
    });
  }
  ~PeopleWriter() { stop(); }
  void stop() {
    m_writing = false;
    if (m_thread.joinable()) m_thread.join();
  }

 private:
  Captured& m_c;
  std::atomic<bool> m_writing{true};
  std::thread m_thread;
};

class CaptureSequence {
 public:
  CaptureSequence(Captured& c, unsigned seed) : m_c(c), m_rng(seed) {}

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
        m_c.db.exec("DELETE FROM target.people");
        wait_until([&] { return m_c.pgxform({"reset", "people"}).exit_code == 0; });
        log += "reset; ";
        break;
      case 5:
        REQUIRE(m_c.pgxform({"capture"}).exit_code == 0);
        log += "capture; ";
        break;
      default: {
        // The other method: installed first, the old one removed after (the slot read first).
        m_c.mode = m_c.mode == "logical" ? "trigger" : "logical";
        m_c.write_file();
        const auto r = m_c.pgxform({"capture"});
        INFO(r.err);
        REQUIRE(r.exit_code == 0);
        log += "capture by " + m_c.mode + "; ";
      }
    }
  }

 private:
  int pick(int low, int high) { return std::uniform_int_distribution<int>(low, high)(m_rng); }

  void children(const std::vector<std::vector<std::string>>& commands) {
    std::vector<std::unique_ptr<Child>> running;
    for (const auto& args : commands) {
      running.push_back(std::make_unique<Child>(with_db(m_c.db, m_c.path, args), m_c.dir.path()));
      log += args.front() + (args.size() > 1 ? " " + args[1] : "") + ", ";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(pick(0, 2500)));
    for (std::size_t i = 0; i < running.size(); ++i) {
      Child* child = running[i].get();
      const bool follows = commands[i].size() > 1 && commands[i][1] == "--follow";
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
      CHECK((code == 0 || code == 3 || code == 128 + SIGKILL || code == 128 + SIGINT));
    }
  }

  Captured& m_c;
  std::mt19937 m_rng;

 public:
  std::string log;
};

void capture_sequence(unsigned seed) {
  INFO("seed " << seed);
  Captured c(seed % 2 == 0 ? "logical" : "trigger");
  REQUIRE(c.pgxform({"capture"}).exit_code == 0);
  c.count_changes();
  CaptureSequence steps(c, seed);
  {
    PeopleWriter writer(c, seed + 1);
    for (int i = 0; i < 6; ++i) steps.step();
    writer.stop();
  }
  INFO("steps: " << steps.log);
  const auto run = c.pgxform({"run"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  const auto caught_up = c.pgxform({"catch-up"});
  INFO(caught_up.err);
  REQUIRE(caught_up.exit_code == 0);
  CHECK(c.db.count("SELECT count(*) FROM pgxform.change_log") == 0);
  CHECK(c.differences() == 0);
  CHECK(c.refreshed_too_often() == 0);
}

}  // namespace

TEST_CASE(
    "every change captured through the slot or the triggers is applied once in any order of run, "
    "catch-up, kills, resets and method switches",
    "[property][kill][logical]") {
  const long long seeds = property_env("PGXFORM_PROPERTY_SEEDS", 3);
  const auto first = static_cast<unsigned>(property_env("PGXFORM_PROPERTY_SEED", Catch::rngSeed()));
  for (long long i = 0; i < seeds; ++i) capture_sequence(first + static_cast<unsigned>(i) * 7919u);
}
