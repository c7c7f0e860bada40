#pragma once
// The HTTP(S) server: Boost.Beast over Asio, C++20 coroutines. The only translation unit that
// includes Beast, Asio and their SSL parts.
//
// Per connection: TLS handshake (within the read timeout), then requests over keep-alive. For
// each request the headers are read first (within the idle timeout) and the router says where
// it runs:
//   - liveness, /_/varz and other /_/ answers: at once, on the I/O thread;
//   - the readiness check (/_/healthz on --bindAddr, /_/readyz on --metricsAddr): on a probe
//     thread of its own, so it answers while every worker is blocked on the target;
//   - the webhook: screened on its headers (405, 401: answered without reading the body, and
//     the connection is closed), then given a worker slot (503 + Retry-After: 1 when
//     `worker_threads + max_queued` requests are already being read, waiting or handled), then
//     its body is read (within the read timeout and the body limit: 413 above it; "Expect:
//     100-continue" is answered), handed to the router on a worker thread (the apply path
//     blocks on the database), and answered.
// With `require_client_certificate` (mTLS and no diagnostics on this port) a client without a
// certificate fails the TLS handshake itself.
//
// Connections: at most `max_connections` on the main port (`diagnostics_max_connections` on
// the diagnostics port). Beyond it a connection gets one 503 with Retry-After: 1 (headers read
// within 2 s; body not read) and is closed; while 16 such answers are already under way, further
// connections are closed at once. Both refusals are counted in
// http_overload_refusals_total{reason} and logged at most every 10 s.
// HTTP/1.1 only: no ALPN is offered, so Go clients (CockroachDB) fall back from HTTP/2 by
// themselves.
//
// shutdown(grace): stop accepting, close idle connections, let in-flight requests finish and
// answer with "Connection: close", then stop. Returns false when requests were still running
// after the grace period.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>

#include "molt/common/metrics.hpp"
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
    size_t worker_threads = 16;    ///< requests handled at once (--parallelism)
    size_t max_queued = 64;        ///< webhook requests admitted beyond those (--maxQueuedRequests)
    size_t max_connections = 256;  ///< on the main port (--maxConnections)
    size_t diagnostics_max_connections = 64;  ///< on the diagnostics port
    bool require_client_certificate = false;  ///< refuse a TLS client without one at the handshake
    size_t io_threads = 2;
    size_t probe_threads = 2;  ///< readiness checks, apart from the workers
};

class http_server {
public:
    /// Registers its gauges and counters in `metrics` (which must outlive it).
    http_server(http_server_config config, router& routes, metrics::registry& metrics);
    ~http_server();
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    /// Binds the listeners and starts serving. Errors name the address.
    [[nodiscard]] result<void> start();
    /// The address the main listener is bound to (the real port when 0 was asked for).
    [[nodiscard]] net_address bound_address() const;
    [[nodiscard]] std::optional<net_address> bound_diagnostics_address() const;

    /// New TLS material for connections accepted from now on; established connections keep
    /// theirs. On an error (a certificate or key OpenSSL refuses, an unreadable client CA)
    /// nothing changes.
    [[nodiscard]] result<void> reload_tls(const tls_material& material);

    /// Graceful stop; see the header comment.
    bool shutdown(std::chrono::nanoseconds grace);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace molt::replicator
