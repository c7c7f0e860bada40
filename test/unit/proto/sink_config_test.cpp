#include "molt/proto/sink_config.hpp"

#include <catch2/catch.hpp>

#include "molt/common/base64.hpp"
#include "molt/common/percent.hpp"
#include "molt/proto/changefeed_override.hpp"

using namespace std::chrono_literals;
using molt::proto::changefeed_settings;
using molt::proto::parse_changefeed_override;
using molt::proto::sink_query;
using molt::proto::webhook_sink_config;

namespace {

const std::string fake_cert = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";
const std::string fake_key =
    "-----BEGIN PRIVATE KEY-----\nS3CRETKEYMATERIAL\n-----END PRIVATE KEY-----\n";

// As the MOLT docs tell users to write them: base64 -w 0 file | jq -R -r '@uri'.
std::string uri_b64(const std::string& pem) {
    return molt::percent_encode(molt::base64_encode(pem));
}

}  // namespace

TEST_CASE("sink config: defaults and CockroachDB's parsing rules", "[sink_config]") {
    auto empty = webhook_sink_config::parse("{}");
    REQUIRE(empty);
    CHECK(empty->flush.immediate());
    CHECK(empty->retry.max == 3);
    CHECK(empty->retry.backoff == 500ms);

    auto molt_default =
        webhook_sink_config::parse(R"({"Flush":{"Bytes":1048576,"Frequency":"1s"}})");
    REQUIRE(molt_default);
    CHECK(molt_default->flush.bytes == 1048576);
    CHECK(molt_default->flush.frequency == 1s);
    CHECK(molt_default->flush.messages == 0);

    auto mixed_case = webhook_sink_config::parse(
        R"({"flush":{"messages":100,"FREQUENCY":"250ms","Unknown":1},"retry":{"max":"4","backoff":"10s"},"Extra":true})");
    REQUIRE(mixed_case);
    CHECK(mixed_case->flush.messages == 100);
    CHECK(mixed_case->flush.frequency == 250ms);
    CHECK(mixed_case->retry.max == 4);
    CHECK(mixed_case->retry.backoff == 10s);

    auto inf = webhook_sink_config::parse(R"({"Retry":{"Max":"inf"}})");
    REQUIRE(inf);
    CHECK_FALSE(inf->retry.max.has_value());
}

TEST_CASE("sink config: refusals", "[sink_config]") {
    const std::pair<const char*, const char*> cases[] = {
        {R"({"Flush":{"Bytes":1048576}})",
         "invalid sink config, Flush.Frequency is not set, messages may never be sent"},
        {R"({"Flush":{"Messages":10,"Frequency":"0s"}})",
         "invalid sink config, Flush.Frequency is not set, messages may never be sent"},
        {R"({"Flush":{"Messages":-1,"Frequency":"1s"}})",
         "invalid webhook_sink_config: Flush.Messages must not be negative"},
        {R"({"Flush":{"Bytes":1.5,"Frequency":"1s"}})",
         "invalid webhook_sink_config: Flush.Bytes must be an integer"},
        {R"({"Flush":{"Frequency":5}})",
         "invalid webhook_sink_config: Flush.Frequency must be a duration string such as \"1s\""},
        {R"({"Flush":{"Frequency":"5 seconds"}})",
         "invalid webhook_sink_config: Flush.Frequency: bad duration \"5 seconds\": unknown unit "
         "\" "
         "seconds\" (expected e.g. 250ms, 1s, 1m30s)"},
        {R"({"Retry":{"Max":0}})",
         "invalid webhook_sink_config: Retry.Max must be a positive integer or \"inf\""},
        {R"({"Retry":{"Max":-2}})",
         "invalid webhook_sink_config: Retry.Max must be a positive integer or \"inf\""},
        {R"({"Retry":{"Backoff":"-1s"}})",
         "invalid webhook_sink_config: Retry.Backoff must not be negative"},
        {R"({"Flush":[]})", "invalid webhook_sink_config: Flush must be an object"},
        {R"([1])",
         "invalid webhook_sink_config: expected a JSON object such as "
         "{\"Flush\":{\"Bytes\":1048576}}"},
        {R"({"Flush":)",
         "invalid webhook_sink_config: invalid JSON at byte 9: unexpected end of input, expected a "
         "value"},
    };
    for (const auto& [text, message] : cases) {
        INFO(text);
        auto parsed = webhook_sink_config::parse(text);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.error().message() == message);
    }
}

