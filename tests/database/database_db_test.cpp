// Connections and sessions (database.h) against a real PostgreSQL: the password of a DSN, in
// whatever form libpq reads it, never in a message or a log line; a connection refused at a
// command's first contact (a wrong password, a database that does not exist) is bad input
// (exit 2), the same refusal once the command has worked a lost connection to retry; each
// session's temporary batch function, and plain statements where the role may not create one.
#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "base/errors.h"
#include "database/database.h"
#include "database/retry.h"
#include "support/fixtures.h"
#include "support/prerequisite.h"
#include "support/test_db.h"

using namespace pgxform_test;

TEST_CASE("a password in the DSN never appears in a message or a log line") {
  TestDatabase db;
  create_items(db, 100);
  // A role of this test's own, with a password that the server really checks (scram) when the
  // cluster asks for one, as pg_virtualenv's does over TCP.
  const std::string role = db.name() + "_pw";
  db.exec("CREATE ROLE " + role + " LOGIN SUPERUSER PASSWORD 'Sekrit-4711'");
  TempDir dir;
  const std::string path = dir.write("jobs.yaml", items_jobs_yaml(10));
  auto ok = run_cli(
      {"run", "-v", "-f", path, "--dsn", db.dsn() + " user=" + role + " password=Sekrit-4711"});
  auto status = run_cli(
      {"status", "-v", "-f", path, "--dsn", "postgresql://" + role + ":Sekrit-4711@/" + db.name()});
  // A wrong password: the error must not echo either password.
  auto wrong = run_cli(
      {"status", "-f", path, "--dsn", db.dsn() + " user=nobody_" + role + " password=Wrong-0815"});
  db.exec("DROP OWNED BY " + role + "; DROP ROLE " + role);
  INFO(ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(status.exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM target.items") == 100);
  for (const auto* r : {&ok, &status, &wrong}) {
    CHECK_THAT(r->err, !Catch::Contains("Sekrit-4711") && !Catch::Contains("Wrong-0815"));
    CHECK_THAT(r->out, !Catch::Contains("Sekrit-4711"));
  }
  CHECK(wrong.exit_code == 2);
  CHECK_THAT(wrong.err, Catch::Contains("cannot connect"));
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

TEST_CASE("batches call a temporary function of the session, or without TEMP the statement itself",
          "[threads]") {
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
  TestRole migrator(db, "notemp");
  db.exec("REVOKE TEMP ON DATABASE " + db.name() + " FROM PUBLIC;" +
          "GRANT USAGE ON SCHEMA legacy, target, xf TO " + migrator.name() + ";" +
          "GRANT SELECT ON legacy.items TO " + migrator.name() + ";" +
          "GRANT SELECT, INSERT ON target.items, target.calls TO " + migrator.name() + ";" +
          "CREATE SCHEMA pgxform AUTHORIZATION " + migrator.name());
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

TEST_CASE("a wrong password is refused as bad input: exit 2 (28P01), nothing written") {
  TestDatabase db;
  create_items(db, 100);
  TestRole role(db, "checked", "SUPERUSER");
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10));
  const auto r = run_cli(
      {"run", "-f", path, "--dsn", db.dsn() + " user=" + role.name() + " password=Wrong-1"});
  if (!prerequisite(r.exit_code != 0,
                    "this server lets a wrong password in (trust): its refusal is not tested"))
    return;
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("pgxform: cannot connect to PostgreSQL: ") &&
                        !Catch::Contains("Wrong-1"));
  CHECK_FALSE(db.schema_exists("pgxform"));
  CHECK(db.count("SELECT count(*) FROM target.items") == 0);
}

TEST_CASE("a database that does not exist is refused as bad input: exit 2 (3D000)") {
  TestDatabase db;
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10));
  for (const char* command : {"run", "status", "validate"}) {
    const auto r = run_cli({command, "-f", path, "--dsn", "dbname=" + db.name() + "_missing"});
    INFO(command << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("pgxform: cannot connect to PostgreSQL: ") &&
                          Catch::Contains(db.name() + "_missing"));
  }
}

TEST_CASE(
    "a session whose server stopped letting it in is a lost connection to retry, never bad input") {
  TestDatabase db;
  pgxform::Session session(db.dsn());
  REQUIRE(session.conn().is_open());
  // A server that refuses new connections to the database now, as one that went away does.
  pqxx::connection admin("dbname=postgres");
  pqxx::nontransaction(admin).exec("ALTER DATABASE " + db.name() + " ALLOW_CONNECTIONS false");
  bool thrown = false;
  try {
    session.reconnect();
  } catch (const pgxform::InputError& e) {
    FAIL("a reconnect failed as bad input: " << e.what());
  } catch (const std::exception& e) {
    thrown = true;
    CHECK(pgxform::classify(e).kind == pgxform::FailureKind::connection_lost);
  }
  CHECK(thrown);
  // The same refusal at a command's first contact is the user's to fix.
  CHECK_THROWS_AS(pgxform::connect(db.dsn()), pgxform::ConnectError);
  pqxx::nontransaction(admin).exec("ALTER DATABASE " + db.name() + " ALLOW_CONNECTIONS true");
}
