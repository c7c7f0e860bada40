// The immediate apply path against the throwaway PostgreSQL 15.
#include "molt/proto/crdb_types.hpp"
#include "molt/test/json_builders.hpp"

#include "apply_support.hpp"

using namespace molt::replicator;
using namespace molt::replicator::testing;
using molt::proto::json;
using molt::test::key;
using molt::test::num;
using molt::test::obj;
using molt::test::str;

// With array columns the upsert binds a parameter per value; without, one array per column
// (unnest): each value goes through both.
TEST_CASE("postgres apply: every type of the spec, and NULL in each", "[integration][postgres]") {
    const bool arrays = GENERATE(true, false);
    INFO((arrays ? "with array columns: a parameter per value" : "one array per column"));
    apply_stack t("MOLT_TEST_PG_URL");
    t.sql("DROP TABLE IF EXISTS pg_types; DROP TYPE IF EXISTS pg_mood");
    t.sql("CREATE TYPE pg_mood AS ENUM ('sad', 'ok', 'happy')");
    t.sql(
        "CREATE TABLE pg_types (id bigint PRIMARY KEY, b boolean, i2 smallint, i8 bigint, "
        "f8 double precision, f4 real, d numeric(40,10), dn numeric, s text, vc varchar(20), "
        "by bytea, u uuid, dt date, t time, ttz timetz, ts timestamp, tstz timestamptz, "
        "iv interval, ip inet, j jsonb, ai bigint[], at text[], e pg_mood, bt bit(4), vb "
        "varbit(8))");
    if (!arrays) {
        t.sql("ALTER TABLE pg_types DROP COLUMN ai, DROP COLUMN at");
    }
    // Array literal syntax inside a value ({, }, ",", NULL) stays the value's own text.
    const std::string tricky =
        "quote \" back\\slash\nnew line, tab\t, ünïcödé 🦀 <&> {a,NULL} 'x'";
    json row1 = obj({{"id", num(1)},
                     {"b", json::boolean(true)},
                     {"i2", num(-32768)},
                     {"i8", json::number("9007199254740993")},
                     {"f8", pg("float8", "1.5")},
                     {"f4", pg("real", "0.1")},
                     {"d", json::number("123456789012345678901234567890.1234567891")},
                     {"dn", json::number("4E+2")},
                     {"s", str(tricky)},
                     {"vc", str("short")},
                     {"by", pg("bytea", "\\x00ff10")},
                     {"u", pg("uuid", "F47AC10B-58CC-4372-A567-0E02B2C3D479")},
                     {"dt", pg("date", "2026-06-08")},
                     {"t", pg("time", "11:01:45.883")},
                     {"ttz", pg("timetz", "04:05:06.789-08")},
                     {"ts", pg("timestamp", "2019-01-02 03:04:05")},
                     {"tstz", pg("timestamptz", "2025-05-09 16:20:29.203923-05")},
                     {"iv", pg("interval", "1 day 02:03:04.5")},
                     {"ip", pg("inet", "192.168.1.10/24")},
                     {"j", pg("jsonb", R"({"b": [1, null, 1e2], "a": "x"})")},
                     {"ai", pg("bigint[]", "{1,2,NULL}")},
                     {"at", pg("text[]", R"({"a b","c\"d",NULL})")},
                     {"e", str("happy")},
                     {"bt", str("1010")},
                     {"vb", str("101")}});
    json row3 = obj(
        {{"id", num(3)},         {"b", json::null()},  {"i2", json::null()},  {"i8", json::null()},
         {"f8", json::null()},   {"f4", json::null()}, {"d", json::null()},   {"dn", json::null()},
         {"s", json::null()},    {"vc", json::null()}, {"by", json::null()},  {"u", json::null()},
         {"dt", json::null()},   {"t", json::null()},  {"ttz", json::null()}, {"ts", json::null()},
         {"tstz", json::null()}, {"iv", json::null()}, {"ip", json::null()},  {"j", json::null()},
         {"ai", json::null()},   {"at", json::null()}, {"e", json::null()},   {"bt", json::null()},
         {"vb", json::null()}});
    if (!arrays) {
        for (json* r : {&row1, &row3}) {
            json kept = json::object();
            for (const auto& [name, value] : r->members()) {
                if (name != "ai" && name != "at") {
                    kept.set(name, value);
                }
            }
            *r = kept;
        }
    }
    const std::vector<row> rows = {
        {"pg_types", key({num(1)}), row1},
        {"pg_types", key({num(2)}),
         obj({{"id", num(2)},
              {"f8", str("NaN")},
              {"f4", str("-Infinity")},
              {"dn", str("Infinity")},
              {"d", json::number("-0.0000000001")},
              {"i8", json::number("-9223372036854775808")}})},
        {"pg_types", key({num(3)}), row3},
        {"pg_types", key({num(4)}), obj({{"id", num(4)}, {"s", str("NULL")}, {"vc", str("")}})},
    };
    auto applied = t.post(body(rows));
    if (!applied) {
        FAIL(applied.error().message());
    }
    CHECK(applied->upserts == 4);
    t.sql("SET TimeZone = 'UTC'");
    auto text = [&](const char* column, int id) {
        return t.one(std::string("SELECT ") + column +
                     "::text FROM pg_types WHERE id = " + std::to_string(id));
    };
    CHECK(text("b", 1) == "true");
    CHECK(text("i2", 1) == "-32768");
    CHECK(text("i8", 1) == "9007199254740993");
    CHECK(text("f8", 1) == "1.5");
    CHECK(text("f4", 1) == "0.1");
    CHECK(text("d", 1) == "123456789012345678901234567890.1234567891");
    CHECK(text("dn", 1) == "400");
    CHECK(text("s", 1) == tricky);
    CHECK(text("by", 1) == "\\x00ff10");
    CHECK(text("u", 1) == "f47ac10b-58cc-4372-a567-0e02b2c3d479");
    CHECK(text("dt", 1) == "2026-06-08");
    CHECK(text("t", 1) == "11:01:45.883");
    CHECK(text("ttz", 1) == "04:05:06.789-08");
    CHECK(text("ts", 1) == "2019-01-02 03:04:05");
    CHECK(text("tstz", 1) == "2025-05-09 21:20:29.203923+00");
    CHECK(text("iv", 1) == "1 day 02:03:04.5");
    CHECK(text("ip", 1) == "192.168.1.10/24");
    CHECK(text("j", 1) == R"({"a": "x", "b": [1, null, 100]})");
    if (arrays) {
        CHECK(text("ai", 1) == "{1,2,NULL}");
        CHECK(text("at", 1) == R"({"a b","c\"d",NULL})");
    }
    CHECK(text("e", 1) == "happy");
    CHECK(text("bt", 1) == "1010");
    CHECK(text("vb", 1) == "101");
    CHECK(text("f8", 2) == "NaN");
    CHECK(text("f4", 2) == "-Infinity");
    CHECK(text("dn", 2) == "Infinity");
    CHECK(text("d", 2) == "-0.0000000001");
    CHECK(text("i8", 2) == "-9223372036854775808");
    CHECK(t.one("SELECT count(*)::text FROM pg_types WHERE id = 3 AND num_nulls(b, i2, i8, f8, f4, "
                "d, dn, s, vc, by, u, dt, t, ttz, ts, tstz, iv, ip, j, e, bt, vb) = 22") == "1");
    if (arrays) {
        CHECK(t.one("SELECT count(*)::text FROM pg_types WHERE id = 3 AND ai IS NULL AND at IS "
                    "NULL") == "1");
    }
    // The word NULL as a value, and an empty string, are not NULL.
    CHECK(t.one("SELECT s || '|' || vc FROM pg_types WHERE id = 4") == "NULL|");
    t.sql("DROP TABLE pg_types; DROP TYPE pg_mood");
}

