#pragma once
// A small blocking HTTP(S) GET client for molt's own use: the replicator's /_/healthz and
// /_/varz. OpenSSL directly (no Beast in molt), one request per connection, every socket wait
// bounded by one deadline.
//
// The replicator's certificate is often self-signed (--tlsSelfSigned), so by default the server
// certificate is not verified; with `ca_file` set it is verified against that CA and the host.
// A client certificate may be presented (the replicator's mTLS endpoints accept it).

#include <chrono>
#include <cstdint>
#include <string>

#include "molt/common/result.hpp"

namespace molt::fetch {

struct http_target {
    std::string host;  ///< name or address; "" or "0.0.0.0" / "::" mean the loopback address
    uint16_t port = 0;
    bool tls = true;
    std::string ca_file;          ///< verify the server against this PEM CA; empty: no check
    std::string client_cert_pem;  ///< optional client certificate (PEM text)
    std::string client_key_pem;   ///< its key (PEM text; never logged)
};

struct http_reply {
    int status = 0;
    std::string body;
};

/// GET `path` (e.g. "/_/healthz"). Connect, handshake, write and read all finish within
/// `timeout`; a body larger than `max_body` is an error. Errors name the request
/// ("GET https://host:port/path") and the step that failed (resolve, connect, TLS setup, TLS
/// handshake, write request, read response), never key material. Codes: errc::timeout when the
/// deadline passes, unavailable (refused, reset, closed), tls_error, parse_error (not HTTP/1.x),
/// limit_exceeded (body), invalid_argument (a path not starting with '/').
/// The body is framed by Transfer-Encoding: chunked, Content-Length, or the end of the
/// connection. Host names are resolved with getaddrinfo, which the timeout cannot interrupt
/// (numeric addresses skip the resolver).
[[nodiscard]] result<http_reply> http_get(const http_target& target, const std::string& path,
                                          std::chrono::milliseconds timeout,
                                          size_t max_body = 16 * 1024 * 1024);

}  // namespace molt::fetch
