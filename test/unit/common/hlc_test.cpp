#include "molt/common/hlc.hpp"

#include <algorithm>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

using molt::hlc;

TEST_CASE("hlc: parses the changefeed text form", "[hlc]") {
    auto t = hlc::parse("1701102296662969433.0000000000");
    REQUIRE(t);
    CHECK(t->wall() == 1701102296662969433);
    CHECK(t->logical() == 0);
    CHECK(t->to_string() == "1701102296662969433.0000000000");

    auto logical = hlc::parse("1701102311425045162.0000000002");
    REQUIRE(logical);
    CHECK(logical->logical() == 2);
    CHECK(logical->to_string() == "1701102311425045162.0000000002");

    // A zero logical part may be written "0"; the canonical form pads it.
    auto short_zero = hlc::parse("1.0");
    REQUIRE(short_zero);
    CHECK(short_zero->to_string() == "1.0000000000");

    // Synthetic timestamps of older clusters end in '?'.
    auto synthetic = hlc::parse("1629813621680097993.0000000001?");
    REQUIRE(synthetic);
    CHECK(*synthetic == hlc(1629813621680097993, 1));
}

TEST_CASE("hlc: round trips through text, file-name and cursor forms", "[hlc]") {
    std::mt19937_64 rng(20261126);
    std::uniform_int_distribution<int64_t> wall(0, INT64_MAX);
    std::uniform_int_distribution<int32_t> logical(0, INT32_MAX);
    for (int i = 0; i < 2000; ++i) {
        const hlc t(wall(rng), i % 3 == 0 ? 0 : logical(rng));
        auto text = hlc::parse(t.to_string());
        REQUIRE(text);
        CHECK(*text == t);
        auto file = hlc::parse_file_name(t.to_file_name());
        REQUIRE(file);
        CHECK(*file == t);
        auto cursor = hlc::parse_cursor(t.to_string());
        REQUIRE(cursor);
        CHECK(*cursor == t);
    }
}

TEST_CASE("hlc: file-name and RFC 3339 forms", "[hlc]") {
    const hlc t(1701102296662969433, 7);
    // 1701102296 s is 2023-11-27T16:24:56Z (checked with `date -u -d @1701102296`).
    CHECK(t.to_file_name() == "202311271624566629694330000000007");
    CHECK(t.to_rfc3339() == "2023-11-27T16:24:56.662969433Z");
    auto parsed = hlc::parse_file_name("202311271624566629694330000000007.RESOLVED");
    REQUIRE(parsed);
    CHECK(*parsed == t);
    CHECK(hlc(1726072415000000000, 0).to_rfc3339() == "2024-09-11T16:33:35Z");
}

TEST_CASE("hlc: cursor forms CockroachDB accepts", "[hlc]") {
    auto rfc = hlc::parse_cursor("2024-09-11T16:33:35Z");
    REQUIRE(rfc);
    CHECK(*rfc == hlc(1726072415000000000, 0));
    auto offset = hlc::parse_cursor("2024-09-11T12:33:35.5-04:00");
    REQUIRE(offset);
    CHECK(*offset == hlc(1726072415500000000, 0));
    auto decimal = hlc::parse_cursor("1759246920563173000.0000000000");
    REQUIRE(decimal);
    CHECK(decimal->wall() == 1759246920563173000);
    auto nanos = hlc::parse_cursor("1759246920563173000");
    REQUIRE(nanos);
    CHECK(*nanos == *decimal);
}

TEST_CASE("hlc: orders by wall time, then logical, as integers", "[hlc]") {
    // Lexical order would put "9..." after "10..."; integer order must not.
    auto a = hlc::parse("999999999.0000000000");
    auto b = hlc::parse("1000000000.0000000000");
    REQUIRE(a);
    REQUIRE(b);
    CHECK(*a < *b);
    CHECK(hlc(5, 1) > hlc(5, 0));
    CHECK(hlc(5, 1) < hlc(6, 0));
    CHECK(hlc(5, 1) == hlc(5, 1));

    std::vector<hlc> values = {hlc(3, 0), hlc(1, 2), hlc(1, 1), hlc(2, 9), hlc(1, 0)};
    std::sort(values.begin(), values.end());
    CHECK(values == std::vector<hlc>{hlc(1, 0), hlc(1, 1), hlc(1, 2), hlc(2, 9), hlc(3, 0)});
}

