// name_suggestion: the "did you mean ...?" of a mistyped name (a command today). The
// suggestion is the known name nearest to what was typed in edit distance (Damerau-Levenshtein
// in its optimal-string-alignment form: an insertion, a deletion, a substitution or two
// neighbouring letters swapped each count 1), and only when it is near enough to be a typo:
// at most 2 edits, and fewer edits than the typed name has letters ("x" suggests nothing).
// Ties go to the name listed first. Pure.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgxform {

// The number of edits that turn `a` into `b`.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The name of `known` that `typed` most likely meant; none when no name is near enough.
std::optional<std::string> suggest_name(std::string_view typed,
                                        const std::vector<std::string>& known);

}  // namespace pgxform
