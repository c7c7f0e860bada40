// The immediate apply path against the throwaway MariaDB 10.11.
#include <netdb.h>

#include <cstdio>
#include <cstdlib>
#include <tuple>

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

TEST_CASE("mysql apply: every type of the spec that MySQL has, and NULL in each",
          "[integration][mysql]") {
    apply_stack t("MOLT_TEST_MYSQL_URL");
    t.sql("DROP TABLE IF EXISTS my_types");
    t.sql(
        "CREATE TABLE my_types (id BIGINT PRIMARY KEY, b BOOLEAN, i8 BIGINT, f8 DOUBLE, "
        "d DECIMAL(40,10), dn DECIMAL(10,2), s VARCHAR(100), vb VARBINARY(16), bu BINARY(16), "
        "uc CHAR(36), dt DATE, t TIME(6), ttz TIME(3), ts DATETIME(6), tstz TIMESTAMP(6) NULL, "
        "j JSON, e ENUM('sad','ok','happy'), bt BIT(8), iv VARCHAR(64), ip VARCHAR(64)) "
        "CHARACTER SET utf8mb4");
    const std::string tricky = "quote \" back\\slash\nnew line, ünïcödé 🦀 <&> '";
    const std::vector<row> rows = {
        {"my_types", key({num(1)}),
         obj({{"id", num(1)},
              {"b", json::boolean(true)},
              {"i8", json::number("9007199254740993")},
              {"f8", pg("float8", "1.5")},
              {"d", json::number("123456789012345678901234567890.1234567891")},
              {"dn", json::number("4E+2")},
              {"s", str(tricky)},
              {"vb", pg("bytea", "\\x00ff10")},
              {"bu", pg("uuid", "f47ac10b-58cc-4372-a567-0e02b2c3d479")},
              {"uc", pg("uuid", "f47ac10b-58cc-4372-a567-0e02b2c3d479")},
              {"dt", pg("date", "2026-06-08")},
              {"t", pg("time", "11:01:45.883")},
              {"ttz", pg("timetz", "04:05:06.789-08")},
              {"ts", pg("timestamp", "2019-01-02 03:04:05")},
              {"tstz", pg("timestamptz", "2025-05-09 16:20:29.203923-05")},
              {"j", pg("jsonb", R"({"b": [1, null, 1e2], "a": "x"})")},
              {"e", str("happy")},
              {"bt", str("1010")},
              {"iv", pg("interval", "1 day 02:03:04.5")},
              {"ip", pg("inet", "192.168.1.10/24")}})},
        {"my_types", key({num(2)}),
         obj({{"id", num(2)},
              {"b", json::boolean(false)},
              {"i8", json::number("-9223372036854775808")},
              {"d", json::number("-0.0000000001")},
              {"f8", json::number("1E-7")}})},
        {"my_types", key({num(3)}),
         obj({{"id", num(3)},        {"b", json::null()},  {"i8", json::null()},
              {"f8", json::null()},  {"d", json::null()},  {"dn", json::null()},
              {"s", json::null()},   {"vb", json::null()}, {"bu", json::null()},
              {"uc", json::null()},  {"dt", json::null()}, {"t", json::null()},
              {"ttz", json::null()}, {"ts", json::null()}, {"tstz", json::null()},
              {"j", json::null()},   {"e", json::null()},  {"bt", json::null()},
              {"iv", json::null()},  {"ip", json::null()}})},
    };
    auto applied = t.post(body(rows));
    if (!applied) {
        FAIL(applied.error().message());
    }
    auto text = [&](const std::string& expr, int id) {
        return t.one("SELECT CAST(" + expr +
                     " AS CHAR) FROM my_types WHERE id = " + std::to_string(id));
    };
    CHECK(text("b", 1) == "1");
    CHECK(text("i8", 1) == "9007199254740993");
    CHECK(text("f8", 1) == "1.5");
    CHECK(text("d", 1) == "123456789012345678901234567890.1234567891");
    CHECK(text("dn", 1) == "400.00");
    CHECK(text("s", 1) == tricky);
    CHECK(text("HEX(vb)", 1) == "00FF10");
    CHECK(text("HEX(bu)", 1) == "F47AC10B58CC4372A5670E02B2C3D479");
    CHECK(text("uc", 1) == "f47ac10b-58cc-4372-a567-0e02b2c3d479");
    CHECK(text("dt", 1) == "2026-06-08");
    CHECK(text("t", 1) == "11:01:45.883000");
    CHECK(text("ttz", 1) == "12:05:06.789");
    CHECK(text("ts", 1) == "2019-01-02 03:04:05.000000");
    CHECK(text("tstz", 1) == "2025-05-09 21:20:29.203923");
    CHECK(text("j", 1) == R"({"a":"x","b":[1,null,1E+2]})");
    CHECK(text("e", 1) == "happy");
    CHECK(text("bt + 0", 1) == "10");
    CHECK(text("iv", 1) == "1 day 02:03:04.5");
    CHECK(text("ip", 1) == "192.168.1.10/24");
    CHECK(text("b", 2) == "0");
    CHECK(text("i8", 2) == "-9223372036854775808");
    CHECK(text("d", 2) == "-0.0000000001");
    CHECK(text("f8 = 1e-7", 2) == "1");
    CHECK(
        t.one("SELECT CAST(COUNT(*) AS CHAR) FROM my_types WHERE id = 3 AND COALESCE(b, i8, f8, d, "
              "dn, s, vb, bu, uc, dt, t, ttz, ts, tstz, j, e, bt, iv, ip) IS NULL") == "1");

    // MySQL has no NaN: refused with the column named, nothing written.
    auto nan =
        t.post(body({{"my_types", key({num(4)}), obj({{"id", num(4)}, {"f8", str("NaN")}}), 2}}));
    REQUIRE_FALSE(nan);
    CHECK(nan.error().code() == molt::errc::invalid_argument);
    CHECK(nan.error().message() ==
          "table appdb.my_types, message 0: column \"f8\" (double): cannot store \"NaN\": MySQL "
          "cannot store NaN or infinite numbers");
    t.sql("DROP TABLE my_types");
}

