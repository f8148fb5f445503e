#include "base/errors.h"

namespace pgxform {

InputError::InputError(std::vector<std::string> problems, std::string outcome)
    : std::runtime_error(problems.empty() ? "bad input" : problems.front()),
      m_problems(std::move(problems)),
      m_outcome(std::move(outcome)) {}

PreflightError::PreflightError(std::vector<std::string> problems)
    : InputError(problems,
                 std::to_string(problems.size()) + " problem(s) found; no job was started") {}

JobHeldError::JobHeldError(const std::string& job)
    : InputError(
          {"job '" + job + "' is held by a running pgxform (see pgxform status); stop it first"},
          "nothing was written") {}

}  // namespace pgxform
