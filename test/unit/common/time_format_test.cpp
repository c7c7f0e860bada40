#include "molt/common/time_format.hpp"

#include <catch2/catch.hpp>

// Reference instants were computed independently with GNU date, e.g.
// `date -u -d '2025-02-20T20:55:44Z' +%s` = 1740084944.

TEST_CASE("time_format: RFC 3339 with seconds and offset, as zerolog prints it", "[time]") {
    CHECK(molt::format_rfc3339_seconds(1740084944, -5 * 3600) == "2025-02-20T15:55:44-05:00");
    CHECK(molt::format_rfc3339_seconds(1740084944, 0) == "2025-02-20T20:55:44Z");
    CHECK(molt::format_rfc3339_seconds(1740084944, 5 * 3600 + 30 * 60) ==
          "2025-02-21T02:25:44+05:30");
    CHECK(molt::format_rfc3339_seconds(951825600, 0) == "2000-02-29T12:00:00Z");
    CHECK(molt::format_rfc3339_seconds(-1, 0) == "1969-12-31T23:59:59Z");
}

TEST_CASE("time_format: RFC 3339 with nanoseconds trims trailing zeros", "[time]") {
    CHECK(molt::format_rfc3339_nanos_utc(1726072415000000000) == "2024-09-11T16:33:35Z");
    CHECK(molt::format_rfc3339_nanos_utc(1726072415500000000) == "2024-09-11T16:33:35.5Z");
    CHECK(molt::format_rfc3339_nanos_utc(1726072415000000001) == "2024-09-11T16:33:35.000000001Z");
    CHECK(molt::format_rfc3339_nanos_utc(0) == "1970-01-01T00:00:00Z");
}

TEST_CASE("time_format: parses RFC 3339", "[time]") {
    CHECK(molt::parse_rfc3339("2024-09-11T16:33:35Z").value() == 1726072415000000000);
    CHECK(molt::parse_rfc3339("2024-09-11t16:33:35z").value() == 1726072415000000000);
    CHECK(molt::parse_rfc3339("2024-09-11 16:33:35Z").value() == 1726072415000000000);
    CHECK(molt::parse_rfc3339("2025-02-20T15:55:44-05:00").value() == 1740084944000000000);
    CHECK(molt::parse_rfc3339("2024-09-11T16:33:35.123456789Z").value() == 1726072415123456789);
    CHECK(molt::parse_rfc3339("2000-02-29T12:00:00Z").value() == 951825600000000000);
    CHECK(molt::parse_rfc3339("2262-04-11T23:47:16Z").value() == 9223372036000000000);
}

TEST_CASE("time_format: rejects malformed RFC 3339", "[time]") {
    const char* bad[] = {
        "",
        "2024-09-11",
        "2024-09-11T16:33:35",              // no zone
        "2024-09-11T16:33:35+0500",         // offset without colon
        "2024-13-11T16:33:35Z",             // month
        "2023-02-29T00:00:00Z",             // not a leap year
        "2024-09-11T24:00:00Z",             // hour
        "2024-09-11T16:33:35.Z",            // empty fraction
        "2024-09-11T16:33:35.1234567890Z",  // 10 fraction digits
        "2024-09-11T16:33:35Zjunk",
        "2024/09/11T16:33:35Z",
        "3000-01-01T00:00:00Z",  // beyond int64 nanoseconds
    };
    for (const char* text : bad) {
        INFO(text);
        auto parsed = molt::parse_rfc3339(text);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.error().message().rfind(std::string("bad RFC 3339 timestamp \"") + text, 0) ==
              0);
    }
}

TEST_CASE("time_format: civil conversion agrees with day counting across eras", "[time]") {
    // Walk one day at a time over the years int64 nanoseconds can hold (1678..2261) and check
    // that the conversions invert each other and that consecutive days are consecutive dates.
    int64_t previous_days = molt::days_from_civil(1677, 12, 31);
    for (int64_t year = 1678; year <= 2261; ++year) {
        for (int month = 1; month <= 12; ++month) {
            for (int day = 1; day <= 31; ++day) {
                const int64_t days = molt::days_from_civil(year, month, day);
                const molt::civil_time t =
                    molt::civil_from_unix_nanos(days * 86400 * 1'000'000'000LL);
                if (t.month != month) {
                    break;  // day does not exist in this month
                }
                REQUIRE(days == previous_days + 1);
                REQUIRE(t.year == year);
                REQUIRE(t.day == day);
                previous_days = days;
            }
        }
    }
}