TEST_CASE("mysql apply: keys, foreign keys, names, generated columns, redelivery",
          "[integration][mysql]") {
    apply_stack t("MOLT_TEST_MYSQL_URL");
    t.sql("DROP TABLE IF EXISTS my_lines");
    t.sql("DROP TABLE IF EXISTS my_orders");
    t.sql(
        "CREATE TABLE my_orders (id BIGINT PRIMARY KEY, Status VARCHAR(20), note VARCHAR(20) "
        "DEFAULT 'none')");
    t.sql(
        "CREATE TABLE my_lines (order_id BIGINT, line INT, qty INT, double_qty INT AS (qty * 2) "
        "STORED, "
        "PRIMARY KEY (order_id, line), FOREIGN KEY (order_id) REFERENCES my_orders (id))");

    const std::string first = body({
        {"my_lines", key({num(1), num(1)}),
         obj({{"order_id", num(1)}, {"line", num(1)}, {"qty", num(3)}, {"double_qty", num(999)}}),
         2},
        {"my_lines", key({num(1), num(2)}),
         obj({{"ORDER_ID", num(1)}, {"Line", num(2)}, {"QTY", num(4)}}), 2},
        {"my_orders", key({num(1)}), obj({{"id", num(1)}, {"status", str("open")}}), 1},
    });
    auto applied = t.post(first);
    if (!applied) {
        FAIL(applied.error().message());
    }
    CHECK(t.one("SELECT GROUP_CONCAT(CONCAT(line, ':', qty, ':', double_qty) ORDER BY line) FROM "
                "my_lines") == "1:3:6,2:4:8");
    CHECK(t.one("SELECT CONCAT(Status, '/', note) FROM my_orders") == "open/none");
    REQUIRE(t.post(first));
    CHECK(t.one("SELECT CAST(COUNT(*) AS CHAR) FROM my_lines") == "2");

    REQUIRE(t.post(
        body({{"my_orders", key({num(1)}), obj({{"id", num(1)}, {"note", str("rush")}}), 3}})));
    CHECK(t.one("SELECT CONCAT(Status, '/', note) FROM my_orders") == "open/rush");

    REQUIRE(t.post(body({
        {"my_orders", key({num(1)}), json::null(), 4},
        {"my_lines", key({num(1), num(1)}), json::null(), 4},
        {"my_lines", key({num(1), num(2)}), json::null(), 4},
    })));
    CHECK(t.one("SELECT CAST((SELECT COUNT(*) FROM my_orders) + (SELECT COUNT(*) FROM my_lines) AS "
                "CHAR)") == "0");

    auto orphan =
        t.post(body({{"my_lines", key({num(9), num(1)}),
                      obj({{"order_id", num(9)}, {"line", num(1)}, {"qty", num(1)}}), 6}}));
    REQUIRE_FALSE(orphan);
    CHECK(orphan.error().code() == molt::errc::unavailable);
    CHECK(orphan.error().retry() == molt::retry_class::defer);
    t.sql("DROP TABLE my_lines");
    t.sql("DROP TABLE my_orders");
}

