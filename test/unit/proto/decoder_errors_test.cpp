#include <string>

#include <catch2/catch.hpp>

#include "molt/proto/decoder.hpp"

using molt::errc;
using molt::proto::decode_limits;
using molt::proto::decode_webhook;

namespace {

constexpr const char* hlc_tail =
    "; expected <nanoseconds>.<10-digit logical>, e.g. 1701102296662969433.0000000000";

struct bad_case {
    std::string body;
    std::string message;
    errc code = errc::parse_error;
};

std::string at(const std::string& body, std::string_view needle, size_t from = 0) {
    const size_t pos = body.find(needle, from);
    REQUIRE(pos != std::string::npos);
    return std::to_string(pos);
}

std::string body_at(size_t offset, std::string_view what) {
    return "invalid request body at byte " + std::to_string(offset) + ": " + std::string(what);
}
std::string body_at(const std::string& body, std::string_view needle, std::string_view what) {
    return "invalid request body at byte " + at(body, needle) + ": " + std::string(what);
}

// One message in a payload; `fields` replaces the message's contents.
std::string one(std::string_view fields) {
    return "{\"payload\":[{" + std::string(fields) + "}]}";
}
const std::string good_fields =
    R"("after": {"id": 1}, "key": [1], "topic": "t", "updated": "1.0000000000")";
const std::string good = "{" + good_fields + "}";

std::string msg0(const std::string& body, std::string_view what, std::string_view needle = "[{",
                 size_t shift = 1) {
    return "message 0 (byte " + std::to_string(body.find(needle) + shift) +
           "): " + std::string(what);
}

std::vector<bad_case> cases() {
    std::vector<bad_case> c;
    auto add = [&](std::string body, std::string message, errc code = errc::parse_error) {
        c.push_back({std::move(body), std::move(message), code});
    };
    const std::string object_shape =
        "the body must be a JSON object ({\"payload\":[...]} or {\"resolved\":\"...\"})";
    // ---- body shape
    add("nope", body_at(0, object_shape));
    add("[]", body_at(0, object_shape));
    add("{", body_at(1, "unexpected end of input, expected a string"));
    {
        std::string b = "{\"payload\":[" + good;
        add(b, body_at(b.size(), "unexpected end of input, expected ',' or ']' after a message"));
    }
    {
        std::string b = "{\"payload\":[" + good + "]";
        add(b, body_at(b.size(), "unexpected end of input, expected ',' or '}' after a field"));
    }
    {
        std::string b = "{\"payload\":[" + good + "]}}";
        add(b, body_at(b.size() - 1, "unexpected data after the JSON object"));
    }
    {
        std::string b = "{\"payload\":[" + good + "],\"length\":2}";
        add(b, body_at(b.find(":2}") + 1, "\"length\" is 2 but \"payload\" holds 1 message"));
    }
    {
        std::string b = "{\"payload\":[" + good + "," + good + "],\"length\":1}";
        add(b, body_at(b.find(":1}") + 1, "\"length\" is 1 but \"payload\" holds 2 messages"));
    }
    for (const std::string bad_length : {"-1", "\"1\"", "1.5", "1e2", "null"}) {
        std::string b = "{\"payload\":[" + good + "],\"length\":" + bad_length + "}";
        add(b, body_at(b.find(":" + bad_length) + 1, "\"length\" must be a non-negative integer"));
    }
    {
        std::string b = "{\"payload\":[" + good + "],\"resolved\":\"1.0000000000\"}";
        add(b, body_at(0,
                       "the body mixes rows (\"payload\") and a resolved timestamp; "
                       "CockroachDB sends them in separate requests"));
    }
    add("{}", body_at(0, "neither \"payload\" nor \"resolved\" is present"));
    add("{\"length\":0,\"resolved\":\"1.0000000000\"}",
        body_at(10, "\"length\" without \"payload\""));
    add("{\"payload\":{}}", body_at(11, "\"payload\" must be an array of messages"));
    add("{\"payload\":[1]}", "message 0 (byte 12): a message must be a JSON object");
    add("{\"payload\":[],\"payload\":[]}", body_at(24, "\"payload\" appears twice"));
    add("{\"resolved\":5}", body_at(12, "\"resolved\" must be a string"));
    add("{\"resolved\":\"abc\"}",
        body_at(12,
                std::string("bad \"resolved\": bad HLC timestamp \"abc\": no '.' between wall time "
                            "and logical counter") +
                    hlc_tail));
    {
        std::string b =
            "{\"resolved\":\"1.0000000000\",\"__crdb__\":{\"resolved\":\"1.0000000000\"}}";
        add(b, body_at(b.rfind("\"1.0"), "\"resolved\" appears twice"));
    }
    add("{\"__crdb__\":5}", body_at(12, "\"__crdb__\" must be an object"));

    // ---- message fields
    {
        std::string b = one(R"("after": {"id": 1}, "key": [1], "topic": "t")");
        add(b, msg0(b,
                    "missing \"updated\": create the changefeed WITH updated, so that every "
                    "message carries its timestamp"));
    }
    {
        std::string b = one(R"("after": {"id": 1}, "key": [1], "updated": "1.0000000000")");
        add(b, msg0(b,
                    "missing \"topic\": the message does not name its table (webhook "
                    "changefeeds put it in every message)"));
    }
    {
        std::string b =
            one(R"("after": {"id": 1}, "key": [1], "topic": "", "updated": "1.0000000000")");
        add(b, msg0(b, "empty \"topic\""));
    }
    {
        std::string b = one(R"("after": {"id": 1}, "topic": "t", "updated": "1.0000000000")");
        add(b, msg0(b, "missing \"key\": the primary key of the row is required"));
    }
    {
        std::string b =
            one(R"("after": {"id": 1}, "key": [], "topic": "t", "updated": "1.0000000000")");
        add(b, msg0(b, "empty \"key\": the primary key of the row is required"));
    }
    {
        std::string b =
            one(R"("after": {"id": 1}, "key": 1, "topic": "t", "updated": "1.0000000000")");
        add(b, msg0(b, "\"key\" must be an array of primary key values", "1, \"topic", 0));
    }
    {
        std::string b =
            one(R"("after": {"id": 1}, "key": [1], "topic": 7, "updated": "1.0000000000")");
        add(b, msg0(b, "\"topic\" must be a string", "7,", 0));
    }
    {
        std::string b = one(R"("after": {"id": 1}, "key": [1], "topic": "t", "updated": 1.0)");
        add(b, msg0(b, "\"updated\" must be a string", "1.0}", 0));
    }
    {
        std::string b = one(R"("after": {"id": 1}, "key": [1], "topic": "t", "updated": "1.5")");
        add(b, msg0(b,
                    std::string("bad \"updated\": bad HLC timestamp \"1.5\": logical counter must "
                                "have exactly 10 digits") +
                        hlc_tail,
                    "\"1.5\"", 0));
    }
    {
        std::string b = one(good_fields + R"(, "mvcc_timestamp": "x.0000000000")");
        add(b, msg0(b,
                    std::string("bad \"mvcc_timestamp\": bad HLC timestamp \"x.0000000000\": wall "
                                "time is not a non-negative integer") +
                        hlc_tail,
                    "\"x.", 0));
    }
    {
        std::string b = one(R"("after": [1], "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, msg0(b, "\"after\" must be an object or null", "[1],", 0));
    }
    {
        std::string b =
            one(R"("after": "row", "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, msg0(b, "\"after\" must be an object or null", "\"row\"", 0));
    }
    {
        std::string b = one(good_fields + R"(, "before": 5)");
        add(b, msg0(b, "\"before\" must be an object or null", "5}", 0));
    }
    {
        std::string b = one(
            R"("after": {"b": 1, "a": 2, "b": 3}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "\"b\": 3", "column \"b\" appears twice"));
    }
    {
        // Found by fuzz_decode_webhook: a bare-envelope message repeating a column decoded,
        // and its re-encoded (wrapped) form was then refused. Both forms refuse it now.
        std::string b = one(
            R"("__crdb__": {"key": [1], "topic": "t", "updated": "3.0"}, "id": [1], "x": 1, "id": [2])");
        add(b, msg0(b, "column \"id\" appears twice", "\"id\": [2]", 0));
    }

