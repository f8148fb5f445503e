// redaction: the passwords a message must never show. Every password found in a connection
// string (--dsn, a target's) or in PGPASSWORD is registered as a secret when it is first used;
// redact() replaces each with "***". The logger passes every line through it, and so does the
// command line's error output, so that no password reaches a terminal, a log file or a JSON log.
//
// The registry is process-wide and only grows: a secret seen once stays hidden for the rest of
// the process. clear_secrets() exists for tests, which run many cases in one process.
#pragma once

#include <string>

namespace pgxform {

// Remembers the passwords of `dsn` and of PGPASSWORD so that redact() hides them.
void register_secrets_from(const std::string& dsn);
std::string redact(std::string text);
// Whether `dsn` itself holds a password (`password=`, a URI's user:password@ or ?password=),
// as libpq reads it or as written when it does not parse; PGPASSWORD does not count.
bool dsn_has_password(const std::string& dsn);
// Forgets every secret (tests only: one test's password must not redact another's text).
void clear_secrets();

}  // namespace pgxform
