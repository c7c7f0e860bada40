#include "molt/proto/decoder.hpp"

#include <string>

#include <catch2/catch.hpp>

using molt::hlc;
using molt::proto::column;
using molt::proto::decode_webhook;
using molt::proto::value;
using molt::proto::value_kind;
using molt::proto::webhook_body;

namespace {

webhook_body decode_ok(const std::string& body) {
    auto decoded = decode_webhook(body);
    INFO("body: " << body);
    if (!decoded) {
        FAIL("unexpected error: " << decoded.error().message());
    }
    return std::move(decoded).value();
}

value num(std::string_view text) {
    return {value_kind::number, text};
}
value str(std::string_view text) {
    return {value_kind::string, text};
}
value json(std::string_view text) {
    return {value_kind::json, text};
}
value boolean(bool b) {
    return {value_kind::boolean, b ? "true" : "false"};
}
value null() {
    return {};
}

std::vector<column> cols(std::span<const column> span) {
    return {span.begin(), span.end()};
}

}  // namespace

TEST_CASE("decode: the v26.1.3 capture of the spec", "[decode]") {
    const webhook_body b = decode_ok(
        R"({"payload":[{"after": {"city": "rome", "creation_time": "2019-01-02T03:04:05", "current_location": "63773 Sean Branch", "ext": {"brand": "Santa Cruz", "color": "black"}, "id": "50664625-5628-4c43-a10f-07629f613444", "owner_id": "f0a3d70a-3d70-4000-8000-00000000002f", "status": "available", "type": "bike"}, "key": ["rome", "50664625-5628-4c43-a10f-07629f613444"], "topic": "vehicles", "updated": "1778182996245065000.0000000000"}],"length":1})");
    REQUIRE(b.type == webhook_body::kind::rows);
    REQUIRE(b.rows.message_count() == 1);
    REQUIRE(b.rows.tables().size() == 1);
    const auto& t = b.rows.tables()[0];
    CHECK(t.topic == "vehicles");
    REQUIRE(t.mutations.size() == 1);
    const auto& m = t.mutations[0];
    CHECK(m.updated == hlc(1778182996245065000, 0));
    CHECK_FALSE(m.deleted);
    CHECK_FALSE(m.has_before);
    CHECK(m.key == R"(["rome","50664625-5628-4c43-a10f-07629f613444"])");
    CHECK(std::vector<value>(m.key_values.begin(), m.key_values.end()) ==
          std::vector<value>{str("rome"), str("50664625-5628-4c43-a10f-07629f613444")});
    CHECK(cols(m.after) ==
          std::vector<column>{{"city", str("rome")},
                              {"creation_time", str("2019-01-02T03:04:05")},
                              {"current_location", str("63773 Sean Branch")},
                              {"ext", json(R"({"brand":"Santa Cruz","color":"black"})")},
                              {"id", str("50664625-5628-4c43-a10f-07629f613444")},
                              {"owner_id", str("f0a3d70a-3d70-4000-8000-00000000002f")},
                              {"status", str("available")},
                              {"type", str("bike")}});
    CHECK(b.rows.unknown_field_count() == 0);
}

TEST_CASE("decode: the v1 compact form gives the same model as v2", "[decode]") {
    const webhook_body v1 = decode_ok(
        R"({"payload":[{"after":{"a":1,"b":"\u003ctag\u003e \u0026"},"key":[1],"topic":"foo","updated":"1.0000000000"}],"length":1})");
    const webhook_body v2 = decode_ok(
        R"({"payload":[{"after": {"a": 1, "b": "<tag> &"}, "key": [1], "topic": "foo", "updated": "1.0000000000"}],"length":1})");
    const auto& a = v1.rows.tables()[0].mutations[0];
    const auto& b = v2.rows.tables()[0].mutations[0];
    CHECK(cols(a.after) == cols(b.after));
    CHECK(a.key == b.key);
    CHECK(cols(b.after)[1].val == str("<tag> &"));
}