TEST_CASE("sink query: certificates, skip-verify and pass-through parameters", "[sink_config]") {
    const std::string query =
        "z=1&client_cert=" + uri_b64(fake_cert) + "&client_key=" + uri_b64(fake_key) +
        "&ca_cert=" + uri_b64(fake_cert) + "&a=x+y&insecure_tls_skip_verify=t";
    auto parsed = sink_query::parse(query);
    REQUIRE(parsed);
    CHECK(parsed->client_cert == fake_cert);
    CHECK(parsed->client_key == fake_key);
    CHECK(parsed->ca_cert == fake_cert);
    CHECK(parsed->insecure_tls_skip_verify);
    // Go's url.Values.Encode: sorted keys, space as '+'.
    CHECK(parsed->encoded_passthrough() == "a=x+y&z=1");
    auto none = sink_query::parse("insecure_tls_skip_verify=true");
    REQUIRE(none);
    CHECK(none->encoded_passthrough().empty());
}

TEST_CASE("sink query: errors name the parameter and never echo key material", "[sink_config]") {
    auto lonely = sink_query::parse("client_cert=" + uri_b64(fake_cert));
    REQUIRE_FALSE(lonely);
    CHECK(lonely.error().message() ==
          "sink query parameters client_cert and client_key must be given together");

    auto not_encoded = sink_query::parse("client_cert=" + uri_b64(fake_cert) +
                                         "&client_key=" + molt::base64_encode(fake_key) + "%zz");
    REQUIRE_FALSE(not_encoded);
    CHECK(not_encoded.error().message().find("S3CRET") == std::string::npos);
    CHECK(not_encoded.error().message() ==
          "bad percent-escape in the sink query parameter \"client_key\" (a literal '%' must be "
          "written %25)");

    auto bad_b64 = sink_query::parse("ca_cert=@@@@");
    REQUIRE_FALSE(bad_b64);
    CHECK(bad_b64.error().message() ==
          "sink query parameter ca_cert must be a base64-encoded PEM file, URL-encoded (base64 -w "
          "0 file | jq -R -r @uri): bad base64: unexpected character at offset 0");

    auto not_pem = sink_query::parse("ca_cert=" + molt::base64_encode("hello!"));
    REQUIRE_FALSE(not_pem);
    CHECK(not_pem.error().message() == "sink query parameter ca_cert does not hold a PEM block");

    auto bad_bool = sink_query::parse("insecure_tls_skip_verify=yes");
    REQUIRE_FALSE(bad_bool);
    CHECK(bad_bool.error().message() ==
          "sink query parameter insecure_tls_skip_verify must be true or false, not \"yes\"");
}

