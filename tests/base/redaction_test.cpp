// Hiding passwords from messages (redaction.h): each form of a connection string registers the
// password libpq would read, and redact hides it whole, wherever a message quotes it. Secrets
// are registered process-wide, so every test uses passwords of its own.
#include "base/redaction.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <optional>
#include <string>

using pgxform::redact;
using pgxform::register_secrets_from;

TEST_CASE("a password in a key=value DSN is hidden, the other values are not") {
  register_secrets_from("host=x password=s3cret user=u");
  CHECK(redact("authentication failed: s3cret") == "authentication failed: ***");
  CHECK(redact("s3cret and s3cret again") == "*** and *** again");
  CHECK(redact("host=x password=s3cret user=u") == "host=x password=*** user=u");
}

TEST_CASE("a quoted password with a space in a key=value DSN is hidden whole") {
  register_secrets_from("host=x password='two words' user=u");
  CHECK(redact("it was two words long") == "it was *** long");
  CHECK(redact("two") == "two");
}

TEST_CASE("a password written with spaces around the equals sign is hidden") {
  register_secrets_from("host=x password = sp4ced user=u");
  CHECK(redact("got sp4ced") == "got ***");
}

TEST_CASE("the password in a URI's user info is hidden, the user is not") {
  register_secrets_from("postgresql://migrator:hunter2@db.example/app");
  CHECK(redact("postgresql://migrator:hunter2@db.example/app") ==
        "postgresql://migrator:***@db.example/app");
}

TEST_CASE("the password in a postgres:// URI is hidden") {
  register_secrets_from("postgres://u:tr0ub4dor@h/db");
  CHECK(redact("x tr0ub4dor y") == "x *** y");
}

TEST_CASE("a password in a URI's query is hidden") {
  register_secrets_from("postgresql://h/db?sslmode=require&password=abc123&connect_timeout=5");
  CHECK(redact("password abc123 rejected") == "password *** rejected");
  CHECK(redact("connect_timeout=5") == "connect_timeout=5");
}

TEST_CASE("PGPASSWORD from the environment is hidden") {
  const char* old = std::getenv("PGPASSWORD");
  const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
  ::setenv("PGPASSWORD", "env-pa55word", 1);
  register_secrets_from("");
  if (saved)
    ::setenv("PGPASSWORD", saved->c_str(), 1);
  else
    ::unsetenv("PGPASSWORD");
  CHECK(redact("FATAL: env-pa55word is wrong") == "FATAL: *** is wrong");
}

TEST_CASE("text without a registered secret is unchanged") {
  register_secrets_from("host=x user=u dbname=app");
  const std::string text = "connection to host=x user=u dbname=app failed: timeout";
  CHECK(redact(text) == text);
  CHECK(redact("") == "");
}

TEST_CASE("a password that begins with another registered password is hidden whole") {
  // Two DSNs (or a DSN and PGPASSWORD) may carry passwords where one is a prefix of the other;
  // hiding only the shorter one would print the rest of the longer.
  register_secrets_from("host=x password=lima user=u");
  register_secrets_from("host=y password=lima-oscar-42 user=u");
  CHECK(redact("rejected lima-oscar-42") == "rejected ***");
  CHECK(redact("rejected lima") == "rejected ***");
}

TEST_CASE("a URI with spaces before it, or a password holding '/', '@' or %-escapes, is hidden") {
  // Each as libpq reads it (decoded) and as written; of a password libpq cannot parse, the
  // pieces a message may quote (3 characters and more).
  register_secrets_from("  postgresql://u:Lead1ngSpace@host/db  ");
  CHECK(redact(" postgresql://u:Lead1ngSpace@host/db") == " postgresql://u:***@host/db");
  register_secrets_from("postgresql://u:Sl4sh/in/Pw@host/db");
  CHECK(redact("invalid port number: \"Sl4sh\"") == "invalid port number: \"***\"");
  CHECK(redact("x Sl4sh/in/Pw y") == "x *** y");
  CHECK(redact("Pw@host") == "Pw@host");  // 2 characters: too common to hide
  register_secrets_from("postgresql://u:at@Sign99@host/db");
  CHECK(redact("at@Sign99") == "***");
  register_secrets_from("postgresql://u:pct%2Fenc%40oded@host/db");
  CHECK(redact("pct%2Fenc%40oded") == "***");
  CHECK(redact("pct/enc@oded") == "***");
  register_secrets_from("host=h password='it\\'s a s3cr3t' user=u");
  CHECK(redact("it's a s3cr3t") == "***");
  register_secrets_from("host=h password='unterminated s3cr3t");
  CHECK(redact("unterminated s3cr3t") == "***");
}
