// molt's own ODBC client (fetch/db/odbc_client.cpp, what molt fetch uses for Oracle targets),
// through the PostgreSQL ODBC driver against the throwaway server: columns and rows as text,
// NULLs, values longer than one read, statements without rows, the server's code of a failure,
// and a connection error that names the database but not the password.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "molt/common/conn_url.hpp"
#include "molt/common/odbc_setup.hpp"
#include "molt/fetch/sql_client.hpp"
#include "molt/test/servers.hpp"

using namespace molt;

TEST_CASE("molt's ODBC client through the PostgreSQL ODBC driver", "[integration][odbc]") {
    const conn_url url = conn_url::parse(test::server_url("MOLT_TEST_PG_URL")).value();
    const std::string connection = fmt::format(
        "Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={};Database={};Uid={};Pwd={}",
        url.port_or_default(), url.database(), url.user(),
        odbc_setup::attribute_value(url.password()));
    auto connected = fetch::connect_odbc(connection, url.redacted(), "--target", dialect::oracle,
                                         std::chrono::seconds(5));
    INFO((connected ? std::string() : connected.error().message()));
    REQUIRE(connected);
    fetch::sql_client& db = **connected;
    CHECK(db.dialect() == dialect::oracle);

    auto rows = db.query(
        "SELECT 1 AS one, NULL AS nothing, repeat('ab', 5000) AS long_text, 'é' AS accent "
        "UNION ALL SELECT 2, 'x', '', repeat('é', 3000)");
    INFO((rows ? std::string() : rows.error().message()));
    REQUIRE(rows);
    CHECK(rows->columns == std::vector<std::string>{"one", "nothing", "long_text", "accent"});
    REQUIRE(rows->rows.size() == 2);
    CHECK(rows->rows[0][0] == "1");
    CHECK_FALSE(rows->rows[0][1].has_value());
    CHECK(rows->rows[0][2].value_or("").size() == 10000);  // read over several SQLGetData calls
    CHECK(rows->rows[0][2].value_or("").substr(9996) == "abab");
    CHECK(rows->rows[1][1] == "x");
    CHECK(rows->rows[1][2] == "");  // empty, not NULL
    CHECK(rows->rows[0][3] == "é");
    // 6 000 bytes of two-byte characters, read over several SQLGetData calls: none split.
    std::string accents;
    for (int i = 0; i < 3000; ++i) {
        accents += "é";
    }
    CHECK(rows->rows[1][3] == accents);

    auto created = db.query("CREATE TEMPORARY TABLE odbc_client_probe (i int)");
    INFO((created ? std::string() : created.error().message()));
    REQUIRE(created);
    CHECK(created->rows.empty());
    auto touched_nothing = db.query("DELETE FROM odbc_client_probe WHERE 1 = 0");
    REQUIRE(touched_nothing);
    CHECK(touched_nothing->rows.empty());

    auto missing = db.query("SELECT * FROM no_such_table_here");
    REQUIRE_FALSE(missing);
    CHECK(db.last_error_code() == "42P01");
    CHECK_THAT(missing.error().message(), Catch::StartsWith("--target: "));
    CHECK_THAT(missing.error().message(), Catch::Contains("no_such_table_here"));

    // An ORA number in the message is the code (Oracle's driver writes "ORA-01031: ...").
    auto ora = db.query("DO $$BEGIN RAISE EXCEPTION 'ORA-01031: insufficient privileges'; END$$");
    REQUIRE_FALSE(ora);
    CHECK(db.last_error_code() == "1031");

    auto refused = fetch::connect_odbc(
        fmt::format("Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={};Database={};Uid={};"
                    "Pwd=wrong-s3cret",
                    url.port_or_default(), url.database(), url.user()),
        "oracle://u:xxxxx@db/SVC", "--target", dialect::oracle, std::chrono::seconds(5));
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error().message(),
               Catch::StartsWith("--target: error connect: cannot connect to "
                                 "oracle://u:xxxxx@db/SVC: "));
    CHECK(refused.error().message().find("wrong-s3cret") == std::string::npos);
}
