// The classes of bad input and hostile conditions the hardening review found, against a real
// PostgreSQL and real processes: runners starting together, NUL bytes and transaction control
// that would slip past, a system that refuses threads, passwords in malformed connection
// strings, a role with no more privilege than it needs, read-only commands and the WAL.
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "state/state_locks.h"
#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

namespace {

// A role of this test's own, dropped with everything it owns at the end.
struct Role {
  TestDatabase& db;
  std::string name;
  Role(TestDatabase& database, const std::string& suffix, const std::string& options)
      : db(database), name(database.name() + "_" + suffix) {
    db.exec("CREATE ROLE " + name + " LOGIN PASSWORD 'Role-pw-1' " + options);
  }
  ~Role() {
    try {
      db.exec("DROP OWNED BY " + name + "; DROP ROLE " + name);
    } catch (const std::exception& e) {
      WARN("could not drop role " << name << ": " << e.what());
    }
  }
  std::string dsn() const { return db.dsn() + " user=" + name + " password=Role-pw-1"; }
};

}  // namespace

TEST_CASE("four runners started at the same instant on a fresh database all finish, rows once") {
  for (int round = 0; round < 4; ++round) {
    TestDatabase db;
    create_items(db, 600);
    TempDir dir;
    const auto path = dir.write("jobs.yaml", items_jobs_yaml(50, 2) +
                                                 "  - name: other\n    jobs:\n"
                                                 "      - {name: step, sql: SELECT 1}\n");
    std::vector<std::unique_ptr<Child>> runners;
    for (int i = 0; i < 4; ++i)
      runners.push_back(std::make_unique<Child>(with_db(db, path, {"run"}), dir.path()));
    for (auto& runner : runners) {
      const int code = runner->wait();
      INFO("round " << round << ": " << runner->err());
      CHECK(code == 0);
    }
    CHECK(missing_items(db) == 0);
    CHECK(duplicate_items(db) == 0);
    CHECK(db.count("SELECT count(*) FROM pgxform.job_state WHERE status = 'done'") == 2);
  }
}

TEST_CASE("two jobs named alike but for a NUL byte are refused before anything is written") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const auto path = dir.write(
      "jobs.yaml",
      "version: 1\nlists:\n  - name: l\n    jobs:\n"
      "      - {name: \"items\\0a\", table: legacy.items, key: id, function: xf.items}\n"
      "      - {name: \"items\\0b\", table: legacy.items, key: id, function: xf.items}\n");
  const auto r = run_cli(with_db(db, path, {"run"}));
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("jobs.yaml:5:") && Catch::Contains("a NUL byte"));
  CHECK_FALSE(db.schema_exists("pgxform"));
}

TEST_CASE("scripts holding a NUL byte or a COMMIT are refused at their line, nothing applied") {
  TestDatabase db;
  TempDir dir;
  std::filesystem::create_directory(dir.path() + "/sql");
  const auto path = dir.write("jobs.yaml",
                              "version: 1\nlists:\n  - name: l\n    jobs:\n"
                              "      - {name: s, sql: SELECT 1}\n");
  for (const auto& [script, problem] :
       {std::pair<std::string, std::string>{
            "CREATE TABLE one (a int);\nSELECT 1;" + std::string(1, '\0') + "\nDROP TABLE one;",
            "V1__one.sql:2: holds a NUL byte"},
        {"CREATE TABLE one (a int);\nCOMMIT;\nSELECT 1/0;", "V1__one.sql:2: COMMIT"}}) {
    dir.write("sql/V1__one.sql", script);
    const auto r = run_cli(with_db(db, path, {"migrate"}));
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains(problem) && Catch::Contains("nothing was applied"));
    CHECK(db.count("SELECT count(*) FROM pg_class WHERE relname = 'one'") == 0);
    CHECK_FALSE(db.schema_exists("pgxform"));
  }
  // A no-transaction script may do what it likes: it runs outside pgxform's transaction.
  dir.write("sql/V1__one.sql", "-- pgxform: no-transaction\nVACUUM;");
  CHECK(run_cli(with_db(db, path, {"migrate"})).exit_code == 0);
}

