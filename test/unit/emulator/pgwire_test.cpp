// pgwire framing and messages, byte for byte as the PostgreSQL protocol documentation gives
// them (protocol 3.0, "Message Formats").
#include "molt/emulator/pgwire.hpp"

#include <catch2/catch.hpp>

using namespace molt;
using namespace molt::emulator::pgwire;
using namespace std::string_literals;

TEST_CASE("pgwire: frames come out whole however the bytes are cut", "[pgwire]") {
    const std::string stream = frame('\0', startup_body({{"user", "app"}, {"database", "db"}})) +
                               frame('Q', "SELECT 1\0"s) + frame('X', "");
    for (size_t cut = 1; cut <= stream.size(); ++cut) {
        frame_reader r(true);
        std::vector<message> got;
        for (size_t at = 0; at < stream.size(); at += cut) {
            r.feed(std::string_view(stream).substr(at, cut));
            for (;;) {
                auto m = r.next();
                REQUIRE(m);
                if (!*m) {
                    break;
                }
                if (got.empty()) {
                    r.end_startup();
                }
                got.push_back(std::move(**m));
            }
        }
        REQUIRE(got.size() == 3);
        CHECK(got[0].type == '\0');
        CHECK(got[1].type == 'Q');
        CHECK(got[1].body == "SELECT 1\0"s);
        CHECK(got[2].type == 'X');
        CHECK(got[2].body.empty());
        CHECK(r.buffered() == 0);  // nothing left over
    }
}

TEST_CASE("pgwire: bad lengths are refused, naming the message", "[pgwire]") {
    frame_reader tiny(false);
    tiny.feed("Q\0\0\0\x03"s);
    auto m = tiny.next();
    REQUIRE_FALSE(m);
    CHECK_THAT(m.error().message(), Catch::Contains("'Q' message declares length 3"));

    frame_reader huge(false, 1024);
    huge.feed("Q\x7f\xff\xff\xff"s);
    REQUIRE_FALSE(huge.next());

    frame_reader startup(true);
    startup.feed("\0\0\0\x04"s);
    REQUIRE_FALSE(startup.next());
}

TEST_CASE("pgwire: startup messages, SSL and cancel requests", "[pgwire]") {
    const std::string body = startup_body({{"user", "app"}, {"database", "appdb"}});
    CHECK(body == "\x00\x03\x00\x00user\0app\0database\0appdb\0\0"s);
    auto s = parse_startup(body);
    REQUIRE(s);
    CHECK(s->code == protocol_v3);
    REQUIRE(s->parameter("database") != nullptr);
    CHECK(*s->parameter("database") == "appdb");
    CHECK(s->parameter("options") == nullptr);

    // SSLRequest: length 8, code 80877103.
    frame_reader r(true);
    r.feed("\x00\x00\x00\x08\x04\xd2\x16\x2f"s);
    auto ssl = r.next();
    REQUIRE(ssl);
    REQUIRE(*ssl);
    auto parsed = parse_startup((*ssl)->body);
    REQUIRE(parsed);
    CHECK(parsed->code == ssl_request_code);

    CHECK_FALSE(parse_startup("\x00\x02\x00\x00"s));           // protocol 2.0
    CHECK_FALSE(parse_startup("\x00\x03\x00\x00user\0app"s));  // no closing NUL
    CHECK_FALSE(parse_startup("\x00\x03"s));                   // no code
}

TEST_CASE("pgwire: Query and Parse bodies", "[pgwire]") {
    auto q = parse_query("SHOW CLUSTER SETTING kv.rangefeed.enabled\0"s);
    REQUIRE(q);
    CHECK(*q == "SHOW CLUSTER SETTING kv.rangefeed.enabled");
    CHECK_FALSE(parse_query("SELECT 1"));
    CHECK_FALSE(parse_query("SELECT 1\0junk"s));

    auto p = parse_parse("s1\0SELECT $1\0\x00\x01\x00\x00\x00\x19"s);
    REQUIRE(p);
    CHECK(p->statement == "s1");
    CHECK(p->query == "SELECT $1");
    CHECK(p->param_types == std::vector<uint32_t>{25});
    CHECK_FALSE(parse_parse("\0SELECT 1\0\x00\x02\x00\x00\x00\x19"s));  // 2 declared, 1 sent
}

TEST_CASE("pgwire: server messages byte for byte", "[pgwire]") {
    CHECK(command_complete("SELECT 1") == "C\x00\x00\x00\x0dSELECT 1\0"s);
    CHECK(ready_for_query('I') == "Z\x00\x00\x00\x05I"s);
    CHECK(data_row({"ab"s, std::nullopt}) ==
          "D\x00\x00\x00\x10\x00\x02\x00\x00\x00\x02"
          "ab"
          "\xff\xff\xff\xff"s);
    CHECK(row_description({"version"}) ==
          "T\x00\x00\x00\x20\x00\x01version\0"
          "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x19\xff\xff\xff\xff\xff\xff\x00\x00"s);
    CHECK(error_response("ERROR", "42601", "at or near \"x\": syntax error") ==
          "E\x00\x00\x00\x38SERROR\0VERROR\0C42601\0Mat or near \"x\": syntax error\0\0"s);
    // A NUL in a message would end it early for the client: it is dropped.
    CHECK(command_complete("a\0b"s) == command_complete("ab"));
}