TEST_CASE("postgres apply: keys, foreign keys, names, generated columns, redelivery",
          "[integration][postgres]") {
    apply_stack t("MOLT_TEST_PG_URL");
    t.sql("DROP TABLE IF EXISTS pg_lines, pg_orders");
    t.sql(
        "CREATE TABLE pg_orders (id bigint PRIMARY KEY, \"Status\" text, note text DEFAULT "
        "'none')");
    t.sql(
        "CREATE TABLE pg_lines (order_id bigint REFERENCES pg_orders (id), line int, qty int, "
        "double_qty int GENERATED ALWAYS AS (qty * 2) STORED, PRIMARY KEY (order_id, line))");

    // Child before parent in the request: the parent is still written first.
    const std::string first = body({
        {"pg_lines", key({num(1), num(1)}),
         obj({{"order_id", num(1)}, {"line", num(1)}, {"qty", num(3)}, {"double_qty", num(999)}}),
         2},
        {"pg_lines", key({num(1), num(2)}),
         obj({{"ORDER_ID", num(1)}, {"Line", num(2)}, {"QTY", num(4)}}), 2},
        {"pg_orders", key({num(1)}), obj({{"id", num(1)}, {"status", str("open")}}), 1},
    });
    auto applied = t.post(first);
    if (!applied) {
        FAIL(applied.error().message());
    }
    CHECK(t.one("SELECT string_agg(line || ':' || qty || ':' || double_qty, ',' ORDER BY line) "
                "FROM pg_lines") == "1:3:6,2:4:8");
    CHECK(t.one("SELECT \"Status\" || '/' || note FROM pg_orders") == "open/none");

    // Redelivery of the same request changes nothing.
    REQUIRE(t.post(first));
    CHECK(t.one("SELECT count(*)::text FROM pg_lines") == "2");

    // A sparse row keeps the columns it does not carry.
    REQUIRE(t.post(
        body({{"pg_orders", key({num(1)}), obj({{"id", num(1)}, {"note", str("rush")}}), 3}})));
    CHECK(t.one("SELECT \"Status\" || '/' || note FROM pg_orders") == "open/rush");

    // Deleting parent and children in one request: children go first.
    REQUIRE(t.post(body({
        {"pg_orders", key({num(1)}), json::null(), 4},
        {"pg_lines", key({num(1), num(1)}), json::null(), 4},
        {"pg_lines", key({num(1), num(2)}), json::null(), 4},
    })));
    CHECK(t.one("SELECT (SELECT count(*) FROM pg_orders) + (SELECT count(*) FROM pg_lines)") ==
          "0");

    // A delete of a key that never existed is fine.
    REQUIRE(t.post(body({{"pg_orders", key({num(77)}), json::null(), 5}})));

    // A child whose parent has not arrived: 503-class, nothing written.
    auto orphan =
        t.post(body({{"pg_lines", key({num(9), num(1)}),
                      obj({{"order_id", num(9)}, {"line", num(1)}, {"qty", num(1)}}), 6}}));
    REQUIRE_FALSE(orphan);
    CHECK(orphan.error().code() == molt::errc::unavailable);
    CHECK(orphan.error().retry() == molt::retry_class::defer);
    t.sql("DROP TABLE pg_lines, pg_orders");
}

