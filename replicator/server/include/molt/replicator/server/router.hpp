#pragma once
// Request routing and the one place where errors become HTTP replies. Pure: no sockets. The HTTP
// server asks lane() where a request runs as soon as its headers are in, screen() whether a
// webhook request is refused before its body is read, and route() (or route_diagnostics()) for
// the answer.
//
// On --bindAddr:
//   GET  /_/healthz   readiness: pings staging, then the target; 200 "OK", or 503 "health check
//                     failed for staging" / "... for target" (the details go to the log only:
//                     no host, user or database to an unauthenticated caller). Served even when
//                     --metricsAddr is set (as in the original). No auth.
//   GET  /_/varz      Prometheus metrics (no auth); 404 here when --metricsAddr is set
//   *    /_/...       404: reserved
//   POST /<schema>    the changefeed webhook (authentication required)
//   other methods     405
// On --metricsAddr (route_diagnostics): /_/healthz liveness (always "OK", touches no database),
// /_/readyz the readiness check above, /_/varz; anything else 404.
//
// Status codes: 200 written (or staged); 400 malformed payload or refused data (nothing written);
// 401 authentication (no valid credential); 403 a valid JWT that does not allow the schema; 404
// unknown path, schema or table; 405 method; 413 over a size limit
// (--maxBodySize, also after decompression); 415 a Content-Encoding other than gzip, zstd or
// identity; 503 target unavailable or overloaded (the changefeed retries; Retry-After when the
// server is full). The body carries the reason.

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "molt/common/dialect.hpp"
#include "molt/common/error.hpp"
#include "molt/common/metrics.hpp"
#include "molt/proto/decoder.hpp"
#include "molt/replicator/core/acceptor.hpp"
#include "molt/replicator/server/jwt.hpp"

namespace molt::replicator {

struct http_request {
    std::string method;
    std::string target;  ///< path and query, as sent
    std::string body;    ///< as received (compressed when content_encoding says so)
    bool client_certificate_verified = false;  ///< the TLS client presented a trusted certificate
    std::string remote;                        ///< peer address, for logs
    /// When the headers were read (see request_context).
    std::chrono::steady_clock::time_point arrived = std::chrono::steady_clock::now();
    /// The connection's TCP socket, open until the answer is written: tells whether the client
    /// has left (-1: unknown).
    int socket = -1;
    /// The Content-Encoding header: a changefeed WITH compression='gzip' or 'zstd' compresses
    /// the whole body.
    std::string content_encoding{};
    /// The Authorization header (a JWT: "Bearer <token>"). Secret: never logged.
    std::string authorization{};
};

/// Whether the peer of a connected TCP socket has closed or reset it (the kernel saw its FIN or
/// RST), whatever is still unread: a client that gave up on its request.
[[nodiscard]] bool peer_closed(int fd);

struct http_response {
    unsigned status = 200;
    std::string body;
    std::string content_type = "text/plain; charset=utf-8";
    std::string allow;         ///< Allow header for 405
    unsigned retry_after = 0;  ///< Retry-After header in seconds (0: none)
};

/// Where a request runs, decided from its headers.
enum class request_lane {
    local,      ///< liveness, /_/varz, 404/405 under /_/: answered at once on the I/O thread
    readiness,  ///< the readiness check: pings the databases on a probe thread, never a worker
    webhook,    ///< the changefeed: screened at its headers, then read and handled on a worker
};

/// A failed readiness check: which part (staging or target), and why (for the log only).
struct health_failure {
    std::string component;
    error cause;
};

/// The HTTP response for an error (status from errc; the message as body).
[[nodiscard]] http_response error_reply(const error& e);

/// Who may write (replicator/README.md, "Authentication").
enum class auth_mode {
    jwt,                 ///< the default: writers send a JWT that allows the schema
    disabled,            ///< --disableAuthentication: anyone may write
    client_certificate,  ///< --tlsClientCA: writers present a trusted client certificate; a JWT,
                         ///< when one is sent, must be valid and allow the schema too
};

struct router_config {
    molt::dialect target_dialect = molt::dialect::postgres;
    auth_mode auth = auth_mode::jwt;
    /// Checks tokens; null when they cannot be checked (a token sent is then refused).
    const jwt::verifier* tokens = nullptr;
    proto::decode_limits limits;
    /// True: /_/healthz and /_/varz are served on --metricsAddr, not here.
    bool diagnostics_elsewhere = false;
};

class router {
public:
    /// Empty when healthy.
    using health_check = std::function<std::optional<health_failure>()>;

    router(router_config config, mutation_acceptor& acceptor, health_check health,
           metrics::registry& metrics);

    /// Where the request runs; `head` has no body yet. `diagnostics`: it came to --metricsAddr.
    [[nodiscard]] request_lane lane(const http_request& head, bool diagnostics) const;

    /// For a webhook request whose headers are in: the answer (405, 401, 415) when it is refused
    /// before its body is read, counted and logged; empty when the body may be read.
    [[nodiscard]] std::optional<http_response> screen(const http_request& head);

    /// 503 with Retry-After: 1 for a request the server has no room for (`why` says which
    /// limit), counted like every answer.
    [[nodiscard]] http_response overloaded(const http_request& head, std::string_view why);

    [[nodiscard]] http_response route(http_request&& request);

    /// The diagnostics endpoints alone (for --metricsAddr): liveness, readiness and metrics.
    [[nodiscard]] http_response route_diagnostics(const http_request& request);

private:
    [[nodiscard]] http_response webhook(http_request&& request);
    [[nodiscard]] http_response readiness();
    /// The refusal of a request's token (401/403), or empty when it is good.
    [[nodiscard]] std::optional<http_response> check_token(const http_request& head,
                                                           const std::string& token) const;
    void count(const http_request& request, const http_response& response);
    /// Counts an answer to a webhook request and logs a refusal.
    http_response finish(const http_request& request, size_t body_bytes, http_response response);

    router_config config_;
    mutation_acceptor& acceptor_;
    health_check health_;
    metrics::registry& metrics_;
    metrics::family<metrics::counter>& status_codes_;
    metrics::family<metrics::counter>& payload_bytes_;
    metrics::family<metrics::counter>& compressed_;
};

}  // namespace molt::replicator
