#include "molt/common/conn_url.hpp"

#include <catch2/catch.hpp>

using molt::conn_url;
using molt::dialect;
using molt::ssl_mode;

namespace {

conn_url parse_ok(std::string_view text) {
    auto parsed = conn_url::parse(text);
    INFO("input: " << text);
    if (!parsed) {
        FAIL("unexpected error: " << parsed.error().message());
    }
    return std::move(parsed).value();
}

}  // namespace

TEST_CASE("conn_url: the CockroachDB source example of the failback docs", "[conn_url]") {
    const conn_url u =
        parse_ok("postgres://crdb_user@localhost:26257/defaultdb?sslmode=verify-full");
    CHECK(u.dialect() == dialect::postgres);
    CHECK(u.user() == "crdb_user");
    CHECK_FALSE(u.has_password());
    CHECK(u.host() == "localhost");
    CHECK(u.port() == 26257);
    CHECK(u.database() == "defaultdb");
    CHECK(u.tls().mode == ssl_mode::verify_full);
    CHECK(u.libpq_conninfo() ==
          "host=localhost port=26257 dbname=defaultdb user=crdb_user sslmode=verify-full");
}

TEST_CASE("conn_url: the PostgreSQL target example", "[conn_url]") {
    const conn_url u =
        parse_ok("postgres://postgres:postgres@localhost:5432/molt?sslmode=verify-full");
    CHECK(u.user() == "postgres");
    CHECK(u.password() == "postgres");
    CHECK(u.port_or_default() == 5432);
    CHECK(u.database() == "molt");
    CHECK(u.redacted() == "postgres://postgres:xxxxx@localhost:5432/molt?sslmode=verify-full");
}

TEST_CASE("conn_url: the MySQL target example with percent-encoded certificate paths",
          "[conn_url]") {
    const conn_url u = parse_ok(
        "mysql://user:password@localhost/molt?sslcert=.%2fsource_certs%2fclient.root.crt&sslkey=."
        "%2fsource_certs%2fclient.root.key&sslmode=verify-full&sslrootcert=.%2fsource_certs%2fca."
        "crt");
    CHECK(u.dialect() == dialect::mysql);
    CHECK_FALSE(u.is_mysql_dsn());
    CHECK(u.user() == "user");
    CHECK(u.password() == "password");
    CHECK(u.host() == "localhost");
    CHECK_FALSE(u.port().has_value());
    CHECK(u.port_or_default() == 3306);
    CHECK(u.database() == "molt");
    CHECK(u.tls().mode == ssl_mode::verify_full);
    CHECK(u.tls().cert == "./source_certs/client.root.crt");
    CHECK(u.tls().key == "./source_certs/client.root.key");
    CHECK(u.tls().root_cert == "./source_certs/ca.crt");
    CHECK(u.soci_mysql() ==
          "host=127.0.0.1 port=3306 dbname=molt user=user password=password "
          "sslca=./source_certs/ca.crt sslcert=./source_certs/client.root.crt "
          "sslkey=./source_certs/client.root.key");
}

TEST_CASE("conn_url: the Oracle target example with a C## user", "[conn_url]") {
    const conn_url u = parse_ok("oracle://C%23%23MIGRATION_USER:password@host:1521/ORCLPDB1");
    CHECK(u.dialect() == dialect::oracle);
    CHECK(u.user() == "C##MIGRATION_USER");
    CHECK(u.password() == "password");
    CHECK(u.host() == "host");
    CHECK(u.port() == 1521);
    CHECK(u.database() == "ORCLPDB1");
    CHECK(u.redacted() == "oracle://C%23%23MIGRATION_USER:xxxxx@host:1521/ORCLPDB1");
    CHECK(u.to_url() == "oracle://C%23%23MIGRATION_USER:password@host:1521/ORCLPDB1");
}

TEST_CASE("conn_url: the MOLT docs' secure source with an inline sslmode", "[conn_url]") {
    const conn_url u = parse_ok("postgres://root@localhost:26257/defaultdb?sslmode=verify-full");
    CHECK(u.user() == "root");
    CHECK(u.tls().mode == ssl_mode::verify_full);
}

