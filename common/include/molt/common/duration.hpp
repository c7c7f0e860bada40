#pragma once
// Durations in Go's syntax, which every original flag and option uses: "250ms", "1s",
// "1m30s", "1.5h", "-2us". Units: ns, us (also µs), ms, s, m, h. "0" alone is allowed.

#include <chrono>
#include <string>
#include <string_view>

#include "molt/common/result.hpp"

namespace molt {

/// Parses a Go duration string (time.ParseDuration rules), refusing overflow.
[[nodiscard]] result<std::chrono::nanoseconds> parse_duration(std::string_view text);

/// Formats like Go's Duration.String(): "1h2m3.5s", "250ms", "1.5µs", "0s".
[[nodiscard]] std::string format_duration(std::chrono::nanoseconds d);

}  // namespace molt