TEST_CASE("decode: insert, update with diff, delete, delete with diff", "[decode]") {
    const webhook_body b = decode_ok(
        R"({"payload":[)"
        R"({"after": {"id": 1, "name": "Terry"}, "key": [1], "topic": "employees", "updated": "1701102296662969433.0000000000"},)"
        R"({"after": {"id": 1, "name": "Terri"}, "before": {"id": 1, "name": "Terry"}, "key": [1], "topic": "employees", "updated": "1701102311425045162.0000000000"},)"
        R"({"after": null, "key": [1], "topic": "employees", "updated": "1701102320607990564.0000000000"},)"
        R"({"after": null, "before": {"id": 1, "name": "Terri"}, "key": [1], "topic": "employees", "updated": "1701102320607990565.0000000000"})"
        R"(],"length":4})");
    const auto& ms = b.rows.tables().at(0).mutations;
    REQUIRE(ms.size() == 4);
    CHECK(cols(ms[0].after) == std::vector<column>{{"id", num("1")}, {"name", str("Terry")}});
    CHECK_FALSE(ms[0].has_before);
    CHECK(ms[1].has_before);
    CHECK(cols(ms[1].before) == std::vector<column>{{"id", num("1")}, {"name", str("Terry")}});
    CHECK(cols(ms[1].after) == std::vector<column>{{"id", num("1")}, {"name", str("Terri")}});
    CHECK(ms[2].deleted);
    CHECK(ms[2].after.empty());
    CHECK_FALSE(ms[2].has_before);
    CHECK(ms[3].deleted);
    CHECK(ms[3].has_before);
    CHECK(cols(ms[3].before) == std::vector<column>{{"id", num("1")}, {"name", str("Terri")}});
    for (size_t i = 0; i < ms.size(); ++i) {
        CHECK(ms[i].message_index == i);
        CHECK(ms[i].key == "[1]");
    }
}

TEST_CASE("decode: mvcc_timestamp, column families and INSERT with a null before", "[decode]") {
    const webhook_body b = decode_ok(
        R"({"payload":[{"after": {"id": 7}, "before": null, "key": [7], "mvcc_timestamp": "1701102296662969433.0000000002", "topic": "employees", "updated": "1701102296662969433.0000000002"},)"
        R"({"after": {"dog_owner": "Lauren"}, "key": [1], "topic": "office_dogs.employee", "updated": "5.0000000000"}]})");
    REQUIRE(b.rows.tables().size() == 2);
    const auto& first = b.rows.tables()[0].mutations.at(0);
    CHECK(first.mvcc_timestamp == hlc(1701102296662969433, 2));
    CHECK(first.has_before);
    CHECK(first.before.empty());
    CHECK(b.rows.tables()[1].topic == "office_dogs.employee");
    CHECK(cols(b.rows.tables()[1].mutations.at(0).after) ==
          std::vector<column>{{"dog_owner", str("Lauren")}});
}

TEST_CASE("decode: several versions of one key keep their order", "[decode]") {
    const webhook_body b = decode_ok(
        R"({"payload":[{"after": {"a": 1, "b": "a"}, "key": [1], "topic": "foo", "updated": "2.0000000000"},{"after": {"a": 1, "b": "b"}, "key": [1], "topic": "foo", "updated": "2.0000000000"}],"length":2})");
    const auto& ms = b.rows.tables().at(0).mutations;
    REQUIRE(ms.size() == 2);
    CHECK(cols(ms[0].after)[1].val == str("a"));
    CHECK(cols(ms[1].after)[1].val == str("b"));
}

TEST_CASE("decode: several tables in one request, grouped by table and ordered by time",
          "[decode]") {
    const webhook_body b = decode_ok(
        R"({"payload":[)"
        R"({"after": {"id": 2}, "key": [2], "topic": "orders", "updated": "30.0000000000"},)"
        R"({"after": {"id": 1}, "key": [1], "topic": "customers", "updated": "10.0000000000"},)"
        R"({"after": {"id": 1}, "key": [1], "topic": "orders", "updated": "10.0000000001"},)"
        R"({"after": {"id": 3}, "key": [3], "topic": "orders", "updated": "20.0000000000"})"
        R"(],"length":4})");
    REQUIRE(b.rows.tables().size() == 2);
    CHECK(b.rows.tables()[0].topic == "orders");
    CHECK(b.rows.tables()[1].topic == "customers");
    const auto& orders = b.rows.tables()[0].mutations;
    REQUIRE(orders.size() == 3);
    CHECK(orders[0].updated == hlc(10, 1));
    CHECK(orders[1].updated == hlc(20, 0));
    CHECK(orders[2].updated == hlc(30, 0));
    CHECK(orders[0].message_index == 2);
    CHECK(orders[2].message_index == 0);
}