TEST_CASE("a system that refuses a worker thread stops the run with exit 2, nothing written") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10));
  // As root, RLIMIT_NPROC is not enforced: the runner runs as nobody, limited to 12 threads.
  const passwd* nobody = getpwnam("nobody");
  REQUIRE(nobody);
  std::filesystem::permissions(dir.path(), std::filesystem::perms::all);
  std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                         std::filesystem::perms::group_read |
                                         std::filesystem::perms::others_read);
  const uid_t uid = nobody->pw_uid;
  const gid_t gid = nobody->pw_gid;
  Child child(with_db(db, path, {"run", "--threads", "64"}), dir.path(), [uid, gid] {
    const rlimit limit{12, 12};
    if (setrlimit(RLIMIT_NPROC, &limit) != 0 || setgid(gid) != 0 || setuid(uid) != 0) _exit(99);
  });
  const int code = child.wait();
  INFO(child.err());
  CHECK(code == 2);
  CHECK_THAT(child.err(), Catch::Contains("--threads 64: the system refused thread") &&
                              Catch::Contains("nothing was written"));
  CHECK_FALSE(db.schema_exists("pgxform"));
}

TEST_CASE("no form of a connection string prints its password, whatever libpq makes of it") {
  TestDatabase db;
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10));
  for (const std::string& dsn :
       {std::string(" postgresql://u:Secr3tPw@127.0.0.1:1/db"),
        std::string("postgresql://u:Secr3tPw@127.0.0.1:1/db "),
        std::string("postgresql://u:Secr/3tPw@127.0.0.1:1/db"),
        std::string("postgresql://u:Secr@3tPw@127.0.0.1:1/db"),
        std::string("postgresql://u:Secr%2F3tPw@127.0.0.1:1/db"),
        std::string("postgresql://127.0.0.1:1/db?password=Secr3tPw&sslmode=bogus"),
        std::string("host=127.0.0.1 port=1 password='Secr 3tPw' user=u"),
        std::string("host=127.0.0.1 port=1 password='Secr3tPw user=u"),
        std::string("host=127.0.0.1 port=1 password=Secr3tPw bogus_option=1")}) {
    const auto r = run_cli({"status", "-f", path, "--dsn", dsn});
    INFO(dsn << " -> " << r.err);
    CHECK(r.exit_code == 2);
    for (const char* secret : {"Secr3tPw", "Secr", "3tPw", "Secr 3tPw", "Secr/3tPw", "Secr@3tPw"})
      CHECK_THAT(r.err + r.out, !Catch::Contains(secret));
  }
}

TEST_CASE("a role without CREATE on the database migrates with a state schema made for it") {
  TestDatabase db;
  create_items(db, 300);
  Role migrator(db, "migrator", "");
  // What a DBA grants: the legacy data to read, the target and transform schemas to own, and a
  // state schema created for the role. No CREATE on the database, no superuser.
  db.exec("REVOKE CREATE ON DATABASE " + db.name() + " FROM PUBLIC;" +
          "GRANT USAGE ON SCHEMA legacy TO " + migrator.name + ";" +
          "GRANT SELECT ON legacy.items TO " + migrator.name + ";" +
          "DROP SCHEMA target CASCADE; DROP SCHEMA xf CASCADE;" +
          "CREATE SCHEMA target AUTHORIZATION " + migrator.name + ";" +
          "CREATE SCHEMA xf AUTHORIZATION " + migrator.name + ";" +
          "CREATE SCHEMA pgxform AUTHORIZATION " + migrator.name);
  TempDir dir;
  std::filesystem::create_directory(dir.path() + "/sql");
  dir.write("sql/V1__target.sql", "CREATE TABLE target.items (id bigint NOT NULL, v int);");
  dir.write("sql/R__transforms.sql",
            "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint)"
            " RETURNS bigint LANGUAGE sql AS 'WITH i AS (INSERT INTO target.items SELECT id,"
            " v * 10 FROM legacy.items WHERE id BETWEEN first_key AND last_key RETURNING 1)"
            " SELECT count(*) FROM i';");
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50, 2));
  const auto run = run_cli({"run", "-f", path, "--dsn", migrator.dsn()});
  INFO(run.err);
  CHECK(run.exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  for (const char* command : {"status", "validate", "plan", "profile", "info", "verify"}) {
    const auto r = run_cli({command, "-f", path, "--dsn", migrator.dsn()});
    INFO(command << ": " << r.err);
    // verify has no verify: query to run (exit 2); everything else works.
    CHECK(r.exit_code == (std::string(command) == "verify" ? 2 : 0));
  }
}

