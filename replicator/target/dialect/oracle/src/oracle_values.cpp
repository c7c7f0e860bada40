// Oracle type strings from the catalog, and changefeed values as the text Oracle's conversion
// functions read. Pure functions (oracle_values_test.cpp has the vectors).
#include <algorithm>
#include <cctype>
#include <cstdint>

#include <fmt/format.h>

#include "molt/common/integer_text.hpp"
#include "molt/common/log.hpp"
#include "molt/common/time_format.hpp"
#include "molt/replicator/dialect/oracle.hpp"

namespace molt::replicator::oracle {
namespace {

error refuse(std::string_view text, std::string_view why) {
    return {errc::invalid_argument,
            fmt::format("\"{}\": {}", log::sanitize(text.substr(0, 64)), why)};
}

bool digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The same instant in UTC (offset removed).
crdb_time to_utc(crdb_time t) {
    if (!t.offset_seconds || *t.offset_seconds == 0) {
        if (t.offset_seconds) {
            t.offset_seconds = 0;
        }
        return t;
    }
    const civil_time utc =
        civil_from_unix_seconds(days_from_civil(t.year, t.month, t.day) * 86400 + t.hour * 3600 +
                                t.minute * 60 + t.second - *t.offset_seconds);
    t.year = static_cast<int>(utc.year);
    t.month = utc.month;
    t.day = utc.day;
    t.hour = utc.hour;
    t.minute = utc.minute;
    t.second = utc.second;
    t.offset_seconds = 0;
    return t;
}

result<crdb_time> in_oracle_range(std::string_view text, crdb_time t) {
    if (t.year < 1 || t.year > 9999) {
        return refuse(text, "Oracle dates hold the years 1 to 9999 here");
    }
    return t;
}

std::string date_part(const crdb_time& t) {
    return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", t.year, t.month, t.day, t.hour,
                       t.minute, t.second);
}

// One signed component of a PostgreSQL-style interval ("-1", "+3").
std::optional<int64_t> signed_number(std::string_view s) {
    bool negative = false;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
        negative = s[0] == '-';
        s.remove_prefix(1);
    }
    if (!digits(s) || s.size() > 12) {
        return std::nullopt;
    }
    const auto n = parse_integer<int64_t>(s);
    if (!n) {
        return std::nullopt;
    }
    return negative ? -*n : *n;
}

struct interval_parts {
    int64_t months = 0;
    int64_t days = 0;
    int64_t nanos = 0;  // of the time of day part, signed
};

result<interval_parts> parse_interval(std::string_view text) {
    interval_parts out;
    std::vector<std::string_view> words;
    size_t at = 0;
    while (at < text.size()) {
        const size_t end = std::min(text.find(' ', at), text.size());
        if (end > at) {
            words.push_back(text.substr(at, end - at));
        }
        at = end + 1;
    }
    if (words.empty()) {
        return refuse(text, "not an interval");
    }
    for (size_t i = 0; i < words.size(); ++i) {
        const std::string_view w = words[i];
        if (w.find(':') != std::string_view::npos) {
            // [-]HH:MM:SS[.f]
            std::string_view clock = w;
            bool negative = false;
            if (clock[0] == '-' || clock[0] == '+') {
                negative = clock[0] == '-';
                clock.remove_prefix(1);
            }
            const size_t c1 = clock.find(':');
            const size_t c2 = clock.find(':', c1 + 1);
            if (c2 == std::string_view::npos) {
                return refuse(text, "not an interval (expected HH:MM:SS)");
            }
            std::string_view sec = clock.substr(c2 + 1);
            std::string_view frac;
            if (const size_t dot = sec.find('.'); dot != std::string_view::npos) {
                frac = sec.substr(dot + 1);
                sec = sec.substr(0, dot);
            }
            const std::string_view hh = clock.substr(0, c1);
            const std::string_view mm = clock.substr(c1 + 1, c2 - c1 - 1);
            if (!digits(hh) || hh.size() > 6 || !digits(mm) || !digits(sec) ||
                (!frac.empty() && (!digits(frac) || frac.size() > 9))) {
                return refuse(text, "not an interval (expected HH:MM:SS)");
            }
            int64_t fraction = frac.empty() ? 0 : *parse_integer<int64_t>(frac);
            for (size_t k = frac.size(); k < 9; ++k) {
                fraction *= 10;
            }
            const int64_t n =
                ((*parse_integer<int64_t>(hh) * 60 + *parse_integer<int64_t>(mm)) * 60 +
                 *parse_integer<int64_t>(sec)) *
                    1'000'000'000 +
                fraction;
            out.nanos += negative ? -n : n;
            continue;
        }
        const auto n = signed_number(w);
        if (!n || i + 1 >= words.size()) {
            return refuse(text, "not an interval");
        }
        const std::string_view unit = words[++i];
        if (unit == "year" || unit == "years") {
            out.months += *n * 12;
        } else if (unit == "mon" || unit == "mons") {
            out.months += *n;
        } else if (unit == "day" || unit == "days") {
            out.days += *n;
        } else {
            return refuse(text, fmt::format("unknown interval unit \"{}\"", log::sanitize(unit)));
        }
    }
    return out;
}

}  // namespace

