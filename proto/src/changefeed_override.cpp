#include "molt/proto/changefeed_override.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "molt/common/duration.hpp"
#include "molt/proto/json.hpp"

namespace molt::proto {
namespace {

constexpr std::string_view known_keys =
    "host, port, sink_query_parameters, resolved, min_checkpoint_frequency, initial_scan, "
    "webhook_sink_config, webhook_client_timeout";

error key_error(std::string_view key, std::string_view what) {
    return {errc::invalid_argument, fmt::format("--changefeeds-path: \"{}\" {}", key, what)};
}

result<std::string> string_value(const json::member& m) {
    if (m.value.kind() != json::type::string) {
        return key_error(m.key, "must be a string");
    }
    return m.value.text();
}

result<std::string> duration_value(const json::member& m, bool allow_empty) {
    auto text = string_value(m);
    if (!text) {
        return text;
    }
    if (text->empty()) {
        if (allow_empty) {
            return text;
        }
        return key_error(m.key, "must not be empty");
    }
    auto d = parse_duration(*text);
    if (!d) {
        return key_error(m.key, fmt::format("is not a duration: {}", d.error().message()));
    }
    if (d->count() < 0) {
        return key_error(m.key, "must not be negative");
    }
    return text;
}

}  // namespace

result<changefeed_settings> parse_changefeed_override(std::string_view json_text) {
    auto doc = json::parse(json_text);
    if (!doc) {
        return error{errc::invalid_argument,
                     fmt::format("--changefeeds-path: {}", doc.error().message())};
    }
    if (doc->kind() != json::type::object) {
        return error{errc::invalid_argument,
                     "--changefeeds-path: the file must hold a JSON object such as "
                     "{\"host\": \"replicator.example.com\", \"port\": 30004}"};
    }
    changefeed_settings out;
    std::vector<std::string_view> seen;
    for (const json::member& m : doc->members()) {
        if (std::find(seen.begin(), seen.end(), m.key) != seen.end()) {
            return key_error(m.key, "appears twice");
        }
        seen.push_back(m.key);
        if (m.key == "host") {
            auto host = string_value(m);
            if (!host) {
                return host.error();
            }
            if (host->empty() || host->find_first_of(" /?#@") != std::string::npos) {
                return key_error(m.key,
                                 "must be a host name or IP address reachable from the "
                                 "CockroachDB nodes");
            }
            out.host = std::move(*host);
        } else if (m.key == "port") {
            const std::string& text = m.value.text();
            const bool digits =
                m.value.kind() == json::type::number && !text.empty() && text.size() <= 5 &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
            if (!digits || std::stoi(text) < 1 || std::stoi(text) > 65535) {
                return key_error(m.key, "must be a port number between 1 and 65535");
            }
            out.port = static_cast<uint16_t>(std::stoi(text));
        } else if (m.key == "sink_query_parameters") {
            auto query = string_value(m);
            if (!query) {
                return query.error();
            }
            if (auto parsed = sink_query::parse(*query); !parsed) {
                return key_error(m.key, fmt::format("is invalid: {}", parsed.error().message()));
            }
            out.sink_query_parameters = std::move(*query);
        } else if (m.key == "resolved") {
            auto value = duration_value(m, true);
            if (!value) {
                return value.error();
            }
            out.resolved = std::move(*value);
        } else if (m.key == "min_checkpoint_frequency") {
            auto value = duration_value(m, false);
            if (!value) {
                return value.error();
            }
            out.min_checkpoint_frequency = std::move(*value);
        } else if (m.key == "webhook_client_timeout") {
            auto value = duration_value(m, false);
            if (!value) {
                return value.error();
            }
            out.webhook_client_timeout = std::move(*value);
        } else if (m.key == "initial_scan") {
            auto value = string_value(m);
            if (!value) {
                return value.error();
            }
            if (*value != "yes" && *value != "no" && *value != "only") {
                return key_error(m.key, fmt::format("must be \"yes\", \"no\" or \"only\", not "
                                                    "\"{}\"",
                                                    *value));
            }
            out.initial_scan = std::move(*value);
        } else if (m.key == "webhook_sink_config") {
            // MOLT takes a JSON string; an object written inline is accepted too.
            std::string text;
            if (m.value.kind() == json::type::string) {
                text = m.value.text();
            } else if (m.value.kind() == json::type::object) {
                text = to_crdb_text(m.value);
            } else {
                return key_error(m.key,
                                 "must be a JSON string (or object) such as "
                                 "{\"Flush\":{\"Bytes\":1048576,\"Frequency\":\"1s\"}}");
            }
            if (auto parsed = webhook_sink_config::parse(text); !parsed) {
                return key_error(m.key, fmt::format("is invalid: {}", parsed.error().message()));
            }
            out.webhook_sink_config = std::move(text);
        } else {
            return error{errc::invalid_argument,
                         fmt::format("--changefeeds-path: unknown key \"{}\" (known keys: {})",
                                     m.key, known_keys)};
        }
    }
    return out;
}

}  // namespace molt::proto