TEST_CASE("conn_url: go-sql-driver DSN form converts to the URL form", "[conn_url]") {
    const conn_url u = parse_ok("mysql://user:p%40ss@tcp(db.example.com:3307)/molt?parseTime=true");
    CHECK(u.is_mysql_dsn());
    CHECK(u.user() == "user");
    CHECK(u.password() == "p@ss");
    CHECK(u.host() == "db.example.com");
    CHECK(u.port() == 3307);
    CHECK(u.database() == "molt");
    CHECK(u.param("parseTime") == "true");
    CHECK(u.to_url() == "mysql://user:p%40ss@db.example.com:3307/molt?parseTime=true");
    CHECK(u.redacted() == "mysql://user:xxxxx@db.example.com:3307/molt?parseTime=true");

    const conn_url ipv6 = parse_ok("mysql://root@tcp([::1]:3306)/");
    CHECK(ipv6.host() == "::1");
    CHECK(ipv6.database().empty());
    CHECK(ipv6.to_url() == "mysql://root@[::1]:3306");
}

TEST_CASE("conn_url: scheme variants and defaults", "[conn_url]") {
    CHECK(parse_ok("postgresql://u@h/d").dialect() == dialect::postgres);
    CHECK(parse_ok("PostgreSQL://u@h/d").dialect() == dialect::postgres);
    CHECK(parse_ok("pgx://u@h/d").dialect() == dialect::postgres);
    CHECK(parse_ok("ora://u:p@h/S").dialect() == dialect::oracle);
    CHECK(parse_ok("oracle://u:p@h/S").port_or_default() == 1521);
    // A Unix-socket PostgreSQL connection has no host in the URL.
    const conn_url local = parse_ok("postgres:///appdb?host=/var/run/postgresql");
    CHECK(local.host().empty());
    CHECK(local.libpq_conninfo() == "dbname=appdb host=/var/run/postgresql");
    // Surrounding whitespace (a pasted newline) is ignored.
    CHECK(parse_ok("  postgres://u@h/d\n").database() == "d");
}

TEST_CASE("conn_url: special characters survive decoding and re-encoding", "[conn_url]") {
    const conn_url u = parse_ok(
        "postgres://us%20er:a%2452%26%3A%2F%3F%23%40%25@[2001:db8::1]:6543/"
        "my%20db?application_name=molt+failback&options=-c%20x%3D1");
    CHECK(u.user() == "us er");
    CHECK(u.password() == "a$52&:/?#@%");
    CHECK(u.host() == "2001:db8::1");
    CHECK(u.port() == 6543);
    CHECK(u.database() == "my db");
    CHECK(u.param("application_name") == "molt failback");
    CHECK(u.param("options") == "-c x=1");
    auto again = conn_url::parse(u.to_url());
    REQUIRE(again);
    CHECK(again->password() == u.password());
    CHECK(again->database() == u.database());
    CHECK(again->params() == u.params());
    CHECK(u.libpq_conninfo() ==
          "host=2001:db8::1 port=6543 dbname='my db' user='us er' password=a$52&:/?#@% "
          "application_name='molt failback' options='-c x=1'");
}

TEST_CASE("conn_url: libpq and SOCI forms quote what needs quoting", "[conn_url]") {
    const conn_url pg = parse_ok("postgres://o%27brien:it%27s%5C@h:5432/d?sslmode=require");
    CHECK(pg.libpq_conninfo() ==
          "host=h port=5432 dbname=d user='o\\'brien' password='it\\'s\\\\' sslmode=require");
    const conn_url my =
        parse_ok("mysql://app:p%20w@localhost:3307/appdb?sslmode=disable&sslrootcert=ca.pem");
    // sslmode=disable: no TLS files are passed even when given.
    CHECK(my.soci_mysql() == "host=127.0.0.1 port=3307 dbname=appdb user=app password='p w'");
}

