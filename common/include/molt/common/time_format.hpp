#pragma once
// RFC 3339 text for instants kept as integer nanoseconds since the Unix epoch (UTC). Integer
// arithmetic only: int64 nanoseconds cover 1677-09-21 to 2262-04-11, which is what CockroachDB's
// HLC wall time can hold as well.

#include <cstdint>
#include <string>
#include <string_view>

#include "molt/common/result.hpp"

namespace molt {

/// A broken-down UTC (or offset-shifted) calendar time.
struct civil_time {
    int64_t year = 1970;
    int month = 1;   ///< 1..12
    int day = 1;     ///< 1..31
    int hour = 0;    ///< 0..23
    int minute = 0;  ///< 0..59
    int second = 0;  ///< 0..59 (leap seconds are not represented)
    int nanos = 0;   ///< 0..999'999'999
};

/// Days since 1970-01-01 for a proleptic Gregorian date, and back.
[[nodiscard]] int64_t days_from_civil(int64_t year, int month, int day) noexcept;
[[nodiscard]] civil_time civil_from_unix_nanos(int64_t unix_nanos) noexcept;
/// The same from whole seconds (nanos 0): any year, beyond int64 nanoseconds' 1677..2262.
[[nodiscard]] civil_time civil_from_unix_seconds(int64_t unix_seconds) noexcept;

/// "2025-02-20T15:55:44-05:00": whole seconds, shifted by utc_offset_seconds; "Z" when the
/// offset is zero (Go's time.RFC3339, which zerolog uses).
[[nodiscard]] std::string format_rfc3339_seconds(int64_t unix_seconds, int utc_offset_seconds);

/// "2025-05-09T21:20:29.203923Z": UTC with the fraction's trailing zeros trimmed (Go's
/// time.RFC3339Nano).
[[nodiscard]] std::string format_rfc3339_nanos_utc(int64_t unix_nanos);

/// Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)" ('t', 'z' and a space separator accepted),
/// at most 9 fraction digits, into nanoseconds since the epoch.
[[nodiscard]] result<int64_t> parse_rfc3339(std::string_view text);

/// The local UTC offset in seconds at the given instant (from the TZ database via localtime_r).
[[nodiscard]] int local_utc_offset(int64_t unix_seconds) noexcept;

}  // namespace molt
