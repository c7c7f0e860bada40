#include "molt/fetch/webhook_tls.hpp"

#include <chrono>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "test_certs.hpp"

namespace {

using namespace std::chrono_literals;
using molt::fetch::check_webhook_tls;
using molt::fetch::webhook_tls_material;
namespace tc = molt::test_certs;

constexpr const char* host = "replicator.example.com";
constexpr const char* server_sans = "DNS:replicator.example.com,DNS:localhost,IP:127.0.0.1";

/// A complete, correct mutual-TLS setup: a CA for the server, another for the changefeed's
/// client certificate, files where the replicator reads them.
struct setup {
    tc::issued server_ca = tc::make_cert({.cn = "Server CA", .ca = true});
    tc::issued client_ca = tc::make_cert({.cn = "Client CA", .ca = true});
    tc::issued server =
        tc::make_cert({.cn = "replicator", .sans = server_sans, .eku = "serverAuth"}, &server_ca);
    tc::issued client = tc::make_cert({.cn = "changefeed", .eku = "clientAuth"}, &client_ca);
    tc::temp_dir dir;
    std::string server_cert_file = dir.write("server.crt", server.cert_pem);
    std::string server_key_file = dir.write("server.key", server.key_pem);
    std::string client_ca_file = dir.write("client-ca.crt", client_ca.cert_pem);

