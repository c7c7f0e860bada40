#pragma once
// MOLT's --changefeeds-path file (molt-fetch-failback.md §7): a JSON object whose keys, all
// optional, replace the defaults of the failback changefeed one by one.
//
//   {"host": "localhost", "port": 30004, "sink_query_parameters": "insecure_tls_skip_verify=true",
//    "resolved": "1s", "min_checkpoint_frequency": "1s", "initial_scan": "no",
//    "webhook_sink_config": "{\"Flush\":{\"Bytes\":1048576,\"Frequency\":\"1s\"}}",
//    "webhook_client_timeout": "10s"}   (the last key is ours)

#include <cstdint>
#include <string>
#include <string_view>

#include "molt/common/result.hpp"
#include "molt/proto/sink_config.hpp"

namespace molt::proto {

struct changefeed_settings {
    std::string host = "localhost";
    uint16_t port = 30004;
    std::string sink_query_parameters = "insecure_tls_skip_verify=true";
    std::string resolved = "1s";
    std::string min_checkpoint_frequency = "1s";
    std::string initial_scan = "no";
    std::string webhook_sink_config = R"({"Flush":{"Bytes":1048576,"Frequency":"1s"}})";
    /// Ours (MOLT could not set it): CockroachDB's current advice is 10s; its default is none.
    std::string webhook_client_timeout = "10s";
};

/// Parses an override file's text and merges it over the defaults. Every error names the key
/// (an unknown key too, with the list of known ones).
[[nodiscard]] result<changefeed_settings> parse_changefeed_override(std::string_view json_text);

}  // namespace molt::proto