TEST_CASE("postgres apply: bad requests name what is wrong and write nothing",
          "[integration][postgres]") {
    apply_stack t("MOLT_TEST_PG_URL");
    t.sql("DROP TABLE IF EXISTS pg_a, pg_b");
    t.sql("CREATE TABLE pg_a (id int PRIMARY KEY, v text)");
    t.sql("CREATE TABLE pg_b (id int PRIMARY KEY, n int)");

    auto unknown_table = t.post(body({{"pg_missing", key({num(1)}), obj({{"id", num(1)}}), 1}}));
    REQUIRE_FALSE(unknown_table);
    CHECK(unknown_table.error().code() == molt::errc::not_found);
    CHECK(unknown_table.error().message() ==
          "unknown table \"pg_missing\" in target schema appdb.public");

    auto unknown_column =
        t.post(body({{"pg_a", key({num(1)}), obj({{"id", num(1)}, {"w", str("x")}}), 1}}));
    REQUIRE_FALSE(unknown_column);
    CHECK(unknown_column.error().code() == molt::errc::invalid_argument);
    CHECK(unknown_column.error().message() ==
          "table public.pg_a, message 0: the target has no column \"w\"");

    // The second table fails in the database: the first table's rows are rolled back too.
    auto second_fails = t.post(body({
        {"pg_a", key({num(1)}), obj({{"id", num(1)}, {"v", str("kept?")}}), 1},
        {"pg_b", key({num(1)}), obj({{"id", num(1)}, {"n", str("not a number")}}), 1},
        {"pg_b", key({num(424242)}), obj({{"id", num(424242)}, {"n", num(5)}}), 1},
    }));
    REQUIRE_FALSE(second_fails);
    CHECK(second_fails.error().code() == molt::errc::invalid_argument);
    CHECK(second_fails.error().message().find("invalid input syntax for type integer") !=
          std::string::npos);
    // Neither the statement nor other rows' values (SOCI appends both).
    CHECK(second_fails.error().message().find("424242") == std::string::npos);
    CHECK(second_fails.error().message().find("INSERT") == std::string::npos);
    CHECK(t.one("SELECT count(*)::text FROM pg_a") == "0");

    auto unknown_schema = [&] {
        molt::qualified_name wrong;
        wrong.parts = {"appdb", "nope"};
        auto decoded =
            molt::proto::decode_webhook(body({{"pg_a", key({num(1)}), obj({{"id", num(1)}}), 1}}));
        return t.applier.accept_rows(wrong, decoded->rows);
    }();
    REQUIRE_FALSE(unknown_schema);
    CHECK(unknown_schema.error().code() == molt::errc::not_found);
    CHECK(unknown_schema.error().message() ==
          "unknown schema \"appdb.nope\": database \"appdb\" has no schema \"nope\"");
    t.sql("DROP TABLE pg_a, pg_b");
}