TEST_CASE("conn_url: malformed strings name what is wrong", "[conn_url]") {
    struct bad_case {
        const char* input;
        const char* message;
    };
    // Each expected message is the complete error text.
    const bad_case cases[] = {
        {"", "empty connection string"},
        {"   \t ", "empty connection string"},
        {"localhost:5432/db",
         "missing scheme in connection string \"localhost:5432/db\": expected postgres://, "
         "postgresql://, mysql:// or oracle://"},
        {"host=localhost dbname=x",
         "missing scheme in connection string \"host=localhost dbname=x\": expected postgres://, "
         "postgresql://, mysql:// or oracle://"},
        {"http://example.com/db",
         "unrecognised scheme \"http\" in connection string (expected postgres://, "
         "postgresql://, mysql:// or oracle://)"},
        {"cockroach://root@h:26257/db",
         "unrecognised scheme \"cockroach\" in connection string (expected postgres://, "
         "postgresql://, mysql:// or oracle://)"},
        {"postgres://u:p@h:abc/db", "bad port \"abc\": not a number"},
        {"postgres://u:p@h:/db", "empty port after ':' in the host"},
        {"postgres://u:p@h:0/db", "bad port \"0\": must be between 1 and 65535"},
        {"postgres://u:p@h:70000/db", "bad port \"70000\": must be between 1 and 65535"},
        {"postgres://u:p@h:5432/db?sslmode=maybe",
         "invalid sslmode: \"maybe\" (expected disable, allow, prefer, require, verify-ca or "
         "verify-full)"},
        {"postgres://u:p@h/db?sslmode",
         "query parameter \"sslmode\" has no value (expected key=value)"},
        {"postgres://u:p@h/db?=x", "empty query parameter name before '='"},
        {"postgres://u:p@h/db?sslmode=require&sslmode=disable",
         "query parameter \"sslmode\" is given twice"},
        {"postgres://u%zz:p@h/db",
         "bad percent-escape \"%zz\" in the user name (a literal '%' must be written %25)"},
        {"postgres://u:p@h/d%2",
         "bad percent-escape \"%2\" in the database name (a literal '%' "
         "must be written %25)"},
        {"postgres://u:p@h/db?sslrootcert=%G1",
         "bad percent-escape \"%G1\" in the value of query parameter \"sslrootcert\" (a literal "
         "'%' must be written %25)"},
        {"postgres://u:p@[::1/db", "unterminated '[' in host \"[::1\""},
        {"postgres://u:p@[zz::1]:5432/db", "bad IPv6 address \"zz::1\""},
        // Found by fuzz_conn_url: "[1%]" was taken for an IPv6 address.
        {"postgres://u@[1%]:6543/db", "bad IPv6 address \"1%\""},
        {"postgres://u@[fe80::1%25eth0]:5432/db", "bad IPv6 address \"fe80::1%25eth0\""},
        {"postgres://u:p@::1:5432/db",
         "bad host \"::1:5432\": an IPv6 address must be written in brackets, e.g. [::1]:5432"},
        {"postgres://u:p@h1:5432,h2:5432/db",
         "several hosts (\"h1:5432,h2:5432\") are not supported: give exactly one host"},
        {"postgres://u:p@my host/db", "bad character ' ' in host \"my host\""},
        {"postgres://u:p@h/db/extra", "database name \"db/extra\" contains '/'"},
        {"postgres://u:p@h/db#frag",
         "unexpected '#' in connection string: write it as %23 (passwords containing '#' must be "
         "percent-encoded)"},
        {"postgres://u:pa/ss@h/db",
         "unexpected '@' after the host: percent-encode ':', '/', '?', '#' and '@' in the user "
         "name and password (molt escape-password prints the encoded form)"},
        {"postgres://u:p@h/db?sslcert=c.pem",
         "sslcert and sslkey must be given together (client certificate and its key)"},
        {"postgres://u:p@h/d\x01",
         "connection string contains a control character (byte 1 at offset 18)"},
        {"mysql://u:p@tcp(h:3306/db",
         "unterminated \"tcp(\" in MySQL DSN (expected user:password@tcp(host:port)/database)"},
        {"mysql://u:p@tcp()/db", "empty address in \"tcp()\" (expected tcp(host:port))"},
        {"mysql://u:p@udp(h:3306)/db",
         "unknown network \"udp\" in MySQL DSN (expected user:password@tcp(host:port)/database)"},
        {"mysql://u:p@unix(/tmp/mysql.sock)/db",
         "unix sockets in MySQL DSNs are not supported: use tcp(host:port)"},
        {"mysql://u:p@tcp(h:3306)db", "expected '/' and a database name after \"tcp(...)\""},
        {"mysql://u:p@h/molt?sslmode=verify-full",
         "sslmode=verify-full needs sslrootcert (the CA certificate file) for a MySQL connection"},
        {"oracle://u:p@:1521/ORCLPDB1",
         "missing host in Oracle connection string (expected "
         "oracle://user:password@host:1521/SERVICE)"},
        {"oracle://u:p@h:1521",
         "missing service name in Oracle connection string (expected "
         "oracle://user:password@host:1521/SERVICE)"},
    };
    for (const bad_case& c : cases) {
        INFO("input: " << c.input);
        auto parsed = conn_url::parse(c.input);
        REQUIRE_FALSE(parsed);
        const bool expected_kind = parsed.error().code() == molt::errc::invalid_argument ||
                                   parsed.error().code() == molt::errc::unsupported;
        CHECK(expected_kind);
        CHECK(parsed.error().message() == c.message);
    }
}

