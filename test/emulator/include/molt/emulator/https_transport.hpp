#pragma once
// The transport a changefeed uses: POST over HTTPS (or HTTP, for tests) with keep-alive, the
// webhook sink's TLS options, the Go client's headers (Content-Type: application/json,
// User-Agent: Go-http-client/1.1, Accept-Encoding: gzip), an optional Authorization header, the
// compression option (the whole body compressed; Content-Encoding and Accept-Encoding name the
// codec), and a client timeout. Failed connections are reopened on the next request; an
// exchange can be cancelled from another thread (a changefeed restart closes its connections);
// a connection idle for a minute is closed. Redirects are followed as Go's client follows them
// (up to 10 requests; 301/302/303 turn the POST into a GET without a body, whose 2xx counts as
// success; 307/308 send the body again; Authorization only to the same domain or a subdomain).

#include <chrono>
#include <memory>
#include <string>

#include "molt/common/compression.hpp"
#include "molt/common/result.hpp"
#include "molt/emulator/sender.hpp"

namespace molt::emulator {

struct endpoint_options {
    /// webhook-https://host:port/path?query (https:// and http:// too). The sink's own
    /// parameters (ca_cert, client_cert, client_key, insecure_tls_skip_verify) are consumed;
    /// the others are passed on, re-encoded as Go does.
    std::string sink_uri;
    std::string authorization;  ///< webhook_auth_header
    /// webhook_client_timeout: for the whole exchange (connect, write, answer; the host name is
    /// resolved before, unbounded). Zero: none, as
    /// CockroachDB v23.2 to v26.1 do when it is unset (an unanswered request waits forever).
    std::chrono::nanoseconds timeout{0};
    compression::codec compression = compression::codec::identity;  ///< compression
    /// A kept-alive connection unused this long is closed (CockroachDB's sink: a minute).
    std::chrono::nanoseconds idle_timeout = std::chrono::minutes(1);
};

/// Checks the URI and TLS material, and returns a factory of connections.
[[nodiscard]] result<transport_factory> make_https_transport(const endpoint_options& options);

}  // namespace molt::emulator