TEST_CASE("decode: every type of the spec's table keeps its exact text", "[decode]") {
    const webhook_body b = decode_ok(
        R"({"payload":[{"after": {"arr": [1, 2, 3], "arr_null": ["x", null], "b": true, "bits": "1010", "by": "\\x01ff", "by_empty": "\\x", )"
        R"("d": "2026-06-08", "dec": 22.30, "dec_exp": 4E+2, "dec_big": 123456789012345678901234567890.123456789, "dec_nan": "NaN", )"
        R"("e": "open", "f": 1.2E+2, "f_small": 1E-7, "f_inf": "-Infinity", "geo": {"coordinates": [-74, 40.7], "type": "Point"}, )"
        R"("i": 528514320239329281, "inet": "192.168.1.10/24", "iv": "1 day 02:03:04.5", "j": {"a": [1, {"b": null}], "c": "\u0001"}, )"
        R"("jnull": null, "s": "hello", "t": "11:01:45.883", "ts": "2025-04-30T20:02:35.40316", "tstz": "2025-05-09T21:20:29.203923Z", )"
        R"("ttz": "04:05:06.789-08", "u": "f47ac10b-58cc-4372-a567-0e02b2c3d479"}, "key": [528514320239329281], "topic": "types", "updated": "9.0000000000"}]})");
    const auto after = cols(b.rows.tables().at(0).mutations.at(0).after);
    const std::vector<column> expected = {
        {"arr", json("[1,2,3]")},
        {"arr_null", json(R"(["x",null])")},
        {"b", boolean(true)},
        {"bits", str("1010")},
        {"by", str("\\x01ff")},
        {"by_empty", str("\\x")},
        {"d", str("2026-06-08")},
        {"dec", num("22.30")},
        {"dec_exp", num("4E+2")},
        {"dec_big", num("123456789012345678901234567890.123456789")},
        {"dec_nan", str("NaN")},
        {"e", str("open")},
        {"f", num("1.2E+2")},
        {"f_small", num("1E-7")},
        {"f_inf", str("-Infinity")},
        {"geo", json(R"({"coordinates":[-74,40.7],"type":"Point"})")},
        {"i", num("528514320239329281")},
        {"inet", str("192.168.1.10/24")},
        {"iv", str("1 day 02:03:04.5")},
        {"j", json(R"({"a":[1,{"b":null}],"c":"\u0001"})")},
        {"jnull", null()},
        {"s", str("hello")},
        {"t", str("11:01:45.883")},
        {"ts", str("2025-04-30T20:02:35.40316")},
        {"tstz", str("2025-05-09T21:20:29.203923Z")},
        {"ttz", str("04:05:06.789-08")},
        {"u", str("f47ac10b-58cc-4372-a567-0e02b2c3d479")},
    };
    CHECK(after == expected);
    CHECK(b.rows.tables()[0].mutations[0].key == "[528514320239329281]");
}

TEST_CASE("decode: resolved bodies, wrapped and bare", "[decode]") {
    const webhook_body wrapped = decode_ok(R"({"resolved":"1629813621680097993.0000000000"})");
    CHECK(wrapped.type == webhook_body::kind::resolved);
    CHECK(wrapped.resolved == hlc(1629813621680097993, 0));
    const webhook_body bare =
        decode_ok(R"({"__crdb__":{"resolved":"1629813621680097993.0000000001"}})");
    CHECK(bare.type == webhook_body::kind::resolved);
    CHECK(bare.resolved == hlc(1629813621680097993, 1));
}

