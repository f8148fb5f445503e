// verify_command: `pgxform verify [JOB...] [--repair]` — runs each job's `verify:` query over
// the key range the job processed (up to its cursor unless it is done), batch by batch,
// read-only, and reports how many rows offend and the first of their keys. With --repair it
// re-runs the function over the batches that hold offending keys (batch_sql.h: call_query), for
// jobs marked `idempotent: true` only, and only while no runner holds the job. Exit 0 when
// nothing is wrong (or everything was repaired), else 1.
//
// fetch/act (check_job, repair_job) -> render (print_verification).
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "command_options.h"

namespace pgxform {

enum class VerifyMode { check, repair };

struct VerifyOptions : CommandOptions {
  std::vector<std::string> jobs;  // empty: every job with a verify: query
  VerifyMode mode = VerifyMode::check;
};

int verify_command(const VerifyOptions& options, std::ostream& out);

// What verify found for one job, and what --repair did.
struct Verification {
  std::string job;
  long long batches = 0;
  long long offending = 0;
  std::vector<std::string> first_keys;  // of the offending rows, at most 10
  std::vector<std::pair<std::string, std::string>> bad_ranges;
  struct Repair {
    std::pair<std::string, std::string> range;
    long long left = 0;  // offending rows after the re-run
  };
  std::vector<Repair> repairs;
  long long repaired() const;
  // Something is wrong and was not repaired.
  bool wrong(VerifyMode mode) const;
};

void print_verification(std::ostream& out, const Verification& v, VerifyMode mode);

}  // namespace pgxform
