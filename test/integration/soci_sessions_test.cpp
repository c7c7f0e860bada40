// SOCI sessions to the throwaway PostgreSQL and MariaDB, opened from connection strings parsed
// by molt::conn_url — the path every later component takes to a database.
#include <string>

#include <catch2/catch.hpp>
#include <soci/mysql/soci-mysql.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

#include "molt/common/conn_url.hpp"
#include "molt/common/percent.hpp"
#include "molt/test/servers.hpp"

namespace {

molt::conn_url parse(const std::string& text) {
    auto url = molt::conn_url::parse(text);
    if (!url) {
        FAIL("cannot parse test server URL: " << url.error().message());
    }
    return std::move(url).value();
}

// The same server and database as `base`, as another user.
std::string with_credentials(const molt::conn_url& base, const std::string& user,
                             const std::string& password) {
    std::string url = base.scheme() + "://" + molt::percent_encode(user) + ":" +
                      molt::percent_encode(password) + "@" + base.host() + ":" +
                      std::to_string(base.port_or_default()) + "/" + base.database();
    if (base.dialect() == molt::dialect::postgres) {
        url += "?sslmode=disable";
    }
    return url;
}

// A password with every character a URL treats specially.
const std::string tricky_password = "p@ss:w/rd?#%&+ 'q\"\\";

}  // namespace

TEST_CASE("soci: PostgreSQL session from a postgres:// URL", "[integration][postgres]") {
    const molt::conn_url url = parse(molt::test::server_url("MOLT_TEST_PG_URL"));
    soci::session sql(soci::postgresql, url.libpq_conninfo());
    std::string version;
    sql << "SELECT version()", soci::into(version);
    CHECK(version.rfind("PostgreSQL 15", 0) == 0);

    sql << "DROP TABLE IF EXISTS molt_soci_check";
    sql << "CREATE TABLE molt_soci_check (id INT8 PRIMARY KEY, note TEXT)";
    const std::string note = "ééé 🦀 \"quoted\" 'single'";
    long long id = 9007199254740993LL;  // 2^53 + 1
    sql << "INSERT INTO molt_soci_check VALUES (:id, :note)", soci::use(id), soci::use(note);
    long long read_id = 0;
    std::string read_note;
    sql << "SELECT id, note FROM molt_soci_check", soci::into(read_id), soci::into(read_note);
    CHECK(read_id == id);
    CHECK(read_note == note);
    sql << "DROP TABLE molt_soci_check";
}

TEST_CASE("soci: PostgreSQL user whose password needs percent-encoding",
          "[integration][postgres]") {
    const molt::conn_url admin = parse(molt::test::server_url("MOLT_TEST_PG_ADMIN_URL"));
    const molt::conn_url app = parse(molt::test::server_url("MOLT_TEST_PG_URL"));
    {
        soci::session sql(soci::postgresql, admin.libpq_conninfo());
        sql << "DROP ROLE IF EXISTS molt_tricky";
        std::string escaped;
        for (const char c : tricky_password) {
            escaped += c == '\'' ? std::string("''") : std::string(1, c);
        }
        sql << "CREATE ROLE molt_tricky LOGIN PASSWORD '" + escaped + "'";
    }
    const molt::conn_url tricky = parse(with_credentials(app, "molt_tricky", tricky_password));
    CHECK(tricky.password() == tricky_password);
    {
        soci::session sql(soci::postgresql, tricky.libpq_conninfo());
        std::string user;
        sql << "SELECT current_user", soci::into(user);
        CHECK(user == "molt_tricky");
    }
    // A wrong password fails, and the driver's message does not contain the password.
    const molt::conn_url wrong = parse(with_credentials(app, "molt_tricky", "Wr0ng-Pa55"));
    try {
        soci::session sql(soci::postgresql, wrong.libpq_conninfo());
        FAIL("connected with a wrong password");
    } catch (const soci::soci_error& e) {
        CHECK(std::string(e.what()).find("Wr0ng-Pa55") == std::string::npos);
    }
    soci::session sql(soci::postgresql, admin.libpq_conninfo());
    sql << "DROP ROLE molt_tricky";
}

TEST_CASE("soci: MariaDB session from a mysql:// URL and from the DSN form",
          "[integration][mysql]") {
    const molt::conn_url url = parse(molt::test::server_url("MOLT_TEST_MYSQL_URL"));
    soci::session sql(soci::mysql, url.soci_mysql());
    std::string version;
    sql << "SELECT VERSION()", soci::into(version);
    CHECK(version.find("MariaDB") != std::string::npos);

    sql << "DROP TABLE IF EXISTS molt_soci_check";
    sql << "CREATE TABLE molt_soci_check (id BIGINT PRIMARY KEY, note TEXT) CHARACTER SET utf8mb4";
    const std::string note = "ééé 🦀 \"quoted\" 'single'";
    long long id = 9007199254740993LL;
    sql << "SET NAMES utf8mb4";
    sql << "INSERT INTO molt_soci_check VALUES (:id, :note)", soci::use(id), soci::use(note);
    long long read_id = 0;
    std::string read_note;
    sql << "SELECT id, note FROM molt_soci_check", soci::into(read_id), soci::into(read_note);
    CHECK(read_id == id);
    CHECK(read_note == note);
    sql << "DROP TABLE molt_soci_check";

    // The same server written as a go-sql-driver DSN.
    const std::string dsn = "mysql://" + molt::percent_encode(url.user()) + ":" +
                            molt::percent_encode(url.password()) + "@tcp(" + url.host() + ":" +
                            std::to_string(url.port_or_default()) + ")/" + url.database();
    const molt::conn_url dsn_url = parse(dsn);
    CHECK(dsn_url.is_mysql_dsn());
    soci::session dsn_sql(soci::mysql, dsn_url.soci_mysql());
    std::string database;
    dsn_sql << "SELECT DATABASE()", soci::into(database);
    CHECK(database == url.database());
}

TEST_CASE("soci: MariaDB user whose password needs percent-encoding", "[integration][mysql]") {
    const molt::conn_url admin = parse(molt::test::server_url("MOLT_TEST_MYSQL_ADMIN_URL"));
    const molt::conn_url app = parse(molt::test::server_url("MOLT_TEST_MYSQL_URL"));
    {
        soci::session sql(soci::mysql, admin.soci_mysql());
        sql << "DROP USER IF EXISTS 'molt_tricky'@'%'";
        sql << "CREATE USER 'molt_tricky'@'%' IDENTIFIED BY :pw", soci::use(tricky_password);
        sql << "GRANT SELECT ON " + app.database() + ".* TO 'molt_tricky'@'%'";
    }
    const molt::conn_url tricky = parse(with_credentials(app, "molt_tricky", tricky_password));
    {
        soci::session sql(soci::mysql, tricky.soci_mysql());
        std::string user;
        sql << "SELECT CURRENT_USER()", soci::into(user);
        CHECK(user == "molt_tricky@%");
    }
    soci::session sql(soci::mysql, admin.soci_mysql());
    sql << "DROP USER 'molt_tricky'@'%'";
}