TEST_CASE("decode: bare-envelope messages", "[decode]") {
    const webhook_body b = decode_ok(
        R"({"payload":[{"__crdb__": {"key": [101], "topic": "t", "updated": "3.0000000000"}, "id": 101, "v": "x"},)"
        R"({"__crdb__": {"key": [102], "topic": "t", "updated": "4.0000000000"}}]})");
    const auto& ms = b.rows.tables().at(0).mutations;
    REQUIRE(ms.size() == 2);
    CHECK(cols(ms[0].after) == std::vector<column>{{"id", num("101")}, {"v", str("x")}});
    CHECK_FALSE(ms[0].deleted);
    CHECK(ms[1].deleted);
    CHECK(b.rows.unknown_field_count() == 0);
}

TEST_CASE("decode: unknown fields are tolerated and counted", "[decode]") {
    const webhook_body b = decode_ok(
        R"({"payload":[{"after": {"id": 1}, "future": {"x": [1, 2]}, "key": [1], "topic": "t", "updated": "1.0000000000", "zz": 5}],"length":1,"schema":"v9"})");
    CHECK(b.rows.message_count() == 1);
    CHECK(b.rows.unknown_field_count() == 3);
    CHECK(cols(b.rows.tables()[0].mutations[0].after) == std::vector<column>{{"id", num("1")}});
}

TEST_CASE("decode: tolerant of what CockroachDB may send", "[decode]") {
    // No "length" (the first v21.2 pre-release), an empty payload, synthetic '?' timestamps,
    // an empty body, escaped keys, and whitespace around everything.
    CHECK(
        decode_ok(
            R"({"payload":[{"after": {"a": 1}, "key": [1], "topic": "t", "updated": "1.0000000000"}]})")
            .rows.message_count() == 1);
    CHECK(decode_ok(R"({"payload":[],"length":0})").rows.empty());
    CHECK(
        decode_ok(
            R"({"payload":[{"after": null, "key": [1], "topic": "t", "updated": "7.0000000003?"}]})")
            .rows.tables()[0]
            .mutations[0]
            .updated == hlc(7, 3));
    const webhook_body empty = decode_ok("");
    CHECK(empty.type == webhook_body::kind::rows);
    CHECK(empty.rows.empty());
    const webhook_body escaped = decode_ok(
        " \n{ \"payload\" : [ { \"after\" : { \"na\\u006de\" : \"\\ud83e\\udd80\" } , \"key\" : [ "
        "\"k\\\"1\" ] , "
        "\"topic\" : \"t\" , \"updated\" : \"1.0000000000\" } ] } \n");
    const auto& m = escaped.rows.tables()[0].mutations[0];
    CHECK(cols(m.after) == std::vector<column>{{"name", str("\xf0\x9f\xa6\x80")}});
    CHECK(m.key == R"(["k\"1"])");
}

TEST_CASE("decode: newline-delimited messages", "[decode]") {
    auto decoded = molt::proto::decode_ndjson(
        "{\"after\":{\"id\":1},\"key\":[1],\"topic\":\"t\",\"updated\":\"1.0000000000\"}\n"
        "{\"after\":null,\"key\":[2],\"topic\":\"t\",\"updated\":\"2.0000000000\"}\n");
    REQUIRE(decoded);
    CHECK(decoded->message_count() == 2);
    CHECK(decoded->tables()[0].mutations[1].deleted);
}

TEST_CASE("decode: a batch stays valid after it is moved", "[decode]") {
    std::vector<molt::proto::batch> kept;
    for (int i = 0; i < 50; ++i) {
        std::string body = R"({"payload":[{"after": {"s": "v)" + std::to_string(i) +
                           R"(\n"}, "key": [)" + std::to_string(i) +
                           R"(], "topic": "t", "updated": "1.0000000000"}]})";
        kept.push_back(std::move(decode_ok(body).rows));
    }
    for (int i = 0; i < 50; ++i) {
        const auto& m = kept[static_cast<size_t>(i)].tables()[0].mutations[0];
        CHECK(m.key == "[" + std::to_string(i) + "]");
        CHECK(cols(m.after)[0].val == str("v" + std::to_string(i) + "\n"));
    }
}