    [[nodiscard]] webhook_tls_material material() const {
        webhook_tls_material m;
        m.webhook_host = host;
        m.ca_cert_pem = server_ca.cert_pem;
        m.client_cert_pem = client.cert_pem;
        m.client_key_pem = client.key_pem;
        m.server_cert_file = server_cert_file;
        m.server_key_file = server_key_file;
        m.client_ca_file = client_ca_file;
        return m;
    }
};

std::string joined(const std::vector<std::string>& problems) {
    std::string out;
    for (const auto& p : problems) {
        out += p + "\n";
    }
    return out;
}

/// Checks and asserts that no message carries PEM text or key material.
std::vector<std::string> check(
    const webhook_tls_material& m,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
    auto problems = check_webhook_tls(m, now);
    for (const auto& p : problems) {
        CHECK(p.find("PRIVATE KEY") == std::string::npos);
        CHECK(p.find("-----BEGIN") == std::string::npos);
        CHECK(p.find('\n') == std::string::npos);
    }
    return problems;
}

std::chrono::system_clock::time_point utc(int year, int month, int day) {
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

TEST_CASE("webhook_tls: a correct setup passes", "[webhook_tls]") {
    const setup s;
    const auto problems = check(s.material());
    INFO(joined(problems));
    CHECK(problems.empty());
    SECTION("nothing given, nothing to say") {
        CHECK(check({}).empty());
    }
    SECTION("the server's host as an IP address in subjectAltName") {
        auto m = s.material();
        m.webhook_host = "127.0.0.1";
        CHECK(check(m).empty());
    }
    SECTION("an intermediate CA after the leaf in the server's file") {
        const tc::issued intermediate =
            tc::make_cert({.cn = "Intermediate", .ca = true}, &s.server_ca);
        const tc::issued leaf = tc::make_cert({.cn = "r", .sans = server_sans}, &intermediate);
        auto m = s.material();
        m.server_cert_file = s.dir.write("chain.crt", leaf.cert_pem + intermediate.cert_pem);
        m.server_key_file = s.dir.write("chain.key", leaf.key_pem);
        CHECK(check(m).empty());
        m.server_cert_file = s.dir.write("leaf-only.crt", leaf.cert_pem);
        CHECK(check(m) == std::vector<std::string>{
                              "--tlsCertificate " + m.server_cert_file +
                              " is not signed by the ca_cert of --changefeeds-path (CockroachDB "
                              "would refuse it: x509: certificate signed by unknown authority)"});
    }
    SECTION("no client CA: the replicator does not verify client certificates") {
        auto m = s.material();
        m.client_ca_file.clear();
        CHECK(check(m).empty());
    }
}

TEST_CASE("webhook_tls: expired and not yet valid certificates", "[webhook_tls]") {
    setup s;
    SECTION("an expired client certificate, with its date") {
        const tc::issued old = tc::make_cert({.cn = "changefeed",
                                              .eku = "clientAuth",
                                              .not_before_abs = "20250101000000Z",
                                              .not_after_abs = "20260101000000Z"},
                                             &s.client_ca);
        webhook_tls_material m;  // the client side alone: the other certificates are recent
        m.client_cert_pem = old.cert_pem;
        m.client_key_pem = old.key_pem;
        CHECK(check(m, utc(2025, 12, 31)).empty());
        CHECK(check(m, utc(2026, 6, 1)) ==
              std::vector<std::string>{
                  "sink_query_parameters client_cert expired on 2026-01-01 00:00:00 UTC"});
        CHECK(check(m, utc(2024, 6, 1)) ==
              std::vector<std::string>{"sink_query_parameters client_cert is not valid before "
                                       "2025-01-01 00:00:00 UTC (not yet valid)"});
    }
    SECTION("the injected clock moves everything past its end") {
        const auto problems = check(s.material(), std::chrono::system_clock::now() + 48h);
        INFO(joined(problems));
        // Server CA, client CA, server and client certificates: each named.
        REQUIRE(problems.size() == 4);
        CHECK(problems[0].rfind("sink_query_parameters ca_cert expired on ", 0) == 0);
        CHECK(joined(problems).find("--tlsClientCA " + s.client_ca_file + " expired on ") !=
              std::string::npos);
        CHECK(joined(problems).find("sink_query_parameters client_cert expired on ") !=
              std::string::npos);
        CHECK(joined(problems).find("--tlsCertificate " + s.server_cert_file + " expired on ") !=
              std::string::npos);
    }
    SECTION("a server certificate not valid yet") {
        const tc::issued future = tc::make_cert(
            {.cn = "r", .sans = server_sans, .not_before = 10 * 86400, .not_after = 20 * 86400},
            &s.server_ca);
        auto m = s.material();
        m.server_cert_file = s.dir.write("future.crt", future.cert_pem);
        m.server_key_file = s.dir.write("future.key", future.key_pem);
        const auto problems = check(m);
        REQUIRE(problems.size() == 1);
        CHECK(problems[0].rfind("--tlsCertificate " + m.server_cert_file + " is not valid before ",
                                0) == 0);
        CHECK(problems[0].find(" UTC (not yet valid)") != std::string::npos);
        webhook_tls_material later;  // the server alone: the CAs expire sooner
        later.webhook_host = host;
        later.server_cert_file = m.server_cert_file;
        later.server_key_file = m.server_key_file;
        CHECK(check(later, std::chrono::system_clock::now() + 11 * 24h).empty());
        CHECK(check(later).size() == 1);
    }
}

TEST_CASE("webhook_tls: the server certificate must name the webhook host", "[webhook_tls]") {
    setup s;
    const tc::issued local =
        tc::make_cert({.cn = "localhost", .sans = "DNS:localhost,IP:127.0.0.1"}, &s.server_ca);
    auto m = s.material();
    m.server_cert_file = s.dir.write("local.crt", local.cert_pem);
    m.server_key_file = s.dir.write("local.key", local.key_pem);
    CHECK(check(m) == std::vector<std::string>{
                          "--tlsCertificate " + m.server_cert_file +
                          " is not valid for host \"replicator.example.com\" (the changefeed "
                          "connects to the \"host\" of --changefeeds-path); it names: localhost, "
                          "127.0.0.1"});
    SECTION("IP addresses are matched against IP SANs only") {
        m.webhook_host = "127.0.0.1";
        CHECK(check(m).empty());
        m.webhook_host = "10.1.2.3";
        const auto problems = check(m);
        REQUIRE(problems.size() == 1);
        CHECK(problems[0].find("is not valid for host \"10.1.2.3\"") != std::string::npos);
        m.webhook_host = "[::1]";
        REQUIRE(check(m).size() == 1);
        const tc::issued v6 = tc::make_cert({.cn = "v6", .sans = "IP:::1"}, &s.server_ca);
        m.server_cert_file = s.dir.write("v6.crt", v6.cert_pem);
        m.server_key_file = s.dir.write("v6.key", v6.key_pem);
        CHECK(check(m).empty());
    }
    SECTION("the Common Name does not count, as in Go") {
        const tc::issued cn_only = tc::make_cert({.cn = host}, &s.server_ca);
        m.server_cert_file = s.dir.write("cn.crt", cn_only.cert_pem);
        m.server_key_file = s.dir.write("cn.key", cn_only.key_pem);
        const auto problems = check(m);
        REQUIRE(problems.size() == 1);
        CHECK(problems[0].find("it has no subjectAltName, and CockroachDB ignores its Common Name "
                               "\"replicator.example.com\"") != std::string::npos);
    }
    SECTION("a wildcard matches one label") {
        const tc::issued wild =
            tc::make_cert({.cn = "w", .sans = "DNS:*.example.com"}, &s.server_ca);
        m.server_cert_file = s.dir.write("wild.crt", wild.cert_pem);
        m.server_key_file = s.dir.write("wild.key", wild.key_pem);
        CHECK(check(m).empty());
        m.webhook_host = "a.replicator.example.com";
        CHECK(check(m).size() == 1);
    }
    SECTION("insecure_tls_skip_verify: CockroachDB checks neither host nor CA") {
        m.insecure_tls_skip_verify = true;
        m.ca_cert_pem = s.client_ca.cert_pem;
        CHECK(check(m).empty());
    }
}

TEST_CASE("webhook_tls: keys must match their certificates", "[webhook_tls]") {
    setup s;
    auto m = s.material();
    SECTION("the replicator's key") {
        m.server_key_file = s.dir.write("other.key", s.client.key_pem);
        CHECK(check(m) ==
              std::vector<std::string>{"--tlsPrivateKey " + m.server_key_file +
                                       " does not match --tlsCertificate " + m.server_cert_file});
    }
    SECTION("the changefeed's key") {
        m.client_key_pem = s.server.key_pem;
        CHECK(check(m) == std::vector<std::string>{
                              "sink_query_parameters client_key does not match client_cert"});
    }
    SECTION("a client certificate without its key") {
        m.client_key_pem.clear();
        CHECK(check(m) == std::vector<std::string>{"sink_query_parameters has client_cert but no "
                                                   "client_key (CockroachDB needs both)"});
    }
}

TEST_CASE("webhook_tls: certificates must chain to the CA that verifies them", "[webhook_tls]") {
    setup s;
    auto m = s.material();
    SECTION("the server's certificate and ca_cert") {
        m.ca_cert_pem = s.client_ca.cert_pem;
        CHECK(check(m) == std::vector<std::string>{
                              "--tlsCertificate " + m.server_cert_file +
                              " is not signed by the ca_cert of --changefeeds-path (CockroachDB "
                              "would refuse it: x509: certificate signed by unknown authority)"});
    }
    SECTION("a self-signed server certificate given as its own ca_cert is accepted, as in Go") {
        const tc::issued self = tc::make_cert({.cn = "self", .sans = server_sans});
        m.server_cert_file = s.dir.write("self.crt", self.cert_pem);
        m.server_key_file = s.dir.write("self.key", self.key_pem);
        m.ca_cert_pem = self.cert_pem;
        CHECK(check(m).empty());
    }
    SECTION("a server certificate for clients only") {
        const tc::issued client_only =
            tc::make_cert({.cn = "r", .sans = server_sans, .eku = "clientAuth"}, &s.server_ca);
        m.server_cert_file = s.dir.write("client-only.crt", client_only.cert_pem);
        m.server_key_file = s.dir.write("client-only.key", client_only.key_pem);
        const auto problems = check(m);
        REQUIRE(problems.size() == 1);
        CHECK(problems[0].rfind("--tlsCertificate " + m.server_cert_file +
                                    " does not chain to the ca_cert of --changefeeds-path: ",
                                0) == 0);
    }
    SECTION("the client's certificate and --tlsClientCA") {
        m.client_ca_file = s.dir.write("wrong-client-ca.crt", s.server_ca.cert_pem);
        CHECK(check(m) == std::vector<std::string>{
                              "sink_query_parameters client_cert is not signed by --tlsClientCA " +
                              m.client_ca_file +
                              " (the replicator would refuse the changefeed's connection: unable "
                              "to get local issuer certificate)"});
        m.client_ca_source = "the ca_cert of --changefeeds-path";
        const auto problems = check(m);
        REQUIRE(problems.size() == 1);
        CHECK(problems[0].rfind("sink_query_parameters client_cert is not signed by the ca_cert "
                                "of --changefeeds-path (",
                                0) == 0);
    }
}

TEST_CASE("webhook_tls: --tlsSelfSigned needs insecure_tls_skip_verify", "[webhook_tls]") {
    webhook_tls_material m;
    m.webhook_host = host;
    m.self_signed = true;
    m.insecure_tls_skip_verify = true;
    CHECK(check(m).empty());
    m.insecure_tls_skip_verify = false;
    auto problems = check(m);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].rfind("--tlsSelfSigned makes the replicator generate its own certificate at "
                            "start, which no CA has signed: CockroachDB would refuse it (x509: "
                            "certificate signed by unknown authority); add "
                            "insecure_tls_skip_verify=true",
                            0) == 0);
    const tc::issued ca = tc::make_cert({.cn = "CA", .ca = true});
    m.ca_cert_pem = ca.cert_pem;
    problems = check(m);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].find("the ca_cert of --changefeeds-path cannot have signed") !=
          std::string::npos);
}

