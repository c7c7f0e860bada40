// Which registered ODBC driver serves an oracle:// URL, and the URL as a DSN-less connection
// string (the password braced when it must be, and redacted whole).
#include "molt/common/odbc_setup.hpp"

#include <catch2/catch.hpp>

#include "molt/common/conn_url.hpp"
#include "molt/common/redact.hpp"

using namespace molt;

TEST_CASE("odbc setup: the Oracle driver and connection string", "[odbc]") {
    const std::vector<std::string> registered = {"PostgreSQL Unicode", "Oracle 19c ODBC driver",
                                                 "Oracle 21c ODBC driver", "MariaDB Unicode"};
    CHECK(odbc_setup::choose_oracle_driver(registered, std::nullopt).value() ==
          "Oracle 21c ODBC driver");
    CHECK(odbc_setup::choose_oracle_driver(registered, "Oracle 19c ODBC driver").value() ==
          "Oracle 19c ODBC driver");
    auto unknown = odbc_setup::choose_oracle_driver(registered, "Oracle 23ai");
    REQUIRE_FALSE(unknown);
    CHECK_THAT(unknown.error().message(), Catch::Contains("\"Oracle 23ai\" (odbcDriver) is not "
                                                          "registered"));
    CHECK_THAT(unknown.error().message(), Catch::Contains("\"Oracle 21c ODBC driver\""));
    auto none = odbc_setup::choose_oracle_driver({"PostgreSQL Unicode"}, std::nullopt);
    REQUIRE_FALSE(none);
    CHECK_THAT(none.error().message(), Catch::Contains("no Oracle ODBC driver is registered"));
    CHECK_THAT(none.error().message(), Catch::Contains("odbc_update_ini.sh"));
    CHECK_THAT(none.error().message(), Catch::Contains("odbcinst.ini"));

    auto url = conn_url::parse("oracle://C%23%23MIGRATION_USER:p%3Bw%7Dd@db.example:1521/ORCLPDB1");
    REQUIRE(url);
    const std::string odbc = odbc_setup::oracle_connection_string(*url, "Oracle 21c ODBC driver");
    CHECK(odbc ==
          "Driver={Oracle 21c ODBC driver};DBQ=db.example:1521/ORCLPDB1;UID=C##MIGRATION_USER;"
          "PWD={p;w}}d}");
    CHECK(redact_secrets(odbc) ==
          "Driver={Oracle 21c ODBC driver};DBQ=db.example:1521/ORCLPDB1;UID=C##MIGRATION_USER;"
          "PWD=xxxxx");
    auto v6 = conn_url::parse("oracle://u:p@[::1]/SVC");
    REQUIRE(v6);
    CHECK(odbc_setup::oracle_connection_string(*v6, "Oracle") ==
          "Driver=Oracle;DBQ=[::1]:1521/SVC;UID=u;PWD=p");

    CHECK(conn_url::parse("oracle://u:p@h:1521/S?odbcDriver=Oracle%2021c%20ODBC%20driver"));
    auto tls = conn_url::parse("oracle://u:p@h:1521/S?sslmode=require");
    REQUIRE_FALSE(tls);
    CHECK_THAT(tls.error().message(), Catch::Contains("unsupported Oracle connection parameter "
                                                      "\"sslmode\""));
}

TEST_CASE("odbc setup: connection-string values", "[odbc]") {
    CHECK(odbc_setup::attribute_value("plain") == "plain");
    CHECK(odbc_setup::attribute_value("two words") == "{two words}");
    CHECK(odbc_setup::attribute_value("a;b=c") == "{a;b=c}");
    CHECK(odbc_setup::attribute_value("x}y{") == "{x}}y{}");
    CHECK(odbc_setup::attribute_value("") == "{}");
}
