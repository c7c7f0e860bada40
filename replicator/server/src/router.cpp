#include "molt/replicator/server/router.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include "molt/common/compression.hpp"
#include "molt/common/log.hpp"
#include "molt/replicator/source/webhook.hpp"

namespace molt::replicator {

http_response error_reply(const error& e) {
    http_response r;
    switch (e.code()) {
    case errc::parse_error:
    case errc::invalid_argument:
    case errc::database_error: r.status = 400; break;
    case errc::unauthenticated: r.status = 401; break;
    case errc::forbidden: r.status = 403; break;
    case errc::not_found: r.status = 404; break;
    case errc::limit_exceeded: r.status = 413; break;
    case errc::unavailable:
    case errc::timeout:
    case errc::cancelled: r.status = 503; break;
    case errc::unsupported: r.status = 404; break;
    case errc::io_error:
    case errc::tls_error:
    case errc::internal: r.status = 500; break;
    }
    r.body = log::sanitize(e.message()) + "\n";
    return r;
}

router::router(router_config config, mutation_acceptor& acceptor, health_check health,
               metrics::registry& metrics)
    : config_(std::move(config)),
      acceptor_(acceptor),
      health_(std::move(health)),
      metrics_(metrics),
      status_codes_(
          metrics.counter("http_status_codes_total", "HTTP responses by status code", {"code"})),
      payload_bytes_(
          metrics.counter("http_payload_in_bytes_total", "Bytes of request bodies received")),
      compressed_(metrics.counter("http_compressed_requests_total",
                                  "Webhook requests with a compressed body, by Content-Encoding",
                                  {"encoding"})) {}

namespace {

std::string_view path_of(const http_request& request) {
    return std::string_view(request.target).substr(0, request.target.find('?'));
}

bool is_get(const http_request& request) {
    return request.method == "GET" || request.method == "HEAD";
}

}  // namespace

void router::count(const http_request& request, const http_response& response) {
    status_codes_.with({std::to_string(response.status)}).add();
    payload_bytes_.get().add(request.body.size());
}

http_response router::finish(const http_request& request, size_t body_bytes,
                             http_response response) {
    status_codes_.with({std::to_string(response.status)}).add();
    payload_bytes_.get().add(body_bytes);
    if (response.status >= 400) {
        auto event = response.status >= 500 ? log::error() : log::warn();
        event.unum("status", response.status)
            .str("uri", log::sanitize(jwt::without_access_token(request.target)))
            .str("remote", request.remote)
            .err(response.body.substr(0, response.body.size() - 1))
            .msg("request refused");
    }
    return response;
}

request_lane router::lane(const http_request& head, bool diagnostics) const {
    const std::string_view path = path_of(head);
    if (diagnostics) {
        return path == "/_/readyz" ? request_lane::readiness : request_lane::local;
    }
    if (path.rfind("/_/", 0) == 0) {
        return path == "/_/healthz" && is_get(head) ? request_lane::readiness : request_lane::local;
    }
    return request_lane::webhook;
}

std::optional<http_response> router::screen(const http_request& head) {
    if (head.method != "POST") {
        http_response r;
        r.status = 405;
        r.allow = "POST";
        r.body = fmt::format("method {} is not allowed: changefeeds POST to this path\n",
                             log::sanitize(head.method));
        return finish(head, 0, std::move(r));
    }
    if (config_.auth == auth_mode::client_certificate && !head.client_certificate_verified) {
        return finish(head, 0,
                      error_reply(error{errc::unauthenticated,
                                        "a client certificate signed by --tlsClientCA is "
                                        "required to write (CREATE CHANGEFEED ... INTO "
                                        "'webhook-https://...?client_cert=...&client_key=...')"}));
    }
    if (config_.auth != auth_mode::disabled) {
        const std::string token = jwt::token_of(head.authorization, head.target);
        if (config_.auth == auth_mode::jwt || !token.empty()) {
            if (auto refused = check_token(head, token)) {
                return finish(head, 0, std::move(*refused));
            }
        }
    }
    if (!compression::parse(head.content_encoding)) {
        http_response r;
        r.status = 415;
        r.body = fmt::format(
            "unsupported Content-Encoding \"{}\": the replicator reads gzip and zstd bodies "
            "(CREATE CHANGEFEED ... WITH compression='gzip' or 'zstd')\n",
            log::sanitize(std::string_view(head.content_encoding).substr(0, 64)));
        return finish(head, 0, std::move(r));
    }
    return std::nullopt;
}

std::optional<http_response> router::check_token(const http_request& head,
                                                 const std::string& token) const {
    if (config_.tokens == nullptr) {
        // The cause (a staging error: hosts, users) is in the startup log, not for the caller.
        return error_reply(error{errc::unauthenticated,
                                 "missing or invalid access token: tokens cannot be checked by "
                                 "this replicator (its log says why)"});
    }
    // A path that names no schema is answered 404 later, to a caller with a good token only.
    const auto schema = parse_webhook_path(head.target, config_.target_dialect);
    auto checked =
        config_.tokens->check(token, schema ? &*schema : nullptr, std::chrono::system_clock::now());
    if (!checked) {
        return error_reply(checked.error());
    }
    return std::nullopt;
}

http_response router::overloaded(const http_request& head, std::string_view why) {
    http_response r = error_reply(error{errc::unavailable, std::string(why)});
    r.retry_after = 1;
    count(head, r);
    return r;
}

http_response router::readiness() {
    http_response r;
    if (auto failed = health_()) {
        // The cause names hosts, users and databases: for the operator's log, not the caller.
        log::warn()
            .str("component", failed->component)
            .err(failed->cause)
            .msg("health check failed");
        r = error_reply(error{errc::unavailable, "health check failed for " + failed->component});
    } else {
        r.body = "OK\n";
    }
    return r;
}

http_response router::route_diagnostics(const http_request& request) {
    const std::string_view path = path_of(request);
    http_response r;
    if (path == "/_/healthz") {
        r.body = "OK\n";  // liveness only, as the original's metrics port
    } else if (path == "/_/readyz") {
        r = readiness();
    } else if (path == "/_/varz") {
        r.body = metrics_.expose();
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    } else {
        r.status = 404;
        r.body = "not found: this port serves /_/healthz, /_/readyz and /_/varz\n";
    }
    return r;
}

http_response router::route(http_request&& request) {
    const std::string_view path = path_of(request);
    http_response r;
    if (path.rfind("/_/", 0) == 0) {
        if (!is_get(request)) {
            r.status = 405;
            r.allow = "GET";
            r.body = fmt::format("method {} is not allowed on {}; use GET\n",
                                 log::sanitize(request.method), log::sanitize(path));
        } else if (path == "/_/healthz") {
            r = readiness();
        } else if (config_.diagnostics_elsewhere) {
            r.status = 404;
            r.body = "not found: /_/varz is served on --metricsAddr\n";
        } else if (path == "/_/varz") {
            r = route_diagnostics(request);
        } else {
            r.status = 404;
            r.body = "not found: /_/ is reserved (try /_/healthz or /_/varz)\n";
        }
        count(request, r);
        return r;
    }
    return webhook(std::move(request));
}

bool peer_closed(int fd) {
    tcp_info info{};
    socklen_t size = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) != 0) {
        return false;  // not a TCP socket (a test's): nothing to tell
    }
    switch (info.tcpi_state) {
    case TCP_CLOSE_WAIT:
    case TCP_LAST_ACK:
    case TCP_CLOSE:
    case TCP_CLOSING:
    case TCP_TIME_WAIT: return true;
    default: return false;
    }
}