TEST_CASE("mysql apply: bad requests name what is wrong and write nothing",
          "[integration][mysql]") {
    apply_stack t("MOLT_TEST_MYSQL_URL");
    t.sql("DROP TABLE IF EXISTS my_a");
    t.sql("DROP TABLE IF EXISTS my_b");
    t.sql("CREATE TABLE my_a (id INT PRIMARY KEY, v TEXT)");
    t.sql("CREATE TABLE my_b (id INT PRIMARY KEY, n INT)");
    auto second_fails = t.post(body({
        {"my_a", key({num(1)}), obj({{"id", num(1)}, {"v", str("kept?")}}), 1},
        {"my_b", key({num(1)}), obj({{"id", num(1)}, {"n", str("not a number")}}), 1},
        {"my_b", key({num(424242)}), obj({{"id", num(424242)}, {"n", num(5)}}), 1},
    }));
    REQUIRE_FALSE(second_fails);
    CHECK(second_fails.error().code() == molt::errc::invalid_argument);
    CHECK(second_fails.error().message().find("MySQL error 1366") != std::string::npos);
    // Neither the statement nor other rows' values (SOCI appends both).
    CHECK(second_fails.error().message().find("424242") == std::string::npos);
    CHECK(second_fails.error().message().find("INSERT") == std::string::npos);
    CHECK(t.one("SELECT CAST(COUNT(*) AS CHAR) FROM my_a") == "0");

    auto unknown_column =
        t.post(body({{"my_a", key({num(1)}), obj({{"id", num(1)}, {"w", str("x")}}), 1}}));
    REQUIRE_FALSE(unknown_column);
    CHECK(unknown_column.error().message() ==
          "table appdb.my_a, message 0: the target has no column \"w\"");

    molt::qualified_name wrong;
    wrong.parts = {"nope"};
    auto decoded =
        molt::proto::decode_webhook(body({{"my_a", key({num(1)}), obj({{"id", num(1)}}), 1}}));
    auto unknown_schema = t.applier.accept_rows(wrong, decoded->rows);
    REQUIRE_FALSE(unknown_schema);
    CHECK(unknown_schema.error().code() == molt::errc::not_found);
    CHECK(unknown_schema.error().message() == "unknown schema \"nope\": no such database");
    t.sql("DROP TABLE my_a");
    t.sql("DROP TABLE my_b");
}