TEST_CASE("hlc: malformed text is refused with the reason", "[hlc]") {
    const std::string suffix =
        "; expected <nanoseconds>.<10-digit logical>, e.g. 1701102296662969433.0000000000";
    struct bad_case {
        const char* input;
        const char* why;
    };
    const bad_case cases[] = {
        {"", "no '.' between wall time and logical counter"},
        {"1701102296662969433", "no '.' between wall time and logical counter"},
        {"1.2.3", "more than one '.'"},
        {".0000000000", "wall time is not a non-negative integer"},
        {"-1.0000000000", "wall time is not a non-negative integer"},
        {"0x10.0000000000", "wall time is not a non-negative integer"},
        {"1e9.0000000000", "wall time is not a non-negative integer"},
        {" 1.0", "wall time is not a non-negative integer"},
        {"99999999999999999999.0000000000", "wall time does not fit in 64 bits"},
        {"1.", "logical counter is not a non-negative integer"},
        {"1.00000000x0", "logical counter is not a non-negative integer"},
        {"1.1", "logical counter must have exactly 10 digits"},
        {"1.00000000001", "logical counter must have exactly 10 digits"},
        {"1.9999999999", "logical counter does not fit in 32 bits"},
        {"1.0000000000??", "logical counter is not a non-negative integer"},
    };
    for (const bad_case& c : cases) {
        INFO("input: " << c.input);
        auto parsed = hlc::parse(c.input);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.error().message() ==
              std::string("bad HLC timestamp \"") + c.input + "\": " + c.why + suffix);
    }
}

TEST_CASE("hlc: malformed file names and cursors are refused", "[hlc]") {
    const std::string file_tail =
        "; expected 33 digits YYYYMMDDHHMMSS + 9-digit nanoseconds + 10-digit logical";
    auto short_name = hlc::parse_file_name("2023112716245666296943300000000");
    REQUIRE_FALSE(short_name);
    CHECK(short_name.error().message() ==
          "bad resolved file name \"2023112716245666296943300000000\": not 33 digits" + file_tail);
    auto bad_month = hlc::parse_file_name("202313271624566629694330000000007");
    REQUIRE_FALSE(bad_month);
    CHECK(bad_month.error().message() ==
          "bad resolved file name "
          "\"202313271624566629694330000000007\": the date or time "
          "is out of range" +
              file_tail);
    auto cursor = hlc::parse_cursor("yesterday");
    REQUIRE_FALSE(cursor);
    CHECK(cursor.error().message() ==
          "bad cursor \"yesterday\": expected an HLC timestamp (1701102296662969433.0000000000), "
          "nanoseconds since the epoch, or an RFC 3339 time (2024-09-11T16:33:35Z)");
    auto before_epoch = hlc::parse_cursor("1969-12-31T23:59:59Z");
    REQUIRE_FALSE(before_epoch);
    CHECK(before_epoch.error().message() ==
          "bad cursor \"1969-12-31T23:59:59Z\": before 1970-01-01");
    CHECK_FALSE(hlc::parse_cursor(""));
}

TEST_CASE("hlc: next() is the smallest later timestamp, the logical counter carries into wall",
          "[hlc]") {
    CHECK(hlc(5, 0).next() == hlc(5, 1));
    CHECK(hlc(5, 7).next() == hlc(5, 8));
    // At CockroachDB's int32 limit the counter cannot grow: the next timestamp is the next
    // nanosecond, logical 0 — still strictly later, never a negative (wrapped) counter.
    constexpr int32_t max_logical = std::numeric_limits<int32_t>::max();
    const hlc at_max(1701102296662969433, max_logical);
    CHECK(at_max.next() == hlc(1701102296662969434, 0));
    CHECK(at_max < at_max.next());
    CHECK(at_max.next().logical() >= 0);
    const auto reparsed = hlc::parse(at_max.next().to_string());
    REQUIRE(reparsed);
    CHECK(*reparsed == at_max.next());
    // The very last representable timestamp has no successor: next() returns it unchanged.
    const hlc last(std::numeric_limits<int64_t>::max(), max_logical);
    CHECK(last.next() == last);
}
