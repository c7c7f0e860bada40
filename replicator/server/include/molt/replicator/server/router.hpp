#pragma once
// Request routing and the one place where errors become HTTP replies. Pure: no sockets; the
// HTTP server calls route() on a worker thread for every request it has read completely.
//
//   GET  /_/healthz   200 "OK" when the target (and staging) answer, else 503 with the reason
//                     (no auth)
//   GET  /_/varz      Prometheus metrics (no auth)
//   *    /_/...       404: reserved
//   POST /<schema>    the changefeed webhook (authentication required)
//   other methods     405
//
// Status codes: 200 written (or staged); 400 malformed payload or refused data (nothing written);
// 401 authentication; 404 unknown path, schema or table; 405 method; 413 over a size limit;
// 503 target unavailable or overloaded (the changefeed retries). The body carries the reason.

#include <functional>
#include <string>

#include "molt/common/dialect.hpp"
#include "molt/common/error.hpp"
#include "molt/common/metrics.hpp"
#include "molt/proto/decoder.hpp"
#include "molt/replicator/core/acceptor.hpp"

namespace molt::replicator {

struct http_request {
    std::string method;
    std::string target;  ///< path and query, as sent
    std::string body;
    bool client_certificate_verified = false;  ///< the TLS client presented a trusted certificate
    std::string remote;                        ///< peer address, for logs
};

struct http_response {
    unsigned status = 200;
    std::string body;
    std::string content_type = "text/plain; charset=utf-8";
    std::string allow;  ///< Allow header for 405
};

/// The HTTP response for an error (status from errc; the message as body).
[[nodiscard]] http_response error_reply(const error& e);

enum class auth_mode {
    none,                ///< no credential mechanism configured: every write is refused (401)
    disabled,            ///< --disableAuthentication: anyone may write
    client_certificate,  ///< --tlsClientCA: writers must present a trusted client certificate
};

struct router_config {
    molt::dialect target_dialect = molt::dialect::postgres;
    auth_mode auth = auth_mode::none;
    proto::decode_limits limits;
    /// True: /_/healthz and /_/varz are served on --metricsAddr, not here.
    bool diagnostics_elsewhere = false;
};

class router {
public:
    using health_check = std::function<result<void>()>;

    router(router_config config, mutation_acceptor& acceptor, health_check health,
           metrics::registry& metrics);

    [[nodiscard]] http_response route(http_request&& request);

    /// The diagnostics endpoints alone (for --metricsAddr): liveness and metrics.
    [[nodiscard]] http_response route_diagnostics(const http_request& request);

private:
    [[nodiscard]] http_response webhook(http_request&& request);
    void count(const http_request& request, const http_response& response);

    router_config config_;
    mutation_acceptor& acceptor_;
    health_check health_;
    metrics::registry& metrics_;
    metrics::family<metrics::counter>& status_codes_;
    metrics::family<metrics::counter>& payload_bytes_;
};

}  // namespace molt::replicator
