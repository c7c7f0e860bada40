#pragma once
// The pgwire front of the CockroachDB stand-in: accepts PostgreSQL protocol 3.0 clients
// (optionally over TLS: SSLRequest is answered 'S' when a certificate is configured, 'N'
// otherwise), opens one backend connection per client, and passes the startup message,
// authentication and every other message through unchanged, except the SQL of Query and Parse
// messages, which goes through crdb::rewrite_query / rewrite_statement with the client's
// cluster_session. A CancelRequest is forwarded to the backend. One thread per client.

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "molt/common/result.hpp"
#include "molt/emulator/cluster.hpp"

namespace molt::emulator {

struct proxy_options {
    std::string listen_host = "127.0.0.1";
    uint16_t listen_port = 26257;  ///< 0: any free port (see pg_proxy::port)
    std::string backend_host;
    uint16_t backend_port = 5432;
    std::string tls_certificate;  ///< PEM chain file; empty: no TLS towards clients
    std::string tls_private_key;  ///< PEM key file
};

class pg_proxy {
public:
    pg_proxy(proxy_options options, cluster& c);
    ~pg_proxy();
    pg_proxy(const pg_proxy&) = delete;
    pg_proxy& operator=(const pg_proxy&) = delete;

    /// Loads the TLS material, binds and starts accepting.
    result<void> start();
    /// Stops accepting and closes every client connection.
    void stop();
    /// The port bound (after start).
    [[nodiscard]] uint16_t port() const noexcept { return port_; }

private:
    struct connection;
    void accept_loop();
    void serve(connection& conn);

    proxy_options options_;
    cluster& cluster_;
    std::shared_ptr<void> tls_;  // SSL_CTX
    int listener_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::thread acceptor_;
    std::mutex mutex_;
    std::list<std::unique_ptr<connection>> connections_;
};

}  // namespace molt::emulator