http_response router::webhook(http_request&& request) {
    if (auto refused = screen(request)) {
        return std::move(*refused);
    }
    const size_t bytes = request.body.size();
    auto schema = parse_webhook_path(request.target, config_.target_dialect);
    if (!schema) {
        return finish(request, bytes, error_reply(schema.error()));
    }
    // screen() let only codecs that parse through.
    const auto parsed = compression::parse(request.content_encoding);
    if (const auto codec = parsed ? *parsed : compression::codec::identity;
        codec != compression::codec::identity) {
        compressed_.with({std::string(compression::name(codec))}).add();  // bad ones too
        auto plain = compression::decompress(codec, request.body, config_.limits.max_body_bytes);
        if (!plain) {
            error e = plain.error();
            if (e.code() == errc::limit_exceeded) {
                e = error{errc::limit_exceeded, e.message() + " (--maxBodySize)"};
            }
            return finish(request, bytes, error_reply(e));
        }
        request.body = std::move(*plain);
    }
    request_context context;
    context.arrived = request.arrived;
    if (const int fd = request.socket; fd >= 0) {
        // Asked on this worker thread while the connection waits for the answer: the socket
        // stays open until then, and reading its TCP state is thread-safe.
        context.client_gone = [fd] { return peer_closed(fd); };
    }
    auto outcome =
        handle_webhook(acceptor_, *schema, std::move(request.body), config_.limits, context);
    if (!outcome) {
        return finish(request, bytes, error_reply(outcome.error()));
    }
    http_response r;
    r.body = "OK\n";
    return finish(request, bytes, std::move(r));
}

}  // namespace molt::replicator