// Issue 13, point 14: every JSON value a JSONB column can hold reaches a JSON column unchanged,
// scalars at the top level included (MariaDB's JSON is LONGTEXT with a json_valid() check, so
// the text stored is the text sent). A JSONB 'null' arrives as {"__crdb_json_null__": true} when
// the changefeed has encode_json_value_null_as_object.
TEST_CASE("mysql apply: JSON scalars, arrays and objects at the top level round-trip",
          "[integration][mysql]") {
    apply_stack t("MOLT_TEST_MYSQL_URL");
    t.sql("DROP TABLE IF EXISTS my_json");
    t.sql(
        "CREATE TABLE my_json (id BIGINT PRIMARY KEY, j JSON, lt LONGTEXT) "
        "CHARACTER SET utf8mb4");
    const std::string tricky = "say \"hi\"\\ \n\t ünï 🦀";
    // value, the JSON text stored, JSON_TYPE()
    const std::vector<std::tuple<json, std::string, std::string>> cases = {
        {json::boolean(true), "true", "BOOLEAN"},
        {json::boolean(false), "false", "BOOLEAN"},
        {str("pending"), R"("pending")", "STRING"},
        {str("42"), R"("42")", "STRING"},
        {str(""), R"("")", "STRING"},
        {str(tricky), R"("say \"hi\"\\ \n\t ünï 🦀")", "STRING"},
        {json::number("42"), "42", "INTEGER"},
        {json::number("-1.5"), "-1.5", "DOUBLE"},
        {json::number("1E+2"), "1E+2", ""},  // the text is what counts; JSON_TYPE not checked
        {json::array({num(1), str("a"), json::null(), json::boolean(true)}), R"([1,"a",null,true])",
         "ARRAY"},
        {json::array(), "[]", "ARRAY"},
        {obj({{"a", obj({{"b", str("c")}})}, {"n", json::null()}}), R"({"a":{"b":"c"},"n":null})",
         "OBJECT"},
        {obj({{"__crdb_json_null__", json::boolean(true)}}), "null", "NULL"},
    };
    std::vector<row> rows;
    for (size_t i = 0; i < cases.size(); ++i) {
        const auto id = static_cast<int64_t>(i + 1);
        rows.push_back(
            {"my_json", key({num(id)}), obj({{"id", num(id)}, {"j", std::get<0>(cases[i])}})});
    }
    // A plain text column keeps the string itself, not its JSON text.
    rows.push_back({"my_json", key({num(99)}),
                    obj({{"id", num(99)}, {"j", str("x")}, {"lt", str("pending")}})});
    rows.push_back({"my_json", key({num(100)}), obj({{"id", num(100)}, {"j", json::null()}})});
    auto applied = t.post(body(rows));
    if (!applied) {
        FAIL(applied.error().message());
    }
    for (size_t i = 0; i < cases.size(); ++i) {
        const std::string id = std::to_string(i + 1);
        INFO("case " << id << ": " << std::get<1>(cases[i]));
        CHECK(t.one("SELECT CAST(j AS CHAR) FROM my_json WHERE id = " + id) ==
              std::get<1>(cases[i]));
        if (!std::get<2>(cases[i]).empty()) {
            CHECK(t.one("SELECT JSON_TYPE(j) FROM my_json WHERE id = " + id) ==
                  std::get<2>(cases[i]));
        }
    }
    CHECK(t.one("SELECT JSON_UNQUOTE(j) FROM my_json WHERE id = 6") == tricky);
    CHECK(t.one("SELECT lt FROM my_json WHERE id = 99") == "pending");
    CHECK(t.one("SELECT CAST(COUNT(*) AS CHAR) FROM my_json WHERE id = 100 AND j IS NULL") == "1");
    t.sql("DROP TABLE my_json");
}

// Issue 13, point 12: a black-holed server (one that accepts and never answers, or never
// accepts) must not hold a thread for minutes: connecting is bounded by a timeout derived from
// the apply timeout (at least 2 s, at most 10 s).
TEST_CASE("mysql connect: a black-holed server fails within the connect timeout",
          "[integration][mysql]") {
    for (const bool accepting : {true, false}) {
        INFO((accepting ? "accepts, never answers" : "never accepts"));
        black_hole hole(accepting);
        const auto url =
            molt::conn_url::parse(fmt::format("mysql://app:app@127.0.0.1:{}/appdb", hole.port()))
                .value();
        check_connect_bounded(hole, std::chrono::seconds(2),
                              [&] { return mysql::connect(url, std::chrono::seconds(2)); });
    }
}

namespace {

// This machine's name when it resolves to 127.0.0.1 (a name the test server's certificate,
// made for localhost and 127.0.0.1, does not hold), or "".
std::string other_name_for_loopback() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0 || std::string_view(name) == "localhost") {
        return "";
    }
    addrinfo hints{};
    hints.ai_family = AF_INET;
    addrinfo* found = nullptr;
    if (::getaddrinfo(name, nullptr, &hints, &found) != 0) {
        return "";
    }
    bool loopback = false;
    for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
        loopback = loopback || ntohl(in->sin_addr.s_addr) == INADDR_LOOPBACK;
    }
    ::freeaddrinfo(found);
    return loopback ? name : "";
}

}  // namespace

