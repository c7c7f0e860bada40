#include "molt/common/duration.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;

TEST_CASE("duration: Go syntax", "[duration]") {
    CHECK(molt::parse_duration("250ms").value() == 250ms);
    CHECK(molt::parse_duration("1s").value() == 1s);
    CHECK(molt::parse_duration("1m30s").value() == 90s);
    CHECK(molt::parse_duration("1.5h").value() == 90min);
    CHECK(molt::parse_duration("2h45m").value() == 165min);
    CHECK(molt::parse_duration("-2us").value() == -2us);
    CHECK(molt::parse_duration("3\xc2\xb5s").value() == 3us);
    CHECK(molt::parse_duration("+10ns").value() == 10ns);
    CHECK(molt::parse_duration("0").value() == 0ns);
    CHECK(molt::parse_duration(".5s").value() == 500ms);
    CHECK(molt::parse_duration("1.s").value() == 1s);
    CHECK(molt::parse_duration("2562047h47m16.854775807s").value().count() == INT64_MAX);
    CHECK(molt::parse_duration("-2562047h47m16.854775808s").value().count() == INT64_MIN);
}

TEST_CASE("duration: malformed", "[duration]") {
    const std::pair<const char*, const char*> cases[] = {
        {"", "empty"},
        {"-", "empty"},
        {"10", "missing unit"},
        {"1x", "unknown unit \"x\""},
        {"1 s", "unknown unit \" s\""},
        {"s", "expected a number"},
        {"1s5", "missing unit"},
        {".s", "expected a number"},
        {"2562047h47m16.854775808s", "too large"},
        {"9999999999999999999h", "too large"},
    };
    for (const auto& [input, why] : cases) {
        INFO(input);
        auto parsed = molt::parse_duration(input);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.error().message() == std::string("bad duration \"") + input + "\": " + why +
                                              " (expected e.g. 250ms, 1s, 1m30s)");
    }
}

TEST_CASE("duration: formats as Go does and round trips", "[duration]") {
    CHECK(molt::format_duration(0ns) == "0s");
    CHECK(molt::format_duration(250ms) == "250ms");
    CHECK(molt::format_duration(1500us) == "1.5ms");
    CHECK(molt::format_duration(1500ns) == "1.5\xc2\xb5s");
    CHECK(molt::format_duration(90s) == "1m30s");
    CHECK(molt::format_duration(3600s + 2min + 3500ms) == "1h2m3.5s");
    CHECK(molt::format_duration(-30s) == "-30s");
    CHECK(molt::format_duration(24h) == "24h0m0s");
    for (const std::chrono::nanoseconds d : {1ns, 999ns, 1000ns, 12345678ns, 30000000000ns}) {
        CHECK(molt::parse_duration(molt::format_duration(d)).value() == d);
    }
    for (const std::chrono::nanoseconds d :
         {std::chrono::nanoseconds(61min), std::chrono::nanoseconds(1000h)}) {
        CHECK(molt::parse_duration(molt::format_duration(d)).value() == d);
    }
}
