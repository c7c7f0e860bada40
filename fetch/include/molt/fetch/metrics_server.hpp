#pragma once
// molt's own diagnostics endpoint (--metrics-listen-addr, default 127.0.0.1:3030), plain HTTP
// as MOLT serves it:
//   GET /metrics  Prometheus text (the registry's exposition)
//   GET /healthz  "OK"
//   GET /status   a JSON document supplied by the caller (failback progress)
// One background thread accepts connections and answers each in turn (requests are tiny; every
// read and write has a timeout so a slow client cannot hold it). Anything else: 404; not GET: 405
// (with Allow: GET); a malformed request line: 400; a request head over 8 KiB: 431; a throwing
// callback (status or metrics collector): 500 and a warning in the log. Every response carries
// Content-Length and Connection: close: one request per connection.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "molt/common/metrics.hpp"
#include "molt/common/net_address.hpp"
#include "molt/common/result.hpp"

namespace molt::fetch {

class metrics_server {
public:
    /// Binds `addr` (port 0 picks a free port; an empty host means every interface) and starts
    /// serving. `status_json` is called for each GET /status, from the server thread.
    /// `io_timeout` bounds reading one request and, separately, writing its response.
    /// A bind failure (e.g. the address is in use) is an errc::io_error naming the address.
    [[nodiscard]] static result<std::unique_ptr<metrics_server>> start(
        const net_address& addr, metrics::registry& registry,
        std::function<std::string()> status_json,
        std::chrono::milliseconds io_timeout = std::chrono::seconds(5));

    metrics_server(const metrics_server&) = delete;
    metrics_server& operator=(const metrics_server&) = delete;
    /// Stops the thread promptly (also in the middle of a connection) and closes the socket.
    ~metrics_server();

    /// The bound address (the real port when 0 was asked for).
    [[nodiscard]] const net_address& address() const noexcept;

private:
    struct impl;
    explicit metrics_server(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

}  // namespace molt::fetch
