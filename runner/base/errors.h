// errors: the two tiers of failure, as ccache has them.
//
//   InputError  what the user gave is wrong or cannot be used now: the command line, the jobs
//               file, a script, the selection of jobs, a key, a job that another runner holds,
//               a connection string that reaches no server. It is found before anything is
//               written. The command line prints each of its problems on a line of its own,
//               each naming where it came from (file:line, job, option), then its outcome
//               ("nothing was applied", "no job was started"), and exits 2.
//   the rest    a failure while working: a database error, a job that failed, a report that
//               could not be written to the end. The command line prints it and exits 1.
//
// libpqxx's exceptions derive from std::runtime_error, like InputError: so catch InputError to
// mean bad input, never std::runtime_error.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace pgxform {

class InputError : public std::runtime_error {
 public:
  // `outcome`: the line printed after the problems; empty for none.
  explicit InputError(std::vector<std::string> problems, std::string outcome = "");
  const std::vector<std::string>& problems() const { return m_problems; }
  const std::string& outcome() const { return m_outcome; }

 private:
  std::vector<std::string> m_problems;
  std::string m_outcome;
};

// The command line itself: an unknown option, a missing or extra argument, a bad value. The
// command line adds where to read about the command.
class UsageError : public InputError {
 public:
  explicit UsageError(const std::string& problem) : InputError({problem}) {}
};

// The jobs file, or the jobs a command names, do not fit the database (or each other): a
// missing table or function, a job that is not in the file, a key that is not the key's type.
class PreflightError : public InputError {
 public:
  explicit PreflightError(std::vector<std::string> problems);
};

// A job that another runner holds: a command that must not work beside it is refused.
class JobHeldError : public InputError {
 public:
  explicit JobHeldError(const std::string& job);
};

}  // namespace pgxform
