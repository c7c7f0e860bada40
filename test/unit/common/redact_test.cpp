#include "molt/common/redact.hpp"

#include <catch2/catch.hpp>

using molt::redact_secrets;

TEST_CASE("redact: passwords in URLs and DSNs", "[redact]") {
    CHECK(redact_secrets("postgres://user:secret@host:5432/db") ==
          "postgres://user:xxxxx@host:5432/db");
    CHECK(redact_secrets("--targetConn 'mysql://root:p%40ss@localhost/molt?sslmode=disable' -v") ==
          "--targetConn 'mysql://root:xxxxx@localhost/molt?sslmode=disable' -v");
    CHECK(redact_secrets("mysql://user:pw@tcp(h:3306)/db") == "mysql://user:xxxxx@tcp(h:3306)/db");
    CHECK(redact_secrets("dsn user:pw@tcp(h:3306)/db") == "dsn user:xxxxx@tcp(h:3306)/db");
    CHECK(redact_secrets("oracle://C%23%23U:pw@h:1521/S and postgres://a:b@c/d") ==
          "oracle://C%23%23U:xxxxx@h:1521/S and postgres://a:xxxxx@c/d");
    // No password: nothing to hide; user names and hosts stay readable.
    CHECK(redact_secrets("postgres://root@localhost:26257/defaultdb?sslmode=verify-full") ==
          "postgres://root@localhost:26257/defaultdb?sslmode=verify-full");
    CHECK(redact_secrets("https://localhost:30004/_/healthz") ==
          "https://localhost:30004/_/healthz");
}

TEST_CASE("redact: secret parameters in query strings and key=value text", "[redact]") {
    CHECK(redact_secrets(
              "webhook-https://h:30004/db/public?client_cert=AAA&client_key=BBB%2B&ca_cert=CCC") ==
          "webhook-https://h:30004/db/public?client_cert=AAA&client_key=xxxxx&ca_cert=CCC");
    CHECK(redact_secrets("host=h password='a b c' user=u") == "host=h password=xxxxx user=u");
    CHECK(redact_secrets("host=h password=plain dbname=d") == "host=h password=xxxxx dbname=d");
    CHECK(redact_secrets("{\"password\": \"hunter2\", \"user\": \"u\"}") ==
          "{\"password\": xxxxx, \"user\": \"u\"}");
    CHECK(redact_secrets("token=abc.def&x=1") == "token=xxxxx&x=1");
    CHECK(redact_secrets("sslpassword=k;PWD=z") == "sslpassword=xxxxx;PWD=xxxxx");
    // ODBC connection strings brace values holding ; { } = or spaces, "}}" being a '}'.
    CHECK(redact_secrets("Driver={Oracle 21c ODBC driver};UID=u;PWD={p;w}}d};DBQ=h:1521/S") ==
          "Driver={Oracle 21c ODBC driver};UID=u;PWD=xxxxx;DBQ=h:1521/S");
    CHECK(redact_secrets("PWD={unterminated;") == "PWD=xxxxx");
    // Words that merely contain a secret-ish name are not touched.
    CHECK(redact_secrets("passwordless=true keytoken_count=3") ==
          "passwordless=true keytoken_count=3");
}

TEST_CASE("redact: private keys, bearer tokens and JWTs", "[redact]") {
    CHECK(
        redact_secrets(
            "key: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\nrest") ==
        "key: [redacted private key]\nrest");
    CHECK(redact_secrets("-----BEGIN PRIVATE KEY-----\ntruncated") == "[redacted private key]");
    const std::string cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
    CHECK(redact_secrets(cert) == cert);
    CHECK(redact_secrets("Authorization: Bearer abcdefghijkl") == "Authorization: Bearer xxxxx");
    CHECK(redact_secrets("webhook_auth_header='Basic dXNlcjpwd2Q='") ==
          "webhook_auth_header='Basic xxxxx'");
    CHECK(redact_secrets("uses basic auth") == "uses basic auth");
    CHECK(redact_secrets("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl ok") ==
          "jwt xxxxx ok");
}

TEST_CASE("redact: text without secrets is unchanged", "[redact]") {
    const char* plain[] = {
        "Server listening", "upserted rows conflicts=0 duration=7.6ms", "", "a@b", "time: 5s",
        "ratio=1:2"};
    for (const char* text : plain) {
        CHECK(redact_secrets(text) == text);
    }
}

TEST_CASE("redact: secret field names", "[redact]") {
    for (const char* name : {"password", "Password", "targetPassword", "tlsPrivateKey", "token",
                             "jwt", "Authorization", "client_key", "pwd"}) {
        INFO(name);
        CHECK(molt::is_secret_field_name(name));
    }
    for (const char* name : {"address", "user", "targetConn", "table", "keys", "passes"}) {
        INFO(name);
        CHECK_FALSE(molt::is_secret_field_name(name));
    }
}
