// cli: the command line. Parses it (Boost.Program_options), runs one command, and maps every
// error to an exit code (see exit_code.h) with one clear, redacted message on stderr.
// main() only calls run_cli, so that the whole command line can be tested in-process.
#pragma once

#include <ostream>

namespace pgxform {

int run_cli(int argc, const char* const argv[]);
// The same, printing the commands' output (status, help) to `out`.
int run_cli(int argc, const char* const argv[], std::ostream& out);

}  // namespace pgxform
