#pragma once
// The HTTP(S) server: Boost.Beast over Asio, C++20 coroutines. The only translation unit that
// includes Beast, Asio and their SSL parts.
//
// Per connection: TLS handshake (within the read timeout), then requests over keep-alive. A
// request is read in full (headers within the idle timeout; body within the read timeout and the
// body limit: 413 above it), handed to the router on a worker thread (the apply path blocks on
// the database), and answered. HTTP/1.1 only: no ALPN is offered, so Go clients (CockroachDB)
// fall back from HTTP/2 by themselves.
//
// shutdown(grace): stop accepting, close idle connections, let in-flight requests finish and
// answer with "Connection: close", then stop. Returns false when requests were still running
// after the grace period.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>

#include "molt/common/net_address.hpp"
#include "molt/common/result.hpp"
#include "molt/replicator/server/router.hpp"
#include "molt/replicator/server/tls.hpp"

namespace molt::replicator {

struct http_server_config {
    net_address bind;
    std::optional<net_address> diagnostics_bind;  ///< --metricsAddr: plain HTTP
    std::optional<tls_material> tls;              ///< none: plain HTTP (--insecureHTTP)
    size_t max_body_bytes = 64 * 1024 * 1024;
    std::chrono::nanoseconds read_timeout = std::chrono::seconds(60);
    std::chrono::nanoseconds idle_timeout = std::chrono::seconds(90);
    size_t worker_threads = 16;  ///< requests handled at once (--parallelism)
    size_t io_threads = 2;
};

class http_server {
public:
    http_server(http_server_config config, router& routes);
    ~http_server();
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    /// Binds the listeners and starts serving. Errors name the address.
    [[nodiscard]] result<void> start();
    /// The address the main listener is bound to (the real port when 0 was asked for).
    [[nodiscard]] net_address bound_address() const;
    [[nodiscard]] std::optional<net_address> bound_diagnostics_address() const;

    /// Graceful stop; see the header comment.
    bool shutdown(std::chrono::nanoseconds grace);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace molt::replicator
