#pragma once
// CockroachDB's webhook sink settings (changefeed-webhook.md §1.1, §1.6): the JSON of
// WITH webhook_sink_config='{"Flush":{...},"Retry":{...}}' and the sink URI's query parameters.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "molt/common/result.hpp"

namespace molt::proto {

struct webhook_sink_config {
    struct flush_config {
        int64_t messages = 0;                   ///< flush at this many messages (0: no limit)
        int64_t bytes = 0;                      ///< flush at this many value bytes (0: no limit)
        std::chrono::nanoseconds frequency{0};  ///< flush this long after the first message
        /// All zero: every message is sent on its own, as soon as it arrives.
        [[nodiscard]] bool immediate() const noexcept {
            return messages == 0 && bytes == 0 && frequency.count() == 0;
        }
    } flush;
    struct retry_config {
        std::optional<int64_t> max = 3;  ///< retries after the first attempt; nullopt = "inf"
        std::chrono::nanoseconds backoff = std::chrono::milliseconds(500);
    } retry;

    /// Parses the JSON the way CockroachDB does: field names case-insensitive, unknown fields
    /// ignored, durations as Go duration strings, Retry.Max an integer, an integer string or
    /// "inf"; negative values, Max <= 0, and Messages/Bytes without Frequency are refused.
    [[nodiscard]] static result<webhook_sink_config> parse(std::string_view json_text);
};

/// The sink URI's query parameters, with the ones the webhook sink consumes taken apart.
struct sink_query {
    bool insecure_tls_skip_verify = false;
    std::string ca_cert;      ///< PEM, decoded from base64
    std::string client_cert;  ///< PEM
    std::string client_key;   ///< PEM (a secret: never logged)
    /// Every other parameter, decoded, passed through to the request URL.
    std::vector<std::pair<std::string, std::string>> passthrough;

    /// Parses "a=1&client_cert=<base64, URL-encoded>&...". Errors name the parameter and never
    /// contain certificate or key material.
    [[nodiscard]] static result<sink_query> parse(std::string_view query);
    /// The passthrough parameters re-encoded as Go's url.Values.Encode does: keys sorted,
    /// values escaped, space as '+'. Empty when there are none.
    [[nodiscard]] std::string encoded_passthrough() const;
};

}  // namespace molt::proto