TEST_CASE("webhook_tls: unreadable and garbage input is named, never echoed", "[webhook_tls]") {
    setup s;
    auto m = s.material();
    SECTION("garbage everywhere") {
        m.ca_cert_pem = "not a certificate";
        m.client_cert_pem = s.client.key_pem;  // a key where a certificate belongs
        m.client_key_pem = s.client.cert_pem;  // and the other way round
        m.server_cert_file = s.dir.write("garbage.crt", "garbage");
        m.server_key_file = s.dir.write("garbage.key", s.server.cert_pem);
        const auto problems = check(m);
        const std::string b64 =
            " (expected the base64 of a PEM file, URL-encoded in sink_query_parameters)";
        CHECK(problems ==
              std::vector<std::string>{
                  "sink_query_parameters ca_cert holds no PEM certificate" + b64,
                  "sink_query_parameters client_cert holds no PEM certificate" + b64,
                  "sink_query_parameters client_key holds no unencrypted PEM private key" + b64,
                  "--tlsCertificate " + m.server_cert_file + " holds no PEM certificate",
                  "--tlsPrivateKey " + m.server_key_file + " holds no unencrypted PEM private key",
              });
        // Nothing of the key's base64 body either.
        const std::string key_body = s.client.key_pem.substr(40, 24);
        CHECK(joined(problems).find(key_body) == std::string::npos);
    }
    SECTION("a broken PEM block after a good certificate") {
        std::string broken = s.server_ca.cert_pem;
        std::string second = s.client_ca.cert_pem;
        second[40] = second[40] == 'A' ? '!' : 'A';
        second.erase(60, 10);
        m.ca_cert_pem = broken + second;
        const auto problems = check(m);
        REQUIRE(problems.size() == 1);
        CHECK(problems[0] ==
              "sink_query_parameters ca_cert holds a malformed PEM block after certificate 1");
    }
    SECTION("files that cannot be read") {
        m.server_cert_file = "/nonexistent/server.crt";
        m.client_ca_file = "/nonexistent/client-ca.crt";
        const auto problems = check(m);
        REQUIRE(problems.size() == 2);
        CHECK(problems[0] ==
              "--tlsClientCA /nonexistent/client-ca.crt cannot be read: No such file or directory");
        CHECK(problems[1] ==
              "--tlsCertificate /nonexistent/server.crt cannot be read: No such file or directory");
    }
}