// A value longer than its column (a target narrower than the source) is refused, as storing it
// would be, never cut to fit: whether its statement binds one array per column or one parameter
// per value (an array column in the table), and in a key a delete looks rows up by.
TEST_CASE("postgres apply: a value that does not fit its column is refused and never truncated",
          "[integration][postgres]") {
    const bool arrays = GENERATE(true, false);
    INFO((arrays ? "with an array column: a parameter per value" : "one array per column"));
    apply_stack t("MOLT_TEST_PG_URL");
    t.sql("DROP TABLE IF EXISTS pg_fit");
    t.sql(std::string("CREATE TABLE pg_fit (id varchar(3) PRIMARY KEY, c char(2), b bit(3), "
                      "vb varbit(3)") +
          (arrays ? ", a varchar(2)[])" : ")"));
    t.sql("INSERT INTO pg_fit (id, c, b, vb) VALUES ('abc', 'x', '101', '1')");
    const auto fits = [](const std::string& column, json value) {
        json r = obj({{"id", str("k")}, {"c", str("y")}, {"b", str("111")}, {"vb", str("1")}});
        r.set(column, std::move(value));
        return r;
    };
    for (const auto& [column, value, message] :
         {std::tuple{"id", "abcd", "value too long for type character varying(3)"},
          std::tuple{"c", "abc", "value too long for type character(2)"},
          std::tuple{"b", "1011", "bit string length 4 does not match type bit(3)"},
          std::tuple{"vb", "1011", "bit string too long for type bit varying(3)"}}) {
        INFO(column);
        const json r = fits(column, str(value));
        const std::string id = std::string(column) == "id" ? value : "k";
        auto refused = t.post(body({{"pg_fit", key({str(id)}), r, 1}}));
        REQUIRE_FALSE(refused);
        CHECK(refused.error().message().find(message) != std::string::npos);
    }
    if (arrays) {
        json r = fits("c", str("y"));
        r.set("a", pg("text[]", "{abc}"));
        auto refused = t.post(body({{"pg_fit", key({str("k")}), r, 1}}));
        REQUIRE_FALSE(refused);
        CHECK(refused.error().message().find("value too long for type character varying(2)") !=
              std::string::npos);
    }
    CHECK(t.one("SELECT string_agg(id || '|' || c || '|' || b::text || '|' || vb::text, ',') "
                "FROM pg_fit") == "abc|x|101|1");
    // A delete of key 'abcd' is not a delete of 'abc'.
    auto deleted = t.post(body({{"pg_fit", key({str("abcd")}), json::null(), 1}}));
    REQUIRE(deleted);
    CHECK(t.one("SELECT count(*)::text FROM pg_fit") == "1");
    t.sql("DROP TABLE pg_fit");
}

