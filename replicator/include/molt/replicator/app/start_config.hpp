#pragma once
// `replicator start`: its flags (the original's names and defaults where the flag exists), and
// preflight, which checks them together and reports every problem at once.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "molt/common/conn_url.hpp"
#include "molt/common/log.hpp"
#include "molt/common/net_address.hpp"

namespace molt::replicator {

struct start_config {
    // HTTP server
    net_address bind_addr{"", 26258};         ///< --bindAddr
    std::optional<net_address> metrics_addr;  ///< --metricsAddr: /_/healthz and /_/varz there
    std::string tls_certificate;              ///< --tlsCertificate (PEM chain)
    std::string tls_private_key;              ///< --tlsPrivateKey (PEM)
    bool tls_self_signed = false;             ///< --tlsSelfSigned
    std::string tls_client_ca;   ///< --tlsClientCA: clients must present a certificate from it
    bool insecure_http = false;  ///< --insecureHTTP: plain HTTP, for tests only
    bool disable_authentication = false;                             ///< --disableAuthentication
    std::chrono::nanoseconds jwt_refresh = std::chrono::minutes(1);  ///< --jwtRefresh
    bool dry_run = false;  ///< --dryRun: check the flags, then exit 0 without starting
    size_t max_body_bytes = 64 * 1024 * 1024;                               ///< --maxBodySize
    std::chrono::nanoseconds http_read_timeout = std::chrono::seconds(60);  ///< --httpReadTimeout
    std::chrono::nanoseconds http_idle_timeout = std::chrono::seconds(90);  ///< --httpIdleTimeout
    std::chrono::nanoseconds http_response_timeout =
        std::chrono::minutes(2);       ///< --httpResponseTimeout
    int64_t max_connections = 256;     ///< --maxConnections: on --bindAddr; beyond, 503 and close
    int64_t max_queued_requests = 64;  ///< --maxQueuedRequests: beyond --parallelism; then 503

    // Target and staging
    std::optional<conn_url> target;                     ///< --targetConn (required)
    std::optional<conn_url> staging;                    ///< --stagingConn
    std::string staging_schema = "_replicator.public";  ///< --stagingSchema
    bool staging_schema_given = false;                  ///< --stagingSchema was on the command line
    bool staging_create_schema = false;                 ///< --stagingCreateSchema
    int64_t staging_max_pool_size = 128;                ///< --stagingMaxPoolSize
    int64_t staging_max_backlog = 0;     ///< --stagingMaxBacklog: 503 above (0: no bound)
    int64_t target_max_pool_size = 128;  ///< --targetMaxPoolSize
    std::chrono::nanoseconds apply_timeout = std::chrono::seconds(30);  ///< --applyTimeout
    std::chrono::nanoseconds schema_refresh = std::chrono::minutes(1);  ///< --schemaRefresh

    // Apply
    bool immediate = false;                ///< --immediate
    bool skip_foreign_key_checks = false;  ///< --skipForeignKeyChecks (immediate mode only)
    int64_t flush_size = 1000;             ///< --flushSize: rows per statement at most
    int64_t parallelism = 16;              ///< --parallelism: requests applied at once
    int64_t scan_size = 10000;             ///< --scanSize: staging rows per read, per table
    std::chrono::nanoseconds flush_period = std::chrono::seconds(1);  ///< --flushPeriod
    std::chrono::nanoseconds retire_offset = std::chrono::hours(24);  ///< --retireOffset
    bool allow_backwards_checkpoint = false;  ///< --allowBackwardsCheckpoint
    bool fatal_row_dlq = false;  ///< --fatalRowPolicy dlq (else stall): rows the target refuses
    std::string dlq_table_name = "replicator_dlq";  ///< --dlqTableName, in each target schema

    // Process
    std::chrono::nanoseconds grace_period = std::chrono::seconds(30);  ///< --gracePeriod
    log::format log_format = log::format::json;  ///< --logFormat json|text (fluent = json)
    std::string log_destination;                 ///< --logDestination: a file instead of stdout
    int verbosity = 0;                           ///< -v debug, -vv trace
    std::string userscript;                      ///< --userscript: a file, or empty
    std::chrono::nanoseconds userscript_timeout =
        std::chrono::seconds(10);                    ///< --userscriptTimeout
    size_t userscript_max_heap = size_t{512} << 20;  ///< --userscriptMaxHeap

    std::vector<std::string> args;  ///< the arguments as given, to parse again with overrides
    std::vector<std::string> set_by_script;  ///< flags a userscript's setOptions set
};

/// A flag set by name and value over the command line's (a userscript's setOptions).
using flag_override = std::pair<std::string, std::string>;

/// Parses the arguments after "start" and runs preflight. On failure the error message lists
/// every problem, one per line. `overrides` replace the command line's values before preflight
/// (--targetConn and --targetConnFile replace each other, as do the staging pair); an unknown
/// name is a problem (setOptions: unknown option "NAME"), and so are the flags read before a
/// userscript runs (--userscript, --userscriptTimeout, --userscriptMaxHeap, --logFormat,
/// --logDestination, --dryRun, -v).
[[nodiscard]] result<start_config> parse_start_flags(
    const std::vector<std::string_view>& args, const std::vector<flag_override>& overrides = {});

/// The help text of `replicator start`, generated from the flag table.
void print_start_help(std::ostream& out);

/// True when the arguments ask for help.
[[nodiscard]] bool wants_help(const std::vector<std::string_view>& args);

}  // namespace molt::replicator
