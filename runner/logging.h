// logging: the one logger, on stderr, through which everything below the command line speaks.
// Every line passes through redact(), so that no password ever reaches the terminal or a file,
// and has its control characters escaped and its later lines indented, so that nothing in a
// message can forge a log line.
//
// Timestamps: on a terminal the time of day alone (`08:22:55 info ...`); anywhere else (a file,
// a pipe, a journal) ISO 8601 with milliseconds and the offset from UTC
// (`2026-12-02T08:22:55.123+00:00 info ...`), so that a log read later, or beside the server's,
// says when.
#pragma once

#include <string>

namespace pgxform {

enum class Verbosity { quiet, normal, debug };
void setup_logging(Verbosity verbosity);

// A line as it may reach a terminal or a file: no control character but the line's own end
// passes (an ESC would drive the terminal, a CR overwrite the line; each becomes \xNN), and
// the later lines of a message of several (a server error's CONTEXT) are indented, so that
// nothing in a message — a key from the data, an error text — can pass for a line of its own.
std::string contained(const std::string& line);

}  // namespace pgxform