std::string base_type(std::string_view data_type) {
    std::string out;
    bool in_parens = false;
    for (const char c : data_type) {
        if (c == '(') {
            in_parens = true;
        } else if (c == ')') {
            in_parens = false;
        } else if (!in_parens) {
            out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
    }
    return out;
}

std::string type_string(const catalog_column& c) {
    const std::string base = base_type(c.data_type);
    // National character types count characters and take no BYTE/CHAR qualifier.
    if ((base == "nvarchar2" || base == "nchar") && c.char_length) {
        return fmt::format("{}({})", c.data_type, *c.char_length);
    }
    if (c.char_used == "B" && c.data_length) {
        return fmt::format("{}({} BYTE)", c.data_type, *c.data_length);
    }
    if (c.char_used == "C" && c.char_length) {
        return fmt::format("{}({} CHAR)", c.data_type, *c.char_length);
    }
    // Types whose name already carries their precision: TIMESTAMP(6) ..., INTERVAL ...(2) ...
    if (c.data_type.find('(') != std::string::npos) {
        return c.data_type;
    }
    if (c.data_precision && c.data_scale && base == "number") {
        return fmt::format("{}({},{})", c.data_type, *c.data_precision, *c.data_scale);
    }
    if (c.data_precision && (base == "number" || base == "float")) {
        return fmt::format("{}({})", c.data_type, *c.data_precision);
    }
    if ((base == "raw" || base == "urowid") && c.data_length) {
        return fmt::format("{}({})", c.data_type, *c.data_length);
    }
    return c.data_type;
}

result<crdb_time> parse_crdb_time(std::string_view text) {
    if (text == "infinity" || text == "-infinity") {
        return refuse(text, "Oracle cannot store an infinite date or time");
    }
    crdb_time t;
    auto number = [&](size_t at, size_t n) -> std::optional<int> {
        if (at + n > text.size() || !digits(text.substr(at, n))) {
            return std::nullopt;
        }
        return parse_integer<int>(text.substr(at, n));
    };
    const auto y = number(0, 4);
    const auto mo = number(5, 2);
    const auto d = number(8, 2);
    if (!y || !mo || !d || text[4] != '-' || text[7] != '-' || *mo < 1 || *mo > 12 || *d < 1 ||
        *d > 31) {
        return refuse(text, "not a date (expected YYYY-MM-DD)");
    }
    t.year = *y;
    t.month = *mo;
    t.day = *d;
    if (text.size() == 10) {
        return t;
    }
    if (text[10] != 'T' && text[10] != ' ') {
        return refuse(text, "not a timestamp (expected YYYY-MM-DDTHH:MM:SS)");
    }
    const auto h = number(11, 2);
    const auto mi = number(14, 2);
    const auto s = number(17, 2);
    if (!h || !mi || !s || text[13] != ':' || text[16] != ':' || *h > 23 || *mi > 59 || *s > 59) {
        return refuse(text, "not a timestamp (expected YYYY-MM-DDTHH:MM:SS)");
    }
    t.hour = *h;
    t.minute = *mi;
    t.second = *s;
    size_t at = 19;
    if (at < text.size() && text[at] == '.') {
        size_t end = at + 1;
        while (end < text.size() && text[end] >= '0' && text[end] <= '9') {
            ++end;
        }
        const std::string_view frac = text.substr(at + 1, end - at - 1);
        if (frac.empty() || frac.size() > 9) {
            return refuse(text, "not a timestamp (1 to 9 fraction digits)");
        }
        int nanos = *parse_integer<int>(frac);
        for (size_t k = frac.size(); k < 9; ++k) {
            nanos *= 10;
        }
        t.nanos = nanos;
        at = end;
    }
    if (at == text.size()) {
        return t;
    }
    const std::string_view zone = text.substr(at);
    if (zone == "Z" || zone == "z") {
        t.offset_seconds = 0;
        return t;
    }
    // ±HH[:MM[:SS]]
    if ((zone[0] != '+' && zone[0] != '-') || zone.size() < 3) {
        return refuse(text, "not a time zone offset (expected Z or ±HH:MM)");
    }
    int parts[3] = {0, 0, 0};
    size_t part = 0;
    size_t i = 1;
    while (i < zone.size()) {
        if (part > 2 || i + 2 > zone.size() || !digits(zone.substr(i, 2))) {
            return refuse(text, "not a time zone offset (expected Z or ±HH:MM)");
        }
        parts[part++] = *parse_integer<int>(zone.substr(i, 2));
        i += 2;
        if (i < zone.size()) {
            if (zone[i] != ':') {
                return refuse(text, "not a time zone offset (expected Z or ±HH:MM)");
            }
            ++i;
        }
    }
    if (parts[0] > 15 || parts[1] > 59 || parts[2] > 59) {
        return refuse(text, "time zone offset out of range");
    }
    const int offset = parts[0] * 3600 + parts[1] * 60 + parts[2];
    t.offset_seconds = zone[0] == '-' ? -offset : offset;
    return t;
}

namespace {

// A changefeed time as UTC wall time (a zoneless one as it is), within Oracle's years.
result<crdb_time> utc_in_range(std::string_view crdb) {
    auto t = parse_crdb_time(crdb);
    if (!t) {
        return std::move(t).error();
    }
    return in_oracle_range(crdb, to_utc(*t));
}

}  // namespace

result<std::string> date_text(std::string_view crdb) {
    auto utc = utc_in_range(crdb);
    if (!utc) {
        return std::move(utc).error();
    }
    return date_part(*utc);
}

result<std::string> timestamp_text(std::string_view crdb) {
    auto utc = utc_in_range(crdb);
    if (!utc) {
        return std::move(utc).error();
    }
    return fmt::format("{}.{:09}", date_part(*utc), utc->nanos);
}

result<std::string> timestamp_tz_text(std::string_view crdb) {
    auto t = parse_crdb_time(crdb);
    if (!t) {
        return std::move(t).error();
    }
    // Oracle offsets are whole minutes: an offset with seconds keeps the instant, in UTC.
    auto in_range =
        in_oracle_range(crdb, t->offset_seconds.value_or(0) % 60 == 0 ? *t : to_utc(*t));
    if (!in_range) {
        return std::move(in_range).error();
    }
    const int offset = in_range->offset_seconds.value_or(0);
    const int magnitude = offset < 0 ? -offset : offset;
    return fmt::format("{}.{:09} {}{:02}:{:02}", date_part(*in_range), in_range->nanos,
                       offset < 0 ? '-' : '+', magnitude / 3600, magnitude % 3600 / 60);
}

result<std::string> interval_ds_text(std::string_view crdb) {
    auto p = parse_interval(crdb);
    if (!p) {
        return std::move(p).error();
    }
    if (p->months != 0) {
        return refuse(crdb, "has years or months, which an INTERVAL DAY TO SECOND cannot hold");
    }
    constexpr int64_t day = 86'400'000'000'000;
    // Days and time may have different signs ("1 day -01:00:00"): one sign for both.
    int64_t days = p->days + p->nanos / day;
    int64_t rest = p->nanos % day;
    if (days > 0 && rest < 0) {
        --days;
        rest += day;
    } else if (days < 0 && rest > 0) {
        ++days;
        rest -= day;
    }
    const bool negative = days < 0 || rest < 0;
    days = days < 0 ? -days : days;
    rest = rest < 0 ? -rest : rest;
    const int64_t seconds = rest / 1'000'000'000;
    return fmt::format("{}{} {:02}:{:02}:{:02}.{:09}", negative ? "-" : "", days, seconds / 3600,
                       seconds % 3600 / 60, seconds % 60, rest % 1'000'000'000);
}

result<std::string> interval_ym_text(std::string_view crdb) {
    auto p = parse_interval(crdb);
    if (!p) {
        return std::move(p).error();
    }
    if (p->days != 0 || p->nanos != 0) {
        return refuse(crdb,
                      "has days or a time of day, which an INTERVAL YEAR TO MONTH cannot hold");
    }
    const int64_t magnitude = p->months < 0 ? -p->months : p->months;
    return fmt::format("{}{}-{}", p->months < 0 ? "-" : "", magnitude / 12, magnitude % 12);
}

result<std::string> plain_number(std::string_view number) {
    const size_t e = number.find_first_of("eE");
    if (e == std::string_view::npos) {
        return std::string(number);
    }
    if (e + 1 >= number.size()) {
        return refuse(number, "not a number");
    }
    std::string_view mantissa = number.substr(0, e);
    const auto exponent =
        parse_integer<int>(number[e + 1] == '+' ? number.substr(e + 2) : number.substr(e + 1));
    bool negative = false;
    if (!mantissa.empty() && (mantissa[0] == '-' || mantissa[0] == '+')) {
        negative = mantissa[0] == '-';
        mantissa.remove_prefix(1);
    }
    const size_t dot = mantissa.find('.');
    std::string whole(mantissa.substr(0, dot));
    std::string frac(dot == std::string_view::npos ? "" : mantissa.substr(dot + 1));
    if (!exponent || *exponent > 400 || *exponent < -400 || !digits(whole) ||
        (!frac.empty() && !digits(frac))) {
        return refuse(number, "not a number");
    }
    std::string all = whole + frac;
    long point = static_cast<long>(whole.size()) + *exponent;  // digits before the point
    if (point <= 0) {
        all.insert(0, static_cast<size_t>(-point) + 1, '0');
        point = 1;
    } else if (point > static_cast<long>(all.size())) {
        all.append(static_cast<size_t>(point) - all.size(), '0');
    }
    std::string out = all.substr(0, static_cast<size_t>(point));
    std::string rest = all.substr(static_cast<size_t>(point));
    while (out.size() > 1 && out[0] == '0') {
        out.erase(0, 1);
    }
    while (!rest.empty() && rest.back() == '0') {
        rest.pop_back();
    }
    if (!rest.empty()) {
        out += "." + rest;
    }
    return (negative && out != "0" ? "-" : "") + out;
}

result<std::string> raw_hex(std::string_view text, bool uuid_allowed) {
    std::string hex;
    if (text.rfind("\\x", 0) == 0) {
        hex = std::string(text.substr(2));
    } else if (uuid_allowed && text.size() == 36 && text[8] == '-' && text[13] == '-' &&
               text[18] == '-' && text[23] == '-') {
        hex = std::string(text);
        hex.erase(std::remove(hex.begin(), hex.end(), '-'), hex.end());
    } else {
        return refuse(text, uuid_allowed ? "expected \\x-prefixed hex bytes or a UUID"
                                         : "expected \\x-prefixed hex bytes");
    }
    if (hex.size() % 2 != 0 || !std::all_of(hex.begin(), hex.end(), [](char c) {
            return std::isxdigit(static_cast<unsigned char>(c)) != 0;
        })) {
        return refuse(text, "not valid hex");
    }
    std::transform(hex.begin(), hex.end(), hex.begin(), [](char c) {
        return static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    });
    return hex;
}

}  // namespace molt::replicator::oracle
