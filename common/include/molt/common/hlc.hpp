#pragma once
// CockroachDB hybrid logical clock timestamps, as changefeeds write them.
//
//   text form      "1701102296662969433.0000000000"   <wall ns>.<10-digit logical> ("N.0" too)
//   file-name form "202311271624566629694330000000000" YYYYMMDDHHMMSS + 9-digit ns + 10-digit
//                  logical (33 digits; the cloud-storage sink's <ts>.RESOLVED files)
//   cursor forms   the text form, integer nanoseconds, or an RFC 3339 timestamp
//
// Ordering is by (wall, logical) as integers, never as strings or floats.

#include <compare>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "molt/common/result.hpp"

namespace molt {

class hlc {
public:
    constexpr hlc() noexcept = default;
    constexpr hlc(int64_t wall_nanos, int32_t logical) noexcept
        : wall_(wall_nanos), logical_(logical) {}

    /// Wall time in nanoseconds since the Unix epoch (never negative).
    [[nodiscard]] constexpr int64_t wall() const noexcept { return wall_; }
    /// Logical counter (CockroachDB's int32, never negative).
    [[nodiscard]] constexpr int32_t logical() const noexcept { return logical_; }
    [[nodiscard]] constexpr bool is_zero() const noexcept { return wall_ == 0 && logical_ == 0; }

    /// The smallest timestamp after this one: logical + 1, or, at the int32 limit of the
    /// logical counter, the next wall nanosecond with logical 0 (the counter carries into the
    /// wall time instead of wrapping negative). The last representable timestamp (wall and
    /// logical both at their maximum, the year 2262) has no successor and is returned as is.
    [[nodiscard]] constexpr hlc next() const noexcept {
        if (logical_ < std::numeric_limits<int32_t>::max()) {
            return {wall_, logical_ + 1};
        }
        if (wall_ < std::numeric_limits<int64_t>::max()) {
            return {wall_ + 1, 0};
        }
        return *this;
    }

    /// Parses the text form. One trailing '?' (synthetic timestamps of older clusters) is
    /// tolerated and dropped.
    [[nodiscard]] static result<hlc> parse(std::string_view text);
    /// Parses the 33-digit file-name form, with or without a ".RESOLVED" suffix.
    [[nodiscard]] static result<hlc> parse_file_name(std::string_view text);
    /// Parses what CockroachDB accepts as `cursor`: the text form, integer nanoseconds, or an
    /// RFC 3339 timestamp (logical 0).
    [[nodiscard]] static result<hlc> parse_cursor(std::string_view text);

    /// "%d.%010d"; also the form CREATE CHANGEFEED takes as cursor.
    [[nodiscard]] std::string to_string() const;
    [[nodiscard]] std::string to_file_name() const;
    /// Wall time as RFC 3339 UTC with nanoseconds; the logical part is dropped.
    [[nodiscard]] std::string to_rfc3339() const;

    friend constexpr auto operator<=>(const hlc&, const hlc&) noexcept = default;

private:
    int64_t wall_ = 0;
    int32_t logical_ = 0;
};

}  // namespace molt
