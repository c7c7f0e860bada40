#include "molt/common/duration.hpp"

#include <cstdint>

#include <fmt/format.h>

#include "molt/common/log.hpp"

namespace molt {
namespace {

struct unit {
    std::string_view name;
    int64_t nanos;
};

constexpr unit units[] = {{"ns", 1},
                          {"us", 1'000},
                          {"\xc2\xb5s", 1'000},  // U+00B5 micro sign
                          {"\xce\xbcs", 1'000},  // U+03BC Greek mu
                          {"ms", 1'000'000},
                          {"s", 1'000'000'000},
                          {"m", 60'000'000'000},
                          {"h", 3'600'000'000'000}};

error bad_duration(std::string_view text, std::string_view why) {
    return {errc::invalid_argument,
            fmt::format("bad duration \"{}\": {} (expected e.g. 250ms, 1s, 1m30s)",
                        log::sanitize(text), why)};
}

// Appends the fraction of v/scale with trailing zeros trimmed, like Go's fmtFrac.
std::string with_fraction(uint64_t v, uint64_t scale, int digits) {
    std::string out = std::to_string(v / scale);
    uint64_t frac = v % scale;
    if (frac != 0) {
        std::string f = fmt::format("{:0{}}", frac, digits);
        while (!f.empty() && f.back() == '0') {
            f.pop_back();
        }
        out += '.' + f;
    }
    return out;
}

}  // namespace

result<std::chrono::nanoseconds> parse_duration(std::string_view text) {
    std::string_view s = text;
    bool negative = false;
    if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
        negative = s.front() == '-';
        s.remove_prefix(1);
    }
    if (s == "0") {
        return std::chrono::nanoseconds(0);
    }
    if (s.empty()) {
        return bad_duration(text, "empty");
    }
    // Accumulate in unsigned 64-bit; the magnitude may reach 2^63 for the negative minimum.
    uint64_t total = 0;
    constexpr uint64_t limit = uint64_t{1} << 63;
    while (!s.empty()) {
        uint64_t whole = 0;
        size_t i = 0;
        bool overflow = false;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            if (whole > (limit - static_cast<uint64_t>(s[i] - '0')) / 10) {
                overflow = true;
            }
            whole = whole * 10 + static_cast<uint64_t>(s[i] - '0');
            ++i;
        }
        const bool had_whole = i > 0;
        uint64_t frac = 0;
        uint64_t frac_scale = 1;
        bool had_frac = false;
        if (i < s.size() && s[i] == '.') {
            ++i;
            while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
                had_frac = true;
                if (frac_scale < 1'000'000'000'000'000'000ULL) {  // extra digits cannot matter
                    frac = frac * 10 + static_cast<uint64_t>(s[i] - '0');
                    frac_scale *= 10;
                }
                ++i;
            }
        }
        if (!had_whole && !had_frac) {
            return bad_duration(text, "expected a number");
        }
        if (overflow) {
            return bad_duration(text, "too large");
        }
        size_t u = i;
        while (u < s.size() && s[u] != '.' && (s[u] < '0' || s[u] > '9')) {
            ++u;
        }
        const std::string_view unit_name = s.substr(i, u - i);
        if (unit_name.empty()) {
            return bad_duration(text, "missing unit");
        }
        const unit* found = nullptr;
        for (const unit& candidate : units) {
            if (candidate.name == unit_name) {
                found = &candidate;
            }
        }
        if (found == nullptr) {
            return bad_duration(text, fmt::format("unknown unit \"{}\"", log::sanitize(unit_name)));
        }
        const auto scale = static_cast<uint64_t>(found->nanos);
        if (whole > limit / scale) {
            return bad_duration(text, "too large");
        }
        uint64_t part = whole * scale;
        // The fractional part, rounded down as Go does.
        part += static_cast<uint64_t>(static_cast<long double>(frac) * scale / frac_scale);
        if (part > limit || total > limit - part) {
            return bad_duration(text, "too large");
        }
        total += part;
        s.remove_prefix(u);
    }
    if (!negative && total == limit) {
        return bad_duration(text, "too large");
    }
    const int64_t signed_total =
        negative ? static_cast<int64_t>(0 - total) : static_cast<int64_t>(total);
    return std::chrono::nanoseconds(signed_total);
}

std::string format_duration(std::chrono::nanoseconds d) {
    const int64_t n = d.count();
    if (n == 0) {
        return "0s";
    }
    const bool negative = n < 0;
    const uint64_t v = negative ? 0 - static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
    std::string out;
    if (v < 1'000) {
        out = std::to_string(v) + "ns";
    } else if (v < 1'000'000) {
        out = with_fraction(v, 1'000, 3) + "\xc2\xb5s";
    } else if (v < 1'000'000'000) {
        out = with_fraction(v, 1'000'000, 6) + "ms";
    } else {
        const uint64_t hours = v / 3'600'000'000'000ULL;
        const uint64_t minutes = v / 60'000'000'000ULL % 60;
        const uint64_t seconds_nanos = v % 60'000'000'000ULL;
        if (hours > 0) {
            out += std::to_string(hours) + "h";
        }
        if (hours > 0 || minutes > 0) {
            out += std::to_string(minutes) + "m";
        }
        out += with_fraction(seconds_nanos, 1'000'000'000, 9) + "s";
    }
    return negative ? "-" + out : out;
}

}  // namespace molt