TEST_CASE("batches call a temporary function of the session; without TEMP, the statement") {
  TestDatabase db;
  create_items(db, 300);
  // The job's function notes, each time it is called, how many batch functions its session
  // holds: the runner's own, when it could create them.
  db.exec(
      "CREATE TABLE target.calls (batch_functions bigint);"
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS $$ INSERT INTO target.calls SELECT pg_catalog.count(*) FROM"
      "  pg_catalog.pg_proc WHERE pronamespace = pg_catalog.pg_my_temp_schema()"
      "  AND proname LIKE 'pgxform\\_batch\\_%';"
      "  WITH i AS (INSERT INTO target.items SELECT id, v * 10 FROM legacy.items"
      "   WHERE id BETWEEN first_key AND last_key RETURNING 1) SELECT count(*) FROM i $$");
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50, 2));
  const auto run = run_cli(with_db(db, path, {"run"}));
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.scalar("SELECT min(batch_functions) > 0 FROM target.calls") == "t");

  // A role that may not create temporary objects: the same batches, as plain statements.
  db.exec("TRUNCATE target.items, target.calls; DROP SCHEMA pgxform CASCADE");
  Role migrator(db, "notemp", "");
  db.exec("REVOKE TEMP ON DATABASE " + db.name() + " FROM PUBLIC;" +
          "GRANT USAGE ON SCHEMA legacy, target, xf TO " + migrator.name + ";" +
          "GRANT SELECT ON legacy.items TO " + migrator.name + ";" +
          "GRANT SELECT, INSERT ON target.items, target.calls TO " + migrator.name + ";" +
          "CREATE SCHEMA pgxform AUTHORIZATION " + migrator.name);
  const auto plain = run_cli({"run", "-f", path, "--dsn", migrator.dsn()});
  INFO(plain.err);
  REQUIRE(plain.exit_code == 0);
  // Said once per runner, not once per connection, batch or statement.
  const std::string said = plain.err + plain.out;
  const std::string message = "cannot create the temporary batch function";
  CHECK_THAT(said, Catch::Contains(message));
  CHECK(said.find(message, said.find(message) + 1) == std::string::npos);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.scalar("SELECT count(*) > 0 AND max(batch_functions) = 0 FROM target.calls") == "t");
}

TEST_CASE("rehearse sends nothing to a logical replication slot") {
  TestDatabase db;
  REQUIRE(db.scalar("SHOW wal_level") == "logical");  // scripts/test starts the server so
  create_items(db, 4000);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(500));
  const std::string slot = db.name() + "_slot";
  db.exec("SELECT pg_create_logical_replication_slot('" + slot + "', 'test_decoding')");
  const auto r = run_cli(with_db(db, path, {"rehearse"}));
  const std::string changes =
      db.scalar("SELECT count(*) FROM pg_logical_slot_get_changes('" + slot +
                "', NULL, NULL, 'skip-empty-xacts', '0', 'include-xids', '1')");
  db.exec("SELECT pg_drop_replication_slot('" + slot + "')");
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(changes == "0");
}

TEST_CASE("explain by a role that may not load auto_explain says so, with the server's SQLSTATE") {
  TestDatabase db;
  create_items(db, 100);
  Role reader(db, "reader", "");
  db.exec("GRANT USAGE ON SCHEMA legacy, target, xf TO " + reader.name + ";" +
          "GRANT SELECT ON ALL TABLES IN SCHEMA legacy TO " + reader.name);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10));
  const auto r = run_cli({"explain", "items", "-f", path, "--dsn", reader.dsn()});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("LOAD 'auto_explain' failed (SQLSTATE 42501)") &&
                        Catch::Contains("auto_explain"));
}

TEST_CASE("a key of a type without an ordering is refused by validate and run, nothing written") {
  TestDatabase db;
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.docs (doc json);"
      "CREATE FUNCTION xf.docs(a json, b json) RETURNS void LANGUAGE sql AS 'SELECT 1'");
  TempDir dir;
  const auto path = dir.write("jobs.yaml",
                              "version: 1\nlists:\n  - name: l\n    jobs:\n"
                              "      - {name: docs, table: legacy.docs, key: doc,"
                              " function: xf.docs}\n");
  for (const char* command : {"validate", "run"}) {
    const auto r = run_cli(with_db(db, path, {command}));
    INFO(command << ": " << r.err << r.out);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err + r.out, Catch::Contains("is of type json, which has no ordering"));
  }
  CHECK_FALSE(db.schema_exists("pgxform"));
}

TEST_CASE("status finds the holder of a slice by the same lock name the runner takes") {
  TestDatabase db;
  create_items(db, 600);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50, 2));
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  pqxx::connection holder("dbname=" + db.name() + " application_name='pgxform other-host:42'");
  pqxx::nontransaction hold(holder);
  pgxform::session_lock(hold, pgxform::task_lock(pgxform::StateSchema("pgxform"), {"items", 1}));
  const Json status = parse_json(run_cli(with_db(db, path, {"status", "--json"})).out);
  CHECK(job_in(status, "items")["runner"] == "other-host:42");
}
