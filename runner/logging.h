// logging: the one logger, on stderr, through which everything below the command line speaks.
// Every line passes through redact(), so that no password ever reaches the terminal or a file.
#pragma once

namespace pgxform {

enum class Verbosity { quiet, normal, debug };
void setup_logging(Verbosity verbosity);

}  // namespace pgxform
