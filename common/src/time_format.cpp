#include "molt/common/time_format.hpp"

#include <ctime>

#include <fmt/format.h>

namespace molt {
namespace {

constexpr int64_t nanos_per_second = 1'000'000'000;
constexpr int64_t seconds_per_day = 86'400;

int64_t floor_div(int64_t a, int64_t b) noexcept {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) {
        --q;
    }
    return q;
}

bool is_leap(int64_t year) noexcept {
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int days_in_month(int64_t year, int month) noexcept {
    static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

// Parses exactly `count` ASCII digits at `pos`; returns -1 when they are not all digits.
int64_t read_digits(std::string_view text, size_t pos, size_t count) noexcept {
    if (pos + count > text.size()) {
        return -1;
    }
    int64_t value = 0;
    for (size_t i = pos; i < pos + count; ++i) {
        if (text[i] < '0' || text[i] > '9') {
            return -1;
        }
        value = value * 10 + (text[i] - '0');
    }
    return value;
}

error bad_time(std::string_view text, std::string_view why) {
    return {errc::invalid_argument,
            fmt::format("bad RFC 3339 timestamp \"{}\": {} (expected e.g. 2024-09-11T16:33:35Z)",
                        text, why)};
}

}  // namespace

// Howard Hinnant's days_from_civil algorithm (public domain description), era-based.
int64_t days_from_civil(int64_t year, int month, int day) noexcept {
    year -= month <= 2 ? 1 : 0;
    const int64_t era = floor_div(year, 400);
    const int64_t yoe = year - era * 400;
    const int64_t mp = (month + 9) % 12;
    const int64_t doy = (153 * mp + 2) / 5 + day - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

civil_time civil_from_unix_nanos(int64_t unix_nanos) noexcept {
    const int64_t seconds = floor_div(unix_nanos, nanos_per_second);
    civil_time out = civil_from_unix_seconds(seconds);
    out.nanos = static_cast<int>(unix_nanos - seconds * nanos_per_second);
    return out;
}

civil_time civil_from_unix_seconds(int64_t seconds) noexcept {
    const int64_t days = floor_div(seconds, seconds_per_day);
    const int64_t sod = seconds - days * seconds_per_day;

    const int64_t z = days + 719468;
    const int64_t era = floor_div(z, 146097);
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    civil_time out;
    out.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
    out.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
    out.year = yoe + era * 400 + (out.month <= 2 ? 1 : 0);
    out.hour = static_cast<int>(sod / 3600);
    out.minute = static_cast<int>(sod % 3600 / 60);
    out.second = static_cast<int>(sod % 60);
    return out;
}

std::string format_rfc3339_seconds(int64_t unix_seconds, int utc_offset_seconds) {
    const civil_time t =
        civil_from_unix_nanos((unix_seconds + utc_offset_seconds) * nanos_per_second);
    std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", t.year, t.month, t.day,
                                  t.hour, t.minute, t.second);
    if (utc_offset_seconds == 0) {
        out += 'Z';
    } else {
        const int abs_offset = utc_offset_seconds < 0 ? -utc_offset_seconds : utc_offset_seconds;
        out += fmt::format("{}{:02}:{:02}", utc_offset_seconds < 0 ? '-' : '+', abs_offset / 3600,
                           abs_offset % 3600 / 60);
    }
    return out;
}

std::string format_rfc3339_nanos_utc(int64_t unix_nanos) {
    const civil_time t = civil_from_unix_nanos(unix_nanos);
    std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", t.year, t.month, t.day,
                                  t.hour, t.minute, t.second);
    if (t.nanos != 0) {
        std::string fraction = fmt::format("{:09}", t.nanos);
        while (fraction.back() == '0') {
            fraction.pop_back();
        }
        out += '.';
        out += fraction;
    }
    out += 'Z';
    return out;
}

result<int64_t> parse_rfc3339(std::string_view text) {
    // YYYY-MM-DDTHH:MM:SS is 19 characters; a zone designator must follow.
    const int64_t year = read_digits(text, 0, 4);
    const int64_t month = read_digits(text, 5, 2);
    const int64_t day = read_digits(text, 8, 2);
    const int64_t hour = read_digits(text, 11, 2);
    const int64_t minute = read_digits(text, 14, 2);
    const int64_t second = read_digits(text, 17, 2);
    if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0 ||
        text[4] != '-' || text[7] != '-' || text[13] != ':' || text[16] != ':') {
        return bad_time(text, "not in the form YYYY-MM-DDTHH:MM:SS");
    }
    if (text[10] != 'T' && text[10] != 't' && text[10] != ' ') {
        return bad_time(text, "date and time must be separated by 'T'");
    }
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, static_cast<int>(month)) ||
        hour > 23 || minute > 59 || second > 59) {
        return bad_time(text, "a date or time field is out of range");
    }
    size_t pos = 19;
    int64_t nanos = 0;
    if (pos < text.size() && text[pos] == '.') {
        ++pos;
        size_t digits = 0;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
            if (digits == 9) {
                return bad_time(text, "more than 9 fractional digits");
            }
            nanos = nanos * 10 + (text[pos] - '0');
            ++digits;
            ++pos;
        }
        if (digits == 0) {
            return bad_time(text, "empty fraction after '.'");
        }
        for (size_t i = digits; i < 9; ++i) {
            nanos *= 10;
        }
    }
    int64_t offset = 0;
    if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
        ++pos;
    } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
        const int64_t oh = read_digits(text, pos + 1, 2);
        const int64_t om = read_digits(text, pos + 4, 2);
        if (oh < 0 || om < 0 || text[pos + 3] != ':' || oh > 23 || om > 59) {
            return bad_time(text, "bad UTC offset (expected ±HH:MM)");
        }
        offset = (oh * 3600 + om * 60) * (text[pos] == '-' ? -1 : 1);
        pos += 6;
    } else {
        return bad_time(text, "missing time zone (Z or ±HH:MM)");
    }
    if (pos != text.size()) {
        return bad_time(text, "unexpected characters after the time zone");
    }
    const int64_t days = days_from_civil(year, static_cast<int>(month), static_cast<int>(day));
    const int64_t seconds = days * seconds_per_day + hour * 3600 + minute * 60 + second - offset;
    // int64 nanoseconds end in 2262; refuse what would overflow.
    int64_t total = 0;
    if (__builtin_mul_overflow(seconds, nanos_per_second, &total) ||
        __builtin_add_overflow(total, nanos, &total)) {
        return bad_time(text, "outside the representable range (1677-09-21 to 2262-04-11)");
    }
    return total;
}

int local_utc_offset(int64_t unix_seconds) noexcept {
    const std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm local{};
    if (localtime_r(&t, &local) == nullptr) {
        return 0;
    }
    return static_cast<int>(local.tm_gmtoff);
}

}  // namespace molt
