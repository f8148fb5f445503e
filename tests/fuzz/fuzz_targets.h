// fuzz_targets: what each libFuzzer target does to one input, as functions that say whether
// the input kept every promise: the targets (fuzz_jobs_file.cpp, fuzz_scripts.cpp) trap when
// one returns false, and the unit tests replay the seed corpus (tests/fuzz/corpus) through the
// same functions in every build, the sanitizers' included. An exception other than the input
// error each promises goes on up: a bug either way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/sql_text.h"
#include "base/text_check.h"
#include "plan/jobs_file.h"
#include "plan/script_files.h"

namespace pgxform_fuzz {

// Any bytes as a jobs file: parsing succeeds, and every job read can be found again, or it
// throws JobsFileError (an input error naming the file and line).
inline bool jobs_file_input(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const pgxform::JobsFile file = pgxform::parse_jobs_text(text, "fuzz.yaml");
    for (const auto& list : file.lists)
      for (const auto& job : list.jobs)
        if (!file.find_job(job.name)) return false;
  } catch (const pgxform::JobsFileError&) {
    // bad input, reported as such
  }
  return true;
}

// Any bytes as a script's file name (the first line) and text (the rest), through everything
// pgxform does to a script before it reaches the database: the name, the checksum (16 hex
// digits, the same with CRLF line ends), the transaction directive, the text checks (NUL,
// UTF-8, transaction control). Each succeeds or throws ScriptError.
inline bool script_input(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string name = input.substr(0, newline);
  const std::string text = newline == std::string::npos ? "" : input.substr(newline + 1);
  try {
    pgxform::parse_script_name(name);
  } catch (const pgxform::ScriptError&) {
  }
  const std::string checksum = pgxform::script_checksum(text);
  if (checksum.size() != 16) return false;
  if (text.find('\r') == std::string::npos) {
    std::string crlf;
    for (const char c : text) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    if (pgxform::script_checksum(crlf) != checksum) return false;
  }
  try {
    const auto transaction = pgxform::script_transaction(text, "fuzz.sql");
    pgxform::check_script_text(text, "fuzz.sql", transaction);
  } catch (const pgxform::ScriptError&) {
  }
  if (const auto control = pgxform::find_transaction_control(text))
    if (control->offset >= text.size()) return false;
  pgxform::text_flaw(text);
  pgxform::name_flaw(name);
  return true;
}

}  // namespace pgxform_fuzz
