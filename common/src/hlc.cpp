#include "molt/common/hlc.hpp"

#include <limits>

#include <fmt/format.h>

#include "molt/common/time_format.hpp"

namespace molt {
namespace {

constexpr std::string_view expected_form =
    "expected <nanoseconds>.<10-digit logical>, e.g. 1701102296662969433.0000000000";

error bad_hlc(std::string_view text, std::string_view why) {
    return {errc::invalid_argument,
            fmt::format("bad HLC timestamp \"{}\": {}; {}", text, why, expected_form)};
}

bool all_digits(std::string_view s) noexcept {
    for (const char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
    }
    return !s.empty();
}

// Parses a run of digits into a non-negative integer no larger than `max`.
bool parse_bounded(std::string_view digits, int64_t max, int64_t& out) noexcept {
    if (!all_digits(digits)) {
        return false;
    }
    int64_t value = 0;
    for (const char c : digits) {
        const int d = c - '0';
        if (value > (max - d) / 10) {
            return false;
        }
        value = value * 10 + d;
    }
    out = value;
    return true;
}

}  // namespace

result<hlc> hlc::parse(std::string_view text) {
    std::string_view body = text;
    if (!body.empty() && body.back() == '?') {
        body.remove_suffix(1);
    }
    const size_t dot = body.find('.');
    if (dot == std::string_view::npos) {
        return bad_hlc(text, "no '.' between wall time and logical counter");
    }
    const std::string_view wall_text = body.substr(0, dot);
    const std::string_view logical_text = body.substr(dot + 1);
    if (logical_text.find('.') != std::string_view::npos) {
        return bad_hlc(text, "more than one '.'");
    }
    if (!all_digits(wall_text)) {
        return bad_hlc(text, "wall time is not a non-negative integer");
    }
    int64_t wall = 0;
    if (!parse_bounded(wall_text, std::numeric_limits<int64_t>::max(), wall)) {
        return bad_hlc(text, "wall time does not fit in 64 bits");
    }
    if (!all_digits(logical_text)) {
        return bad_hlc(text, "logical counter is not a non-negative integer");
    }
    int64_t logical = 0;
    if (!parse_bounded(logical_text, std::numeric_limits<int32_t>::max(), logical)) {
        return bad_hlc(text, "logical counter does not fit in 32 bits");
    }
    if (logical_text.size() != 10 && logical != 0) {
        return bad_hlc(text, "logical counter must have exactly 10 digits");
    }
    return hlc{wall, static_cast<int32_t>(logical)};
}

result<hlc> hlc::parse_file_name(std::string_view text) {
    std::string_view body = text;
    constexpr std::string_view suffix = ".RESOLVED";
    if (body.size() > suffix.size() && body.substr(body.size() - suffix.size()) == suffix) {
        body.remove_suffix(suffix.size());
    }
    auto bad = [&](std::string_view why) {
        return error{errc::invalid_argument,
                     fmt::format("bad resolved file name \"{}\": {}; expected 33 digits "
                                 "YYYYMMDDHHMMSS + 9-digit nanoseconds + 10-digit logical",
                                 text, why)};
    };
    if (body.size() != 33 || !all_digits(body)) {
        return bad("not 33 digits");
    }
    const std::string rfc = fmt::format("{}-{}-{}T{}:{}:{}.{}Z", body.substr(0, 4),
                                        body.substr(4, 2), body.substr(6, 2), body.substr(8, 2),
                                        body.substr(10, 2), body.substr(12, 2), body.substr(14, 9));
    auto wall = parse_rfc3339(rfc);
    if (!wall) {
        return bad("the date or time is out of range");
    }
    int64_t logical = 0;
    if (!parse_bounded(body.substr(23), std::numeric_limits<int32_t>::max(), logical)) {
        return bad("logical counter does not fit in 32 bits");
    }
    if (*wall < 0) {
        return bad("before 1970");
    }
    return hlc{*wall, static_cast<int32_t>(logical)};
}

result<hlc> hlc::parse_cursor(std::string_view text) {
    if (text.empty()) {
        return error{errc::invalid_argument, "empty cursor"};
    }
    if (text.find('.') != std::string_view::npos && text.find('-') == std::string_view::npos &&
        text.find(':') == std::string_view::npos) {
        return parse(text);
    }
    if (all_digits(text)) {
        int64_t wall = 0;
        if (!parse_bounded(text, std::numeric_limits<int64_t>::max(), wall)) {
            return bad_hlc(text, "does not fit in 64 bits");
        }
        return hlc{wall, 0};
    }
    auto nanos = parse_rfc3339(text);
    if (!nanos) {
        return error{errc::invalid_argument,
                     fmt::format("bad cursor \"{}\": expected an HLC timestamp "
                                 "(1701102296662969433.0000000000), nanoseconds since the epoch, "
                                 "or an RFC 3339 time (2024-09-11T16:33:35Z)",
                                 text)};
    }
    if (*nanos < 0) {
        return error{errc::invalid_argument,
                     fmt::format("bad cursor \"{}\": before 1970-01-01", text)};
    }
    return hlc{*nanos, 0};
}

std::string hlc::to_string() const {
    return fmt::format("{}.{:010}", wall_, logical_);
}

std::string hlc::to_file_name() const {
    const civil_time t = civil_from_unix_nanos(wall_);
    return fmt::format("{:04}{:02}{:02}{:02}{:02}{:02}{:09}{:010}", t.year, t.month, t.day, t.hour,
                       t.minute, t.second, t.nanos, logical_);
}

std::string hlc::to_rfc3339() const {
    return format_rfc3339_nanos_utc(wall_);
}

}  // namespace molt