// Issue 13, point 14: every JSON value a JSONB column can hold reaches JSON and JSONB columns
// unchanged, scalars at the top level included. A JSONB 'null' arrives as
// {"__crdb_json_null__": true} when the changefeed has encode_json_value_null_as_object.
TEST_CASE("postgres apply: JSON scalars, arrays and objects at the top level round-trip",
          "[integration][postgres]") {
    apply_stack t("MOLT_TEST_PG_URL");
    t.sql("DROP TABLE IF EXISTS pg_json");
    t.sql("CREATE TABLE pg_json (id bigint PRIMARY KEY, jb jsonb, js json)");
    const std::string tricky = "say \"hi\"\\ \n\t ünï 🦀";
    const std::vector<std::pair<json, std::string>> cases = {
        {json::boolean(true), "true"},
        {json::boolean(false), "false"},
        {str("pending"), R"("pending")"},
        {str("42"), R"("42")"},
        {str(""), R"("")"},
        {str(tricky), R"("say \"hi\"\\ \n\t ünï 🦀")"},
        {json::number("42"), "42"},
        {json::number("-1.5"), "-1.5"},
        {json::number("1E+2"), "1E+2"},
        {json::array({num(1), str("a"), json::null(), json::boolean(true)}),
         R"([1, "a", null, true])"},
        {json::array(), "[]"},
        {obj({{"a", obj({{"b", str("c")}})}, {"n", json::null()}}),
         R"({"a": {"b": "c"}, "n": null})"},
        {obj({{"__crdb_json_null__", json::boolean(true)}}), "null"},
    };
    std::vector<row> rows;
    for (size_t i = 0; i < cases.size(); ++i) {
        const auto id = static_cast<int64_t>(i + 1);
        rows.push_back({"pg_json", key({num(id)}),
                        obj({{"id", num(id)}, {"jb", cases[i].first}, {"js", cases[i].first}})});
    }
    rows.push_back({"pg_json", key({num(100)}),
                    obj({{"id", num(100)}, {"jb", json::null()}, {"js", json::null()}})});
    auto applied = t.post(body(rows));
    if (!applied) {
        FAIL(applied.error().message());
    }
    for (size_t i = 0; i < cases.size(); ++i) {
        const std::string id = std::to_string(i + 1);
        INFO("case " << id << ": " << cases[i].second);
        // jsonb is compared as a value (its text form normalises spacing and numbers); json
        // keeps the text it was given.
        const std::string literal = "'" + cases[i].second + "'::jsonb";  // no ' in any case
        CHECK(t.one("SELECT (jb = " + literal + ")::text FROM pg_json WHERE id = " + id) == "true");
        CHECK(t.one("SELECT (js::jsonb = " + literal + ")::text FROM pg_json WHERE id = " + id) ==
              "true");
    }
    CHECK(t.one("SELECT jsonb_typeof(jb) || '/' || json_typeof(js) FROM pg_json WHERE id = 3") ==
          "string/string");
    CHECK(t.one("SELECT jsonb_typeof(jb) || '/' || json_typeof(js) FROM pg_json WHERE id = 13") ==
          "null/null");
    CHECK(t.one("SELECT (jb IS NULL AND js IS NULL)::text FROM pg_json WHERE id = 100") == "true");
    t.sql("DROP TABLE pg_json");
}

