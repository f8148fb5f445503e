// command_options: what every command's options have in common — the jobs file and the
// connection — so that the command line fills them in one place (cli.cpp) and each command's
// own options struct derives from it.
//
// Every command module is shaped the same way: it reads what it needs (through the state layer,
// the catalog and table_stats), computes a plain struct with pure functions, and renders that
// struct as text, JSON or HTML in functions of their own, so that the computing and the
// rendering are unit-tested without a database.
#pragma once

#include <string>

namespace pgxform {

struct CommandOptions {
  std::string file = "jobs.yaml";  // -f, --file
  std::string dsn;                 // --dsn; empty: the PG* environment
};

}  // namespace pgxform