// Issue 13, point 15: sslmode=verify-ca and verify-full are enforced on MySQL targets: the
// server's certificate must chain to sslrootcert, and for verify-full be valid for the host.
TEST_CASE("mysql connect: sslmode verify-ca and verify-full check the server's certificate",
          "[integration][mysql]") {
    const auto base = molt::conn_url::parse(molt::test::server_url("MOLT_TEST_MYSQL_URL")).value();
    const char* tls_dir = std::getenv("MOLT_TEST_TLS_DIR");
    if (tls_dir == nullptr) {
        FAIL("MOLT_TEST_TLS_DIR is not set (test/support/db/with-dbs.sh sets it)");
    }
    const std::string dir = tls_dir;
    auto url = [&](const std::string& host, const std::string& query) {
        return molt::conn_url::parse(fmt::format("mysql://app:app@{}:{}/appdb?{}", host,
                                                 base.port_or_default(), query))
            .value();
    };
    auto cipher = [](target_session& s) {
        auto rows = s.query(
            "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS "
            "WHERE VARIABLE_NAME = 'Ssl_cipher'",
            {});
        REQUIRE(rows);
        REQUIRE(rows->size() == 1);
        return rows->front()[0].value_or("");
    };
    const std::string ca = "sslrootcert=" + dir + "/ca.crt";
    const std::string client = "&sslcert=" + dir + "/client.crt&sslkey=" + dir + "/client.key";

    SECTION("the right CA and host: connected over TLS") {
        for (const std::string host : {"127.0.0.1", "localhost"}) {
            for (const std::string mode : {"require", "verify-ca", "verify-full"}) {
                INFO(host << " sslmode=" << mode);
                auto s = mysql::connect(url(host, "sslmode=" + mode + "&" + ca + client),
                                        std::chrono::seconds(10));
                if (!s) {
                    FAIL(s.error().message());
                }
                CHECK_FALSE(cipher(**s).empty());
            }
        }
    }
    SECTION("a host name the certificate does not hold: verify-full refuses, verify-ca accepts") {
        const std::string other = other_name_for_loopback();
        if (other.empty()) {
            WARN("no name other than localhost resolves to 127.0.0.1 here; not checked");
            return;
        }
        auto full =
            mysql::connect(url(other, "sslmode=verify-full&" + ca), std::chrono::seconds(10));
        REQUIRE_FALSE(full);
        INFO(full.error().message());
        CHECK(full.error().message().find("not valid for host \"" + other + "\"") !=
              std::string::npos);
        CHECK(full.error().message().find("sslmode=verify-full") != std::string::npos);
        auto verify_ca =
            mysql::connect(url(other, "sslmode=verify-ca&" + ca), std::chrono::seconds(10));
        if (!verify_ca) {
            FAIL(verify_ca.error().message());
        }
        CHECK_FALSE(cipher(**verify_ca).empty());
    }
    SECTION("a CA that did not sign the server's certificate: refused") {
        const std::string other_ca =
            fmt::format("/tmp/molt-test-other-ca-{}.crt", static_cast<long>(::getpid()));
        const std::string command =
            "openssl req -x509 -newkey rsa:2048 -nodes -keyout /dev/null -out '" + other_ca +
            "' -days 1 -subj '/CN=another CA' >/dev/null 2>&1";
        REQUIRE(std::system(command.c_str()) == 0);
        for (const std::string mode : {"require", "verify-ca", "verify-full"}) {
            INFO("sslmode=" << mode);
            auto s =
                mysql::connect(url("127.0.0.1", "sslmode=" + mode + "&sslrootcert=" + other_ca),
                               std::chrono::seconds(10));
            REQUIRE_FALSE(s);
            INFO(s.error().message());
            CHECK(s.error().message().find("certificate") != std::string::npos);
        }
        std::remove(other_ca.c_str());
    }
}

TEST_CASE("mysql apply: column families merge into one row; a delete comes per family",
          "[integration][mysql][families]") {
    column_families_immediate("MOLT_TEST_MYSQL_URL");
}

