#pragma once
// Command-line text both executables read the same way: Go pflag's boolean spellings, and the
// one report of every problem found with a command line.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace molt {

/// true, 1, t, T, TRUE, True → true; false, 0, f, F, FALSE, False → false; else nullopt.
[[nodiscard]] std::optional<bool> parse_flag_bool(std::string_view text) noexcept;

/// The one problem, or "N problems with the command line:" with one indented line each. Lines
/// inside a problem stay lines (indented under it); control characters are escaped.
[[nodiscard]] std::string describe_problems(const std::vector<std::string>& problems);

}  // namespace molt
