#include "molt/emulator/rich_values.hpp"

#include <array>

#include <fmt/format.h>

#include "molt/common/time_format.hpp"
#include "molt/emulator/generator.hpp"
#include "molt/proto/json.hpp"

namespace molt::emulator {
namespace {

using proto::json;
using proto::sql_type;

constexpr int64_t nanos_per_second = 1'000'000'000;

// Pieces of text: ASCII that needs quoting, 2-, 3- and 4-byte UTF-8, an e followed by a
// combining acute accent (next to the precomposed é), a ZWJ sequence, a flag, right-to-left
// scripts, zero-width and no-break spaces, and words that look like SQL NULL.
constexpr std::array<const char*, 34> pieces = {
    "a",      "Z",      "7",    " ",        "'",       "\"", "\\",    "\n",    "\t",
    "%",      "_",      "<&>",  "é",        "e\u0301", "ñ",  "ß",     "Ω",     "中",
    "日本語", "🦀",   "😀",    "👩\u200d💻", "🇩🇪",      "𝄞",  "مرحبا", "עברית", "ก",
    "\u200b", "\u00a0", "null", "NULL",     "😀\u0301", "Ä",  "ﬁ"};

bool chance(std::mt19937_64& rng, int one_in) {
    return uniform(rng, 1, one_in) == 1;
}

std::string pieces_text(std::mt19937_64& rng, int count) {
    std::string s;
    for (int i = 0; i < count; ++i) {
        s += pieces[uniform<size_t>(rng, 0, pieces.size() - 1)];
    }
    return s;
}

// ".123456789" with trailing zeros trimmed; "" for a whole second.
std::string nanos_fraction(int nanos) {
    if (nanos == 0) {
        return "";
    }
    std::string f = fmt::format(".{:09}", nanos);
    while (f.back() == '0') {
        f.pop_back();
    }
    return f;
}

int64_t unix_nanos(int year, int month, int day) {
    return days_from_civil(year, month, day) * 86'400 * nanos_per_second;
}

// Nanoseconds within a second: whole seconds, whole microseconds, the last nanosecond before
// the next second (which PostgreSQL rounds up into it), or any, never a tie at 500 ns.
int64_t random_nanos(std::mt19937_64& rng) {
    switch (uniform(rng, 0, 5)) {
    case 0: return 0;
    case 1: return uniform<int64_t>(rng, 0, 999'999) * 1000;
    case 2: return 999'999'999;
    default: {
        const int64_t n = uniform<int64_t>(rng, 0, 999'999'999);
        return n % 1000 == 500 ? n + 1 : n;
    }
    }
}

std::string civil_text(int64_t nanos) {
    const civil_time t = civil_from_unix_nanos(nanos);
    return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}{}", t.year, t.month, t.day, t.hour,
                       t.minute, t.second, nanos_fraction(t.nanos));
}

json rich_json_value(std::mt19937_64& rng, int depth);

json json_scalar(std::mt19937_64& rng) {
    // Numbers stay in the plain form (no exponent): PostgreSQL prints 1e2 as 100, CockroachDB as
    // 1E+2, so an exponent would be a difference of text, not of value.
    static constexpr std::array<const char*, 9> numbers = {
        "0",    "-17",  "3.25", "9007199254740993", "-0.001", "123456789012345678901234567890",
        "1.50", "-2.5", "42"};
    switch (uniform(rng, 0, 5)) {
    case 0: return json::string(pieces_text(rng, uniform(rng, 0, 6)));
    case 1: return json::number(numbers[uniform<size_t>(rng, 0, numbers.size() - 1)]);
    case 2: return json::number(uniform<int64_t>(rng, -1'000'000, 1'000'000));
    case 3: return json::boolean(true);
    case 4: return json::boolean(false);
    default: return json::null();
    }
}

json rich_json_value(std::mt19937_64& rng, int depth) {
    const int kind = depth >= 3 ? 0 : uniform(rng, 0, 3);
    if (kind <= 1) {
        return json_scalar(rng);
    }
    const int n = uniform(rng, 0, 4);
    if (kind == 2) {
        json a = json::array();
        for (int i = 0; i < n; ++i) {
            a.items().push_back(rich_json_value(rng, depth + 1));
        }
        return a;
    }
    json o = json::object();
    for (int i = 0; i < n; ++i) {
        o.set(fmt::format("{}{}", pieces_text(rng, uniform(rng, 0, 2)), i),
              rich_json_value(rng, depth + 1));
    }
    return o;
}

}  // namespace

std::string rich_text(std::mt19937_64& rng) {
    return chance(rng, 6) ? "" : pieces_text(rng, uniform(rng, 1, 12));
}

std::string long_text(std::mt19937_64& rng) {
    // Around 64 KiB; 1 in 100 of megabytes (CockroachDB sends a row as large as it is).
    const size_t length = chance(rng, 100) ? uniform<size_t>(rng, 1'000'000, 3'000'000)
                                           : uniform<size_t>(rng, 60'000, 70'000);
    std::string s;
    while (s.size() < length) {
        s += pieces[uniform<size_t>(rng, 0, pieces.size() - 1)];
    }
    return s;
}