// Issue 13, point 12: a black-holed server (one that accepts and never answers, or never
// accepts) must not hold a thread for minutes: connecting is bounded by a timeout derived from
// the apply timeout (at least 2 s, libpq's minimum; at most 10 s).
TEST_CASE("postgres connect: a black-holed server fails within the connect timeout",
          "[integration][postgres]") {
    for (const bool accepting : {true, false}) {
        INFO((accepting ? "accepts, never answers" : "never accepts"));
        black_hole hole(accepting);
        const auto url =
            molt::conn_url::parse(
                fmt::format("postgres://app:app@127.0.0.1:{}/appdb?sslmode=disable", hole.port()))
                .value();
        check_connect_bounded(hole, std::chrono::seconds(2),
                              [&] { return postgres::connect(url, std::chrono::seconds(2)); });
    }
}

TEST_CASE("postgres apply: column families merge into one row; a delete comes per family",
          "[integration][postgres][families]") {
    column_families_immediate("MOLT_TEST_PG_URL");
}

// A session prepares a reused statement once and runs it again with new values; a statement the
// server no longer has (DEALLOCATE ALL, DISCARD ALL) fails once with a retryable error and is
// prepared again.
TEST_CASE("postgres sessions: a statement is prepared once; again when the server lost it",
          "[integration][postgres]") {
    const auto url = molt::conn_url::parse(molt::test::server_url("MOLT_TEST_PG_URL")).value();
    auto connected = postgres::connect(url, std::chrono::seconds(5));
    REQUIRE(connected);
    target_session& db = **connected;
    REQUIRE(db.execute("DROP TABLE IF EXISTS prepared_once", {}));
    REQUIRE(db.execute("CREATE TABLE prepared_once (id bigint PRIMARY KEY, v text)", {}));
    const std::string insert =
        "INSERT INTO prepared_once (id, v) SELECT * FROM unnest(:p1::bigint[], :p2::text[])";
    auto prepared = [&] {
        auto n = db.query(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE "
            "'INSERT INTO prepared_once%'",
            {});
        REQUIRE(n);
        return n->at(0).at(0).value_or("");
    };
    REQUIRE(db.execute_reused(insert, {"{1,2}", R"({"a","b"})"}));
    REQUIRE(db.execute_reused(insert, {"{3}", R"({"c"})"}));
    CHECK(prepared() == "1");
    REQUIRE(db.execute("DEALLOCATE ALL", {}));
    CHECK(prepared() == "0");
    auto lost = db.execute_reused(insert, {"{4}", R"({"d"})"});
    REQUIRE_FALSE(lost);
    INFO(lost.error().message());
    CHECK(lost.error().retry() == molt::retry_class::retry_now);
    REQUIRE(db.execute_reused(insert, {"{4}", R"({"d"})"}));
    CHECK(prepared() == "1");
    // execute() keeps nothing prepared.
    REQUIRE(db.execute("INSERT INTO prepared_once (id, v) VALUES (:p1::bigint, :p2)", {"5", "e"}));
    CHECK(db.query("SELECT count(*) FROM pg_prepared_statements", {})->at(0).at(0) == "1");
    auto rows = db.query("SELECT string_agg(v, '' ORDER BY id) FROM prepared_once", {});
    REQUIRE(rows);
    CHECK(rows->at(0).at(0) == "abcde");
    REQUIRE(db.execute("DROP TABLE prepared_once", {}));
}