    // ---- JSON text
    {
        std::string b = one(R"("after": {"s": "x)"
                            "\xff"
                            R"("}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "\xff", "invalid UTF-8 inside a string"));
    }
    {
        std::string b = one(R"("after": {"s": ")"
                            "\xc0\x80"
                            R"("}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "\xc0", "invalid UTF-8 inside a string"));
    }
    {
        std::string b = one(R"("after": {"s": ")"
                            "\xed\xa0\x80"
                            R"("}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "\xed", "invalid UTF-8 inside a string"));
    }
    {
        std::string b = one(R"("after": {"s": "a)"
                            "\x01"
                            R"("}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "\x01", "control character U+0001 inside a string must be escaped"));
    }
    {
        std::string b =
            one(R"("after": {"s": "a\qb"}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "\\q", "invalid escape sequence: backslash followed by 'q'"));
    }
    {
        std::string b =
            one(R"("after": {"s": "\u12"}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "\\u12", "\\u must be followed by 4 hex digits"));
    }
    {
        std::string b =
            one(R"("after": {"s": "\udc00"}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "\\udc00", "unpaired UTF-16 surrogate in \\u escape"));
    }
    {
        std::string b =
            one(R"("after": {"s": "\ud83e"}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "\\ud83e", "unpaired UTF-16 surrogate in \\u escape"));
    }
    {
        std::string b =
            one(R"("after": {"n": 01}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "1}", "expected ',' or '}' after a column, found '1'"));
    }
    {
        std::string b =
            one(R"("after": {"n": 1.}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "1.}", "invalid number: digits must follow '.'"));
    }
    {
        std::string b =
            one(R"("after": {"n": -}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "-}", "invalid number"));
    }
    {
        std::string b =
            one(R"("after": {"n": 2e}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "2e}", "invalid number: digits must follow the exponent"));
    }
    {
        std::string b =
            one(R"("after": {"n": NaN}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "NaN", "expected a JSON value, found 'N'"));
    }
    {
        std::string b =
            one(R"("after": {"n": nul}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "nul}", "invalid literal (expected true, false or null)"));
    }
    {
        std::string b =
            one(R"("after": {"n": nulls}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "s}", "expected ',' or '}' after a column, found 's'"));
    }
    {
        std::string b = "{\"payload\":[{\"after\": {\"s\": \"abc";
        add(b, body_at(b, "\"abc", "unterminated string"));
    }
    {
        std::string b =
            one(R"("after" {"id": 1}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "{\"id", "expected ':' after a field name, found '{'"));
    }
    {
        std::string b =
            one(R"("after": {"a": 1,}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "}, \"key", "expected a string, found '}'"));
    }
    {
        std::string b = one(
            R"("after": {"j": {"a": [1 2]}}, "key": [1], "topic": "t", "updated": "1.0000000000")");
        add(b, body_at(b, "2]", "expected ',' or ']' in an array, found '2'"));
    }
    {
        std::string b = "{\"payload\":[" + good + "," + "]}";
        add(b, "message 1 (byte " + std::to_string(b.size() - 2) +
                   "): a message must be a JSON object");
    }
    return c;
}

}  // namespace

TEST_CASE("decode: malformed bodies give precise errors", "[decode][errors]") {
    const auto all = cases();
    CHECK(all.size() >= 40);
    for (const bad_case& c : all) {
        INFO("body: " << c.body);
        auto decoded = decode_webhook(c.body);
        REQUIRE_FALSE(decoded);
        CHECK(decoded.error().message() == c.message);
        CHECK(decoded.error().code() == c.code);
    }
}

TEST_CASE("decode: limits are their own errors", "[decode][errors]") {
    std::string deep = R"({"payload":[{"after": {"j": )";
    for (int i = 0; i < 200; ++i) {
        deep += "[";
    }
    auto too_deep = decode_webhook(deep);
    REQUIRE_FALSE(too_deep);
    CHECK(too_deep.error().code() == errc::limit_exceeded);
    // The body, the payload, the message and "after" take 4 levels; the 125th '[' is level 129.
    CHECK(too_deep.error().message() == "invalid request body at byte " +
                                            std::to_string(deep.find('[', 26) + 124) +
                                            ": nesting deeper than the limit of 128 levels");

    decode_limits small;
    small.max_body_bytes = 10;
    auto big = decode_webhook(R"({"resolved":"1.0000000000"})", small);
    REQUIRE_FALSE(big);
    CHECK(big.error().code() == errc::limit_exceeded);
    CHECK(big.error().message() == "request body of 27 bytes exceeds the limit of 10 bytes");

    decode_limits few;
    few.max_messages = 2;
    const std::string three = "{\"payload\":[" + good + "," + good + "," + good + "]}";
    auto many = decode_webhook(three, few);
    REQUIRE_FALSE(many);
    CHECK(many.error().code() == errc::limit_exceeded);
    CHECK(many.error().message() == "request body at byte " +
                                        std::to_string(12 + 2 * (good.size() + 1)) +
                                        ": more than 2 messages");
}