std::string rich_json(std::mt19937_64& rng) {
    // Top-level: a scalar (each kind, JSON null included), or an array or object.
    switch (uniform(rng, 0, 4)) {
    case 0: return proto::to_crdb_text(json_scalar(rng));
    case 1: return "[]";
    case 2: return "{}";
    default: return proto::to_crdb_text(rich_json_value(rng, 0));
    }
}

std::string rich_date(std::mt19937_64& rng) {
    static constexpr std::array<const char*, 8> edges = {"1969-12-31", "1970-01-01", "1000-01-01",
                                                         "9999-12-31", "1900-02-28", "2000-02-29",
                                                         "2100-02-28", "2104-02-29"};
    switch (uniform(rng, 0, 3)) {
    case 0: return edges[uniform<size_t>(rng, 0, edges.size() - 1)];
    case 1:
        return fmt::format("{:04}-{:02}-{:02}", uniform(rng, 1000, 1969), uniform(rng, 1, 12),
                           uniform(rng, 1, 28));
    default:
        return fmt::format("{:04}-{:02}-{:02}", uniform(rng, 2101, 9999), uniform(rng, 1, 12),
                           uniform(rng, 1, 28));
    }
}

std::string rich_timestamp(std::mt19937_64& rng, bool with_zone, bool portable) {
    // MySQL's TIMESTAMP (a TIMESTAMPTZ there) holds 1970-01-01 00:00:01 to 2038-01-19 03:14:07 UTC.
    const bool narrow = with_zone && portable;
    const int64_t lo = narrow ? unix_nanos(1970, 1, 2) : unix_nanos(1900, 1, 1);
    const int64_t hi = narrow ? unix_nanos(2038, 1, 18) : unix_nanos(2200, 12, 31);
    const int64_t seconds = uniform<int64_t>(rng, lo / nanos_per_second, hi / nanos_per_second);
    const int64_t utc = seconds * nanos_per_second + random_nanos(rng);
    if (!with_zone) {
        return civil_text(utc);
    }
    // PostgreSQL's offsets as it prints them: hours, or hours and minutes.
    static constexpr std::array<std::pair<int, const char*>, 9> offsets = {{{0, "+00"},
                                                                            {19800, "+05:30"},
                                                                            {-28800, "-08"},
                                                                            {50400, "+14"},
                                                                            {-43200, "-12"},
                                                                            {20700, "+05:45"},
                                                                            {-12600, "-03:30"},
                                                                            {32400, "+09"},
                                                                            {-34200, "-09:30"}}};
    const auto& [offset, text] = offsets[uniform<size_t>(rng, 0, offsets.size() - 1)];
    return civil_text(utc + offset * nanos_per_second) + text;
}

std::string rich_decimal(const column_spec& c, std::mt19937_64& rng) {
    // Unconstrained DECIMAL is DECIMAL(38,10) on MySQL: keep to what that holds.
    const int scale = c.precision > 0 ? c.scale : 10;
    const int integer_digits = c.precision > 0 ? c.precision - c.scale : 28;
    const std::string zeros(static_cast<size_t>(scale), '0');
    const std::string fraction = scale > 0 ? "." : "";
    switch (uniform(rng, 0, 7)) {
    case 0:
    case 1: {
        const std::string nines =
            (integer_digits > 0 ? std::string(static_cast<size_t>(integer_digits), '9') : "0") +
            fraction + std::string(static_cast<size_t>(scale), '9');
        return (uniform(rng, 0, 1) == 0 ? "-" : "") + nines;
    }
    case 2: return (uniform(rng, 0, 1) == 0 ? "-0" : "0") + fraction + zeros;
    case 3:
        if (scale > 0) {
            return (uniform(rng, 0, 1) == 0 ? "-0." : "0.") + zeros.substr(1) + "1";
        }
        return "1";
    default: return *random_value(c, rng, true);
    }
}

std::string unique_text(uint64_t serial, std::mt19937_64& rng) {
    return fmt::format("user{}.{:04x}@example.com", serial, uniform(rng, 0, 0xFFFF));
}

std::optional<std::string> rich_value(const column_spec& c, std::mt19937_64& rng, bool portable) {
    if (c.family.array) {
        return random_value(c, rng, portable);
    }
    switch (c.family.base) {
    case sql_type::string:
        if (is_long_text(c) && chance(rng, 40)) {
            return long_text(rng);
        }
        return rich_text(rng);
    case sql_type::jsonb: return rich_json(rng);
    case sql_type::date: return rich_date(rng);
    case sql_type::timestamp: return rich_timestamp(rng, false, portable);
    case sql_type::timestamptz: return rich_timestamp(rng, true, portable);
    case sql_type::decimal: return rich_decimal(c, rng);
    default: return random_value(c, rng, portable);
    }
}

}  // namespace molt::emulator