// Multi-megabyte rows (changefeed-webhook.md §8: CockroachDB sends rows as large as they are):
// one request with several whose sum is above the server's max_allowed_packet (16 MiB on
// MariaDB 10.11) is applied, not refused as a packet too big, forever.
TEST_CASE("mysql apply: rows of megabytes, more in one request than max_allowed_packet",
          "[integration][mysql]") {
    apply_stack t("MOLT_TEST_MYSQL_URL");
    const int64_t packet = std::stoll(*t.one("SELECT @@max_allowed_packet"));
    t.sql("DROP TABLE IF EXISTS my_big");
    t.sql("CREATE TABLE my_big (id BIGINT PRIMARY KEY, doc LONGTEXT) CHARACTER SET utf8mb4");
    const size_t each = static_cast<size_t>(packet) / 3;  // 4 rows: above the packet
    std::vector<row> rows;
    for (int64_t id = 1; id <= 4; ++id) {
        rows.push_back({"my_big", key({num(id)}),
                        obj({{"id", num(id)}, {"doc", str(std::string(each, 'a' + id))}})});
    }
    auto applied = t.post(body(rows));
    if (!applied) {
        FAIL(applied.error().message());
    }
    CHECK(t.one("SELECT count(*) FROM my_big") == "4");
    CHECK(t.one("SELECT sum(length(doc)) FROM my_big") == std::to_string(4 * each));
    CHECK(t.one("SELECT count(*) FROM my_big WHERE doc = repeat(char(ascii('a') + id), " +
                std::to_string(each) + ")") == "4");

    // Ten rows of 1 MB that travel escaped (quotes, backslashes): several to a statement.
    const std::string tricky = "it's a \\ \"quote\" ";
    std::string doc;
    while (doc.size() < 1000000) {
        doc += tricky;
    }
    rows.clear();
    for (int64_t id = 11; id <= 20; ++id) {
        rows.push_back({"my_big", key({num(id)}), obj({{"id", num(id)}, {"doc", str(doc)}})});
    }
    applied = t.post(body(rows));
    if (!applied) {
        FAIL(applied.error().message());
    }
    const size_t repeats = doc.size() / tricky.size();
    CHECK(t.one("SELECT count(*) FROM my_big WHERE id > 10 AND doc = REPEAT('it''s a \\\\ "
                "\"quote\" ', " +
                std::to_string(repeats) + ")") == "10");
    CHECK(t.one("SELECT length(doc) FROM my_big WHERE id = 20") == std::to_string(doc.size()));
    t.sql("DROP TABLE my_big");
}

// The consistent mode runs a window's transactions in parallel on disjoint keys and commits them
// in order. Under InnoDB's REPEATABLE READ a delete of a key the target does not have (a replay,
// a row already deleted) locks the gap around it, and another transaction's insert into that gap
// waits for it — behind a commit that waits for the inserting one: a stall until a lock timeout.
// Target sessions run at READ COMMITTED, where neither waits.
TEST_CASE("mysql sessions: writes to disjoint keys never wait on each other's gap locks",
          "[integration][mysql]") {
    const auto url = molt::conn_url::parse(molt::test::server_url("MOLT_TEST_MYSQL_URL")).value();
    auto first = mysql::connect(url, std::chrono::seconds(1));
    auto second = mysql::connect(url, std::chrono::seconds(1));
    REQUIRE(first);
    REQUIRE(second);
    target_session& a = **first;
    target_session& b = **second;
    REQUIRE(a.execute("DROP TABLE IF EXISTS gap_locks", {}));
    REQUIRE(a.execute("CREATE TABLE gap_locks (id BIGINT PRIMARY KEY, v TEXT)", {}));
    REQUIRE(a.execute("INSERT INTO gap_locks VALUES (10, 'a'), (20, 'b'), (30, 'c')", {}));
    REQUIRE(a.begin());
    // Key 15 is not there; key 20 is (an update through the upsert).
    REQUIRE(a.execute("DELETE FROM `gap_locks` WHERE (`id`) IN ((:p1))", {"15"}));
    REQUIRE(
        a.execute("INSERT INTO `gap_locks` (`id`,`v`) VALUES (:p1,:p2) ON DUPLICATE KEY "
                  "UPDATE `v`=VALUES(`v`)",
                  {"20", "B"}));
    REQUIRE(b.begin());
    for (const char* id : {"12", "17", "25"}) {
        INFO("inserting key " << id << " while the other transaction is open");
        auto inserted = b.execute(
            "INSERT INTO `gap_locks` (`id`,`v`) VALUES (:p1,:p2) ON DUPLICATE KEY UPDATE "
            "`v`=VALUES(`v`)",
            {id, "new"});
        if (!inserted) {
            FAIL_CHECK(inserted.error().message());
        }
    }
    REQUIRE(b.commit());
    REQUIRE(a.commit());
    auto rows = a.query("SELECT count(*) FROM gap_locks", {});
    REQUIRE(rows);
    CHECK(rows->at(0).at(0) == "6");
    REQUIRE(a.execute("DROP TABLE gap_locks", {}));
}

