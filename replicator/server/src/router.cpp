#include "molt/replicator/server/router.hpp"

#include <fmt/format.h>

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
          metrics.counter("http_payload_in_bytes_total", "Bytes of request bodies received")) {}

void router::count(const http_request& request, const http_response& response) {
    status_codes_.with({std::to_string(response.status)}).add();
    payload_bytes_.get().add(request.body.size());
}

http_response router::route_diagnostics(const http_request& request) {
    const std::string_view path =
        std::string_view(request.target).substr(0, request.target.find('?'));
    http_response r;
    if (path == "/_/healthz") {
        r.body = "OK\n";  // liveness only, as the original's metrics port
    } else if (path == "/_/varz") {
        r.body = metrics_.expose();
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    } else {
        r.status = 404;
        r.body = "not found: this port serves /_/healthz and /_/varz\n";
    }
    return r;
}

http_response router::route(http_request&& request) {
    const std::string_view path =
        std::string_view(request.target).substr(0, request.target.find('?'));
    http_response r;
    if (path.rfind("/_/", 0) == 0) {
        if (config_.diagnostics_elsewhere) {
            r.status = 404;
            r.body = "not found: /_/ endpoints are served on --metricsAddr\n";
        } else if (request.method != "GET" && request.method != "HEAD") {
            r.status = 405;
            r.allow = "GET";
            r.body = fmt::format("method {} is not allowed on {}; use GET\n",
                                 log::sanitize(request.method), log::sanitize(path));
        } else if (path == "/_/healthz") {
            if (auto healthy = health_(); healthy) {
                r.body = "OK\n";
            } else {
                r = error_reply(error{errc::unavailable,
                                      "health check failed for " + healthy.error().message()});
            }
        } else if (path == "/_/varz") {
            r = route_diagnostics(request);
        } else {
            r.status = 404;
            r.body = "not found: /_/ is reserved (try /_/healthz or /_/varz)\n";
        }
        count(request, r);
        return r;
    }
    r = webhook(std::move(request));
    return r;
}

http_response router::webhook(http_request&& request) {
    http_response r;
    const std::string target = request.target;
    const size_t bytes = request.body.size();
    auto finish = [&](http_response response) {
        status_codes_.with({std::to_string(response.status)}).add();
        payload_bytes_.get().add(bytes);
        if (response.status >= 400) {
            auto event = response.status >= 500 ? log::error() : log::warn();
            event.unum("status", response.status)
                .str("uri", log::sanitize(target))
                .str("remote", request.remote)
                .err(response.body.substr(0, response.body.size() - 1))
                .msg("request refused");
        }
        return response;
    };
    if (request.method != "POST") {
        r.status = 405;
        r.allow = "POST";
        r.body = fmt::format("method {} is not allowed: changefeeds POST to this path\n",
                             log::sanitize(request.method));
        return finish(r);
    }
    switch (config_.auth) {
    case auth_mode::disabled: break;
    case auth_mode::client_certificate:
        if (!request.client_certificate_verified) {
            return finish(error_reply(error{
                errc::unauthenticated,
                "a client certificate signed by --tlsClientCA is required to write (CREATE "
                "CHANGEFEED ... INTO 'webhook-https://...?client_cert=...&client_key=...')"}));
        }
        break;
    case auth_mode::none:
        return finish(error_reply(
            error{errc::unauthenticated,
                  "no credentials are configured: start the replicator with --tlsClientCA (client "
                  "certificates) or --disableAuthentication"}));
    }
    auto schema = parse_webhook_path(target, config_.target_dialect);
    if (!schema) {
        return finish(error_reply(schema.error()));
    }
    auto outcome = handle_webhook(acceptor_, *schema, std::move(request.body), config_.limits);
    if (!outcome) {
        return finish(error_reply(outcome.error()));
    }
    r.body = "OK\n";
    return finish(r);
}

}  // namespace molt::replicator