TEST_CASE("conn_url: errors never echo the password", "[conn_url]") {
    const char* inputs[] = {
        "postgres://user:S3cr%zzet@h/db",         // bad escape inside the password
        "mysql://user:S3cret@tcp(h:99999)/db",    // bad port after a password
        "postgres://user:S3cret@h/db?sslmode=x",  // bad sslmode
        "S3cret",                                 // no scheme at all
        "postgres://user:S3cret@h/db?password=S3cret&password=S3cret",
        "postgres://user:S3cret@h/db?password=S3%zzcret",
    };
    for (const char* input : inputs) {
        INFO("input: " << input);
        auto parsed = conn_url::parse(input);
        REQUIRE_FALSE(parsed);
        if (std::string_view(input) != "S3cret") {
            CHECK(parsed.error().message().find("S3") == std::string::npos);
        }
    }
}

TEST_CASE("conn_url: redacted() hides passwords in userinfo and in parameters", "[conn_url]") {
    const conn_url u =
        parse_ok("postgres://app@h/db?password=hunter2&sslpassword=keypass&sslmode=require");
    const std::string redacted = u.redacted();
    CHECK(redacted == "postgres://app@h/db?password=xxxxx&sslpassword=xxxxx&sslmode=require");
    CHECK(u.to_url().find("hunter2") != std::string::npos);
}

// Issue 13, point 15: every MySQL query parameter is either mapped or refused by name, and the
// go-sql-driver spellings MOLT users write map to what they mean.
TEST_CASE("conn_url: MySQL parameters are mapped or refused by name", "[conn_url]") {
    SECTION("go-sql-driver timeouts become SOCI's (whole seconds, rounded up)") {
        const conn_url u =
            parse_ok("mysql://app:app@db:3306/molt?timeout=5s&readTimeout=1m30s&writeTimeout=1ms");
        CHECK(u.soci_mysql() ==
              "host=db port=3306 dbname=molt user=app password=app connect_timeout=5 "
              "read_timeout=90 write_timeout=1");
    }
    SECTION("tls is the go-sql-driver spelling of sslmode") {
        CHECK(parse_ok("mysql://a@h/d?tls=true&sslrootcert=ca.crt").tls().mode ==
              ssl_mode::verify_full);
        CHECK(parse_ok("mysql://a@h/d?tls=skip-verify&sslrootcert=ca.crt").tls().mode ==
              ssl_mode::require);
        CHECK(parse_ok("mysql://a@h/d?tls=preferred").tls().mode == ssl_mode::prefer);
        CHECK(parse_ok("mysql://a@h/d?tls=false").tls().mode == ssl_mode::disable);
    }
    SECTION("parameters that change nothing for the replicator are accepted") {
        CHECK(parse_ok("mysql://a@h/d?parseTime=true&loc=UTC&charset=utf8mb4").soci_mysql() ==
              "host=h port=3306 dbname=d user=a charset=utf8mb4");
    }
    struct bad_case {
        const char* input;
        const char* message;
    };
    const bad_case cases[] = {
        {"mysql://a@h/d?foo=1&collation=utf8mb4_bin&allowNativePasswords=true",
         "unsupported MySQL connection parameters: \"foo\", \"collation\", "
         "\"allowNativePasswords\" (supported: sslmode, sslrootcert, sslcert, sslkey, tls, "
         "timeout, readTimeout, writeTimeout, charset, parseTime, loc)"},
        {"mysql://a@h/d?tls=custom",
         "unsupported value tls=custom: give sslmode (and sslrootcert, sslcert, sslkey) instead "
         "of a registered TLS configuration (tls=true, skip-verify, preferred or false are "
         "understood)"},
        {"mysql://a@h/d?tls=true&sslmode=verify-full&sslrootcert=ca.crt",
         "give either sslmode or tls, not both"},
        {"mysql://a@h/d?tls=true",
         "sslmode=verify-full needs sslrootcert (the CA certificate file) for a MySQL connection"},
        {"mysql://a@h/d?timeout=soon",
         "bad timeout=soon: bad duration \"soon\": expected a number (expected e.g. 250ms, 1s, "
         "1m30s)"},
        {"mysql://a@h/d?readTimeout=0s", "bad readTimeout=0s: must be more than zero"},
        {"mysql://a@h/d?loc=Local",
         "unsupported value loc=Local: the replicator's MySQL sessions always run in UTC "
         "(time_zone '+00:00'); leave loc out or write loc=UTC"},
        {"mysql://a@h/d?parseTime=maybe", "bad parseTime=maybe: expected true or false"},
    };
    for (const auto& c : cases) {
        INFO("input: " << c.input);
        auto parsed = conn_url::parse(c.input);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.error().message() == c.message);
    }
}
