// logging: the one logger, on stderr, through which everything below the command line speaks.
// Every line passes through redact(), so that no password ever reaches the terminal or a file,
// and has its control characters escaped and its later lines indented, so that nothing in a
// message can forge a log line.
//
// Timestamps: on a terminal the time of day alone (`08:22:55 info ...`); anywhere else (a file,
// a pipe, a journal) ISO 8601 with milliseconds and the offset from UTC
// (`2026-12-02T08:22:55.123+00:00 info ...`), so that a log read later, or beside the server's,
// says when.
//
// --log-format json: one JSON object per line instead, for log shippers:
// {"time": "2026-12-02T08:22:55.123+00:00", "level": "info", "message": "..."}; the message
// passes through redact() as a text line does, and JSON's escapes contain it.
//
// A live display (progress_display.h) that keeps lines at the bottom of the terminal takes the
// finished lines over with set_log_writer() and prints them above its block.
#pragma once

#include <functional>
#include <string>

namespace pgxform {

enum class Verbosity { quiet, normal, debug };
enum class LogFormat { text, json };
void setup_logging(Verbosity verbosity, LogFormat format = LogFormat::text);
LogFormat log_format();

// Where the finished log lines (each with its newline) go instead of stderr, until called with
// an empty function. The writer is called under the logger's lock, one line at a time.
using LogWriter = std::function<void(const std::string& line)>;
void set_log_writer(LogWriter writer);

// A line as it may reach a terminal or a file: no control character but the line's own end
// passes (an ESC would drive the terminal, a CR overwrite the line; each becomes \xNN), and
// the later lines of a message of several (a server error's CONTEXT) are indented, so that
// nothing in a message — a key from the data, an error text — can pass for a line of its own.
// terminal_text(line, Lines::indented) (terminal_text.h), the line's own end kept.
std::string contained(const std::string& line);

}  // namespace pgxform