TEST_CASE("mysql sessions: values reach the server byte for byte, whatever the names hold",
          "[integration][mysql]") {
    // Statements are sent with their values written in (escaped on the connection, as SOCI's
    // MySQL backend does): a value that looks like SQL or a placeholder stays a value, and a
    // name that holds ':p1', a quote or a backtick is not taken for a placeholder.
    const auto url = molt::conn_url::parse(molt::test::server_url("MOLT_TEST_MYSQL_URL")).value();
    auto session = mysql::connect(url, std::chrono::seconds(5));
    REQUIRE(session);
    target_session& s = **session;
    REQUIRE(s.execute("DROP VIEW IF EXISTS inline_view", {}));
    REQUIRE(s.execute("DROP TABLE IF EXISTS inline_values", {}));
    REQUIRE(s.execute(
        "CREATE TABLE inline_values (id BIGINT PRIMARY KEY, `a:p1` TEXT, `b``:c'` TEXT)", {}));
    const std::vector<std::string> values = {
        "it's",
        "back\\slash\\",
        std::string("nul\0byte", 8),
        "line\nfeed\rreturn\x1a",
        ":p1 :p2 ?",
        "'); DROP TABLE inline_values; --",
        "\"double\" `back`",
        "日本語 😀",
        "",
    };
    const std::string insert =
        "INSERT INTO `inline_values` (`id`,`a:p1`,`b``:c'`) VALUES (:p1,:p2,:p3) "
        "ON DUPLICATE KEY UPDATE `a:p1`=VALUES(`a:p1`)";
    // Each value twice: with the server's sql_mode as it is, and with NO_BACKSLASH_ESCAPES
    // (a backslash is then an ordinary character; a quote is escaped by doubling it).
    for (const bool backslash_is_plain : {false, true}) {
        if (backslash_is_plain) {
            REQUIRE(s.execute(
                "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES')", {}));
        }
        for (size_t i = 0; i < values.size(); ++i) {
            INFO("value " << i << (backslash_is_plain ? " with NO_BACKSLASH_ESCAPES" : ""));
            const size_t id = i + (backslash_is_plain ? values.size() : 0);
            auto done = s.execute(insert, {std::to_string(id), values[i], std::nullopt});
            if (!done) {
                FAIL(done.error().message());
            }
        }
    }
    // (Queries still bind through SOCI, which would take `a:p1` for a placeholder: read through
    // a view.)
    REQUIRE(
        s.execute("CREATE OR REPLACE VIEW inline_view AS SELECT id, `a:p1` AS a, `b``:c'` AS b "
                  "FROM inline_values",
                  {}));
    auto rows = s.query(
        "SELECT CAST(id AS CHAR), HEX(a), CAST(b IS NULL AS CHAR) FROM inline_view ORDER BY id",
        {});
    REQUIRE(rows);
    REQUIRE(rows->size() == 2 * values.size());
    for (size_t i = 0; i < rows->size(); ++i) {
        INFO("row " << i);
        std::string hex;
        for (const unsigned char c : values[i % values.size()]) {
            hex += fmt::format("{:02X}", c);
        }
        CHECK(rows->at(i).at(1) == hex);
        CHECK(rows->at(i).at(2) == "1");
    }
    // One value too few or too many: an error that says so, nothing written.
    const std::string one = "INSERT INTO `inline_values` (`id`) VALUES (:p1)";
    for (const sql_params& wrong : {sql_params{}, sql_params{"100", "101"}}) {
        auto refused = s.execute(one, wrong);
        REQUIRE_FALSE(refused);
        CHECK_THAT(refused.error().message(),
                   Catch::Matchers::Contains(
                       fmt::format("{} values for a statement with 1 placeholders", wrong.size())));
    }
    // A statement answering several results (a userscript's CALL) is read to its end: the
    // session takes the next statement.
    REQUIRE(s.execute("DROP PROCEDURE IF EXISTS inline_results", {}));
    REQUIRE(s.execute("CREATE PROCEDURE inline_results() BEGIN SELECT 1; SELECT 2, 3; END", {}));
    auto called = s.execute("CALL inline_results()", {});
    if (!called) {
        FAIL(called.error().message());
    }
    auto after = s.execute(one, {"102"});
    if (!after) {
        FAIL(after.error().message());
    }
    REQUIRE(s.execute("DELETE FROM inline_values WHERE id = :p1", {"102"}));
    REQUIRE(s.execute("DROP PROCEDURE inline_results", {}));
    auto count = s.query("SELECT CAST(COUNT(*) AS CHAR) FROM inline_values", {});
    REQUIRE(count);
    CHECK(count->at(0).at(0) == std::to_string(2 * values.size()));
    REQUIRE(s.execute("DROP VIEW inline_view", {}));
    REQUIRE(s.execute("DROP TABLE inline_values", {}));
}
