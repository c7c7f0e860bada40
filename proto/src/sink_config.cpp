#include "molt/proto/sink_config.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "molt/common/base64.hpp"
#include "molt/common/duration.hpp"
#include "molt/common/percent.hpp"
#include "molt/proto/json.hpp"

namespace molt::proto {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// Go's encoding/json matches field names case-insensitively; the last match wins.
const json* field(const json& obj, std::string_view name) {
    const json* found = nullptr;
    for (const json::member& m : obj.members()) {
        if (iequals(m.key, name)) {
            found = &m.value;
        }
    }
    return found;
}

error sink_error(std::string message) {
    return {errc::invalid_argument, "invalid webhook_sink_config: " + message};
}

bool is_integer_text(std::string_view s) {
    if (!s.empty() && s[0] == '-') {
        s.remove_prefix(1);
    }
    return !s.empty() && s.size() <= 18 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

result<int64_t> non_negative(const json* v, std::string_view name) {
    if (v == nullptr || v->is_null()) {
        return int64_t{0};
    }
    if (v->kind() != json::type::number || !is_integer_text(v->text())) {
        return sink_error(fmt::format("{} must be an integer", name));
    }
    const int64_t n = std::stoll(v->text());
    if (n < 0) {
        return sink_error(fmt::format("{} must not be negative", name));
    }
    return n;
}

result<std::chrono::nanoseconds> duration_field(const json* v, std::string_view name,
                                                std::chrono::nanoseconds fallback) {
    if (v == nullptr || v->is_null()) {
        return fallback;
    }
    if (v->kind() != json::type::string) {
        return sink_error(fmt::format("{} must be a duration string such as \"1s\"", name));
    }
    auto d = parse_duration(v->text());
    if (!d) {
        return sink_error(fmt::format("{}: {}", name, d.error().message()));
    }
    if (d->count() < 0) {
        return sink_error(fmt::format("{} must not be negative", name));
    }
    return *d;
}

std::optional<bool> parse_go_bool(std::string_view s) {
    for (const std::string_view t : {"1", "t", "T", "TRUE", "true", "True"}) {
        if (s == t) {
            return true;
        }
    }
    for (const std::string_view f : {"0", "f", "F", "FALSE", "false", "False"}) {
        if (s == f) {
            return false;
        }
    }
    return std::nullopt;
}

// Go's url.QueryEscape.
std::string query_escape(std::string_view s) {
    std::string out;
    for (const char c : s) {
        if (c == ' ') {
            out += '+';
        } else {
            out += percent_encode(std::string_view(&c, 1));
        }
    }
    return out;
}

}  // namespace

result<webhook_sink_config> webhook_sink_config::parse(std::string_view json_text) {
    webhook_sink_config out;
    auto doc = json::parse(json_text);
    if (!doc) {
        return sink_error(doc.error().message());
    }
    if (doc->kind() != json::type::object) {
        return sink_error("expected a JSON object such as {\"Flush\":{\"Bytes\":1048576}}");
    }
    if (const json* flush = field(*doc, "Flush"); flush != nullptr && !flush->is_null()) {
        if (flush->kind() != json::type::object) {
            return sink_error("Flush must be an object");
        }
        auto messages = non_negative(field(*flush, "Messages"), "Flush.Messages");
        if (!messages) {
            return messages.error();
        }
        auto bytes = non_negative(field(*flush, "Bytes"), "Flush.Bytes");
        if (!bytes) {
            return bytes.error();
        }
        auto frequency = duration_field(field(*flush, "Frequency"), "Flush.Frequency",
                                        std::chrono::nanoseconds(0));
        if (!frequency) {
            return frequency.error();
        }
        out.flush = {*messages, *bytes, *frequency};
    }
    if (const json* retry = field(*doc, "Retry"); retry != nullptr && !retry->is_null()) {
        if (retry->kind() != json::type::object) {
            return sink_error("Retry must be an object");
        }
        if (const json* max = field(*retry, "Max"); max != nullptr && !max->is_null()) {
            std::string_view text = max->text();
            if (max->kind() == json::type::string && iequals(text, "inf")) {
                out.retry.max = std::nullopt;
            } else if ((max->kind() == json::type::number || max->kind() == json::type::string) &&
                       is_integer_text(text) && std::stoll(std::string(text)) > 0) {
                out.retry.max = std::stoll(std::string(text));
            } else {
                return sink_error("Retry.Max must be a positive integer or \"inf\"");
            }
        }
        auto backoff = duration_field(field(*retry, "Backoff"), "Retry.Backoff", out.retry.backoff);
        if (!backoff) {
            return backoff.error();
        }
        out.retry.backoff = *backoff;
    }
    if ((out.flush.messages > 0 || out.flush.bytes > 0) && out.flush.frequency.count() == 0) {
        // CockroachDB's own wording.
        return error{errc::invalid_argument,
                     "invalid sink config, Flush.Frequency is not set, messages may never be sent"};
    }
    return out;
}

result<sink_query> sink_query::parse(std::string_view query) {
    sink_query out;
    bool have_cert = false;
    bool have_key = false;
    size_t pos = 0;
    while (pos <= query.size() && !query.empty()) {
        const size_t amp = std::min(query.find('&', pos), query.size());
        const std::string_view pair = query.substr(pos, amp - pos);
        pos = amp + 1;
        if (pair.empty()) {
            continue;
        }
        const size_t eq = pair.find('=');
        auto key = percent_decode(pair.substr(0, eq), "sink query parameter name", true);
        if (!key) {
            return key.error();
        }
        if (key->empty()) {
            return error{errc::invalid_argument, "empty sink query parameter name"};
        }
        const bool pem = *key == "ca_cert" || *key == "client_cert" || *key == "client_key";
        auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1),
                                    fmt::format("sink query parameter \"{}\"", *key), true, pem);
        if (!value) {
            return value.error();
        }
        if (*key == "insecure_tls_skip_verify") {
            const auto b = parse_go_bool(*value);
            if (!b) {
                return error{errc::invalid_argument,
                             fmt::format("sink query parameter insecure_tls_skip_verify must be "
                                         "true or false, not \"{}\"",
                                         *value)};
            }
            out.insecure_tls_skip_verify = *b;
        } else if (pem) {
            auto decoded = base64_decode(*value);
            if (!decoded) {
                return error{errc::invalid_argument,
                             fmt::format("sink query parameter {} must be a base64-encoded PEM "
                                         "file, URL-encoded (base64 -w 0 file | jq -R -r @uri): {}",
                                         *key, decoded.error().message())};
            }
            if (decoded->find("-----BEGIN ") == std::string::npos) {
                return error{
                    errc::invalid_argument,
                    fmt::format("sink query parameter {} does not hold a PEM block", *key)};
            }
            if (*key == "ca_cert") {
                out.ca_cert = std::move(*decoded);
            } else if (*key == "client_cert") {
                out.client_cert = std::move(*decoded);
                have_cert = true;
            } else {
                out.client_key = std::move(*decoded);
                have_key = true;
            }
        } else {
            out.passthrough.emplace_back(std::move(*key), std::move(*value));
        }
    }
    if (have_cert != have_key) {
        return error{errc::invalid_argument,
                     "sink query parameters client_cert and client_key must be given together"};
    }
    return out;
}

std::string sink_query::encoded_passthrough() const {
    std::vector<std::pair<std::string, std::string>> sorted = passthrough;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string out;
    for (const auto& [k, v] : sorted) {
        if (!out.empty()) {
            out += '&';
        }
        out += query_escape(k) + "=" + query_escape(v);
    }
    return out;
}

}  // namespace molt::proto