TEST_CASE("override: defaults, the docs' examples, and merging", "[override]") {
    auto defaults = parse_changefeed_override("{}");
    REQUIRE(defaults);
    const changefeed_settings d;
    CHECK(defaults->host == "localhost");
    CHECK(defaults->port == 30004);
    CHECK(defaults->sink_query_parameters == "insecure_tls_skip_verify=true");
    CHECK(defaults->resolved == "1s");
    CHECK(defaults->min_checkpoint_frequency == "1s");
    CHECK(defaults->initial_scan == "no");
    CHECK(defaults->webhook_sink_config == R"({"Flush":{"Bytes":1048576,"Frequency":"1s"}})");

    // The default insecure file of the docs (its webhook_sink_config lacks Frequency, which
    // CockroachDB refuses; our check catches it before CREATE CHANGEFEED would).
    auto docs_default = parse_changefeed_override(R"({
        "host": "localhost", "port": 30004, "sink_query_parameters": "insecure_tls_skip_verify=true",
        "resolved": "1s", "min_checkpoint_frequency": "1s", "initial_scan": "no",
        "webhook_sink_config": "{\"Flush\":{\"Bytes\":1048576}}"})");
    REQUIRE_FALSE(docs_default);
    CHECK(docs_default.error().message() ==
          "--changefeeds-path: \"webhook_sink_config\" is invalid: invalid sink config, "
          "Flush.Frequency is not set, messages may never be sent");

    // changefeed-secure.json: only sink_query_parameters; the rest keeps its default.
    const std::string secure = R"({"sink_query_parameters": "client_cert=)" + uri_b64(fake_cert) +
                               "&client_key=" + uri_b64(fake_key) +
                               "&ca_cert=" + uri_b64(fake_cert) + R"("})";
    auto merged = parse_changefeed_override(secure);
    REQUIRE(merged);
    CHECK(merged->port == 30004);
    CHECK(merged->sink_query_parameters.rfind("client_cert=", 0) == 0);

    auto custom = parse_changefeed_override(
        R"({"host": "10.0.0.5", "port": 30005, "resolved": "250ms", "min_checkpoint_frequency": "250ms",
            "initial_scan": "yes", "webhook_sink_config": {"Flush": {"Messages": 100, "Frequency": "100ms"}}})");
    REQUIRE(custom);
    CHECK(custom->host == "10.0.0.5");
    CHECK(custom->port == 30005);
    CHECK(custom->resolved == "250ms");
    CHECK(custom->initial_scan == "yes");
    CHECK(custom->webhook_sink_config == R"({"Flush": {"Frequency": "100ms", "Messages": 100}})");
}

TEST_CASE("override: each bad key is named", "[override]") {
    const std::pair<const char*, const char*> cases[] = {
        {R"({"hots": "x"})",
         "--changefeeds-path: unknown key \"hots\" (known keys: host, port, sink_query_parameters, "
         "resolved, min_checkpoint_frequency, initial_scan, webhook_sink_config, "
         "webhook_client_timeout)"},
        {R"({"webhook_client_timeout": "soon"})",
         "--changefeeds-path: \"webhook_client_timeout\" is not a duration: bad duration \"soon\": "
         "expected a number (expected e.g. 250ms, 1s, 1m30s)"},
        {R"({"host": ""})",
         "--changefeeds-path: \"host\" must be a host name or IP address reachable from the "
         "CockroachDB nodes"},
        {R"({"host": 5})", "--changefeeds-path: \"host\" must be a string"},
        {R"({"port": "30004"})",
         "--changefeeds-path: \"port\" must be a port number between 1 and 65535"},
        {R"({"port": 70000})",
         "--changefeeds-path: \"port\" must be a port number between 1 and 65535"},
        {R"({"port": 0})",
         "--changefeeds-path: \"port\" must be a port number between 1 and 65535"},
        {R"({"resolved": "soon"})",
         "--changefeeds-path: \"resolved\" is not a duration: bad duration \"soon\": expected a "
         "number (expected e.g. 250ms, 1s, 1m30s)"},
        {R"({"min_checkpoint_frequency": ""})",
         "--changefeeds-path: \"min_checkpoint_frequency\" must not be empty"},
        {R"({"initial_scan": "maybe"})",
         "--changefeeds-path: \"initial_scan\" must be \"yes\", \"no\" or \"only\", not \"maybe\""},
        {R"({"sink_query_parameters": "insecure_tls_skip_verify=nope"})",
         "--changefeeds-path: \"sink_query_parameters\" is invalid: sink query parameter "
         "insecure_tls_skip_verify must be true or false, not \"nope\""},
        {R"({"webhook_sink_config": 5})",
         "--changefeeds-path: \"webhook_sink_config\" must be a JSON string (or object) such as "
         "{\"Flush\":{\"Bytes\":1048576,\"Frequency\":\"1s\"}}"},
        {R"({"port": 1, "port": 2})", "--changefeeds-path: \"port\" appears twice"},
        {R"([])",
         "--changefeeds-path: the file must hold a JSON object such as {\"host\": "
         "\"replicator.example.com\", \"port\": 30004}"},
        {R"({"host": "x",})",
         "--changefeeds-path: invalid JSON at byte 13: expected a string, found '}'"},
    };
    for (const auto& [text, message] : cases) {
        INFO(text);
        auto parsed = parse_changefeed_override(text);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.error().message() == message);
    }
}
