// The emulator's HTTP(S) client: Beast, one TU. Operations are asynchronous so that an exchange
// can be bounded by the client timeout (io_context::run_until) and cancelled from another
// thread, on a context per connection.
#include "molt/emulator/https_transport.hpp"

#include <algorithm>
#include <mutex>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "molt/proto/sink_config.hpp"

namespace molt::emulator {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// Where a connection goes.
struct origin {
    bool tls = true;
    std::string host;
    std::string port;
    bool operator==(const origin&) const = default;
};

struct parsed_uri : origin {
    std::string authority;  // as written: the Host header (Go sends URL.Host, port included)
    std::string target;     // path and passed-on query
    proto::sink_query query;
};

// One request of an exchange: the sink URI's, then each redirect's.
struct hop {
    origin to;
    std::string target;
    bool post = true;       // else a GET without a body (301, 302 and 303 make one)
    std::string authority;  // the Host header: the URL's host as written, port included

    [[nodiscard]] std::string url() const {
        return fmt::format("{}://{}:{}{}", to.tls ? "https" : "http", to.host, to.port, target);
    }
};

// host, host:port, [v6] or [v6]:port
origin parse_authority(std::string_view authority, bool tls) {
    origin out;
    out.tls = tls;
    const size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos && authority.back() != ']') {
        out.host = std::string(authority.substr(0, colon));
        out.port = std::string(authority.substr(colon + 1));
    } else {
        out.host = std::string(authority);
        out.port = tls ? "443" : "80";
    }
    if (!out.host.empty() && out.host.front() == '[') {
        out.host = out.host.substr(1, out.host.size() - 2);
    }
    return out;
}

// A redirect's Location read against the request it answered, as Go's URL.Parse does for the
// forms a receiver sends: absolute, scheme-relative, absolute path, query, relative path.
hop follow(const hop& from, std::string_view location, int status) {
    hop next = from;
    // 301, 302, 303: a POST becomes a GET without a body; 307, 308 keep the method and body.
    next.post = from.post && (status == 307 || status == 308);
    auto path_query = [](std::string_view rest) {
        const size_t slash = std::min(rest.find('/'), rest.find('?'));
        std::string target(slash == std::string_view::npos ? "" : rest.substr(slash));
        return std::pair<std::string_view, std::string>(
            rest.substr(0, slash), target.empty() || target.front() == '?' ? "/" + target : target);
    };
    for (const auto& [prefix, tls] : {std::pair<std::string_view, bool>{"https://", true},
                                      {"http://", false},
                                      {"//", from.to.tls}}) {
        if (location.size() >= prefix.size() &&
            std::equal(prefix.begin(), prefix.end(), location.begin(),
                       [](char a, char b) { return a == std::tolower(b); })) {
            auto [authority, target] = path_query(location.substr(prefix.size()));
            next.to = parse_authority(authority, tls);
            next.authority = std::string(authority);
            next.target = std::move(target);
            return next;
        }
    }
    const std::string_view path = std::string_view(from.target).substr(0, from.target.find('?'));
    if (!location.empty() && location.front() == '/') {
        next.target = std::string(location);
    } else if (!location.empty() && location.front() == '?') {
        next.target = std::string(path) + std::string(location);
    } else {
        next.target = std::string(path.substr(0, path.rfind('/') + 1)) + std::string(location);
    }
    return next;
}

result<parsed_uri> parse_uri(std::string_view uri) {
    parsed_uri out;
    std::string_view rest;
    for (const auto& [prefix, tls] : {std::pair<std::string_view, bool>{"webhook-https://", true},
                                      {"https://", true},
                                      {"http://", false}}) {
        if (uri.rfind(prefix, 0) == 0) {
            rest = uri.substr(prefix.size());
            out.tls = tls;
        }
    }
    if (rest.empty()) {
        if (uri.rfind("webhook-http://", 0) == 0) {
            return error{errc::invalid_argument, "this sink requires webhook-https"};
        }
        return error{errc::invalid_argument,
                     "the sink URI must start with webhook-https://, https:// or http://"};
    }
    const size_t slash = std::min(rest.find('/'), rest.find('?'));
    std::string_view path_query = slash == std::string_view::npos ? "" : rest.substr(slash);
    static_cast<origin&>(out) = parse_authority(rest.substr(0, slash), out.tls);
    out.authority = std::string(rest.substr(0, slash));
    const size_t question = path_query.find('?');
    std::string path(path_query.substr(0, question));
    if (path.empty()) {
        path = "/";
    }
    auto query = proto::sink_query::parse(
        question == std::string_view::npos ? "" : path_query.substr(question + 1));
    if (!query) {
        return std::move(query).error();
    }
    out.query = std::move(query).value();
    const std::string passed = out.query.encoded_passthrough();
    out.target = passed.empty() ? path : path + "?" + passed;
    return out;
}

class https_transport final : public transport {
public:
    https_transport(std::shared_ptr<const parsed_uri> uri, std::shared_ptr<ssl::context> tls,
                    std::string authorization, std::chrono::nanoseconds timeout,
                    std::chrono::nanoseconds idle_timeout, compression::codec codec)
        : uri_(std::move(uri)),
          tls_(std::move(tls)),
          authorization_(std::move(authorization)),
          timeout_(timeout),
          idle_timeout_(idle_timeout),
          codec_(codec) {}

    send_outcome post(const std::string& plain, send_mode mode) override {
        begin_exchange();
        struct end_guard {
            https_transport* self;
            ~end_guard() { self->end_exchange(); }
        } guard{this};
        // Compressed for every attempt alike: a retry sends the same bytes.
        std::string compressed;
        if (codec_ != compression::codec::identity) {
            compressed = compression::compress(codec_, plain);
        }
        const std::string& body = codec_ != compression::codec::identity ? compressed : plain;
        hop at{*uri_, uri_->target, true, uri_->authority};
        std::string referer;
        bool authorize = true;  // dropped for good once a hop leaves the domain (Go 1.22.11+)
        // Go's client follows redirects (CheckRedirect unset): 10 requests at most.
        for (int requests = 1;; ++requests) {
            error_code ec;
            if (connected_ && !(connected_to_ == at.to)) {
                close();
            }
            if (!connected_ && !connect(at.to, ec)) {
                return {0, network_error(at, ec)};
            }
            http::request<http::string_body> req{at.post ? http::verb::post : http::verb::get,
                                                 at.target, 11};
            req.set(http::field::host, at.authority);
            req.set(http::field::content_type, "application/json");
            req.set(http::field::user_agent, "Go-http-client/1.1");
            if (codec_ != compression::codec::identity) {
                req.set(http::field::content_encoding, std::string(compression::name(codec_)));
                req.set(http::field::accept_encoding, std::string(compression::name(codec_)));
            } else {
                req.set(http::field::accept_encoding, "gzip");
            }
            // Go drops it on a redirect to another domain (not the same or a subdomain).
            authorize = authorize && same_domain(at.to.host);
            if (!authorization_.empty() && authorize) {
                req.set(http::field::authorization, authorization_);
            }
            if (!referer.empty()) {
                req.set(http::field::referer, referer);
            }
            if (at.post) {
                req.body() = body;
                req.prepare_payload();
            }
            if (requests == 1 && mode == send_mode::drop_midway) {
                // Headers and half the body, then the connection goes away.
                std::string head = fmt::format(
                    "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{}"
                    "Content-Length: {}\r\n\r\n",
                    uri_->target, uri_->authority,
                    codec_ != compression::codec::identity
                        ? fmt::format("Content-Encoding: {}\r\n", compression::name(codec_))
                        : std::string(),
                    body.size());
                head += body.substr(0, body.size() / 2);
                run([&](auto& stream,
                        auto done) { asio::async_write(stream, asio::buffer(head), done); },
                    ec);
                close();
                return {0, "connection dropped mid-request (fault)"};
            }
            run([&](auto& stream, auto done) { http::async_write(stream, req, done); }, ec);
            if (ec) {
                close();
                return {0, network_error(at, ec)};
            }
            if (requests == 1 && mode == send_mode::abandon) {
                // The request is with the receiver; the client stops waiting for its answer.
                close();
                return {0, network_error(at, asio::error::timed_out) + " (fault)"};
            }
            http::response<http::string_body> res;
            run([&](auto& stream, auto done) { http::async_read(stream, buffer_, res, done); }, ec);
            if (ec) {
                close();
                return {0, network_error(at, ec)};
            }
            if (!res.keep_alive()) {
                close();
            }
            last_used_ = std::chrono::steady_clock::now();
            const int status = static_cast<int>(res.result_int());
            const auto location = res.find(http::field::location);
            const bool redirect =
                status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
            if (redirect && location != res.end() && !location->value().empty()) {
                const std::string_view to(location->value().data(), location->value().size());
                if (requests == 10) {
                    // Go's error names the Location as sent.
                    return {0, fmt::format("Post \"{}\": stopped after 10 redirects", to)};
                }
                // Go sets the request it followed as the Referer, unless https goes to http.
                hop next = follow(at, to, status);
                referer = at.to.tls && !next.to.tls ? std::string() : at.url();
                at = std::move(next);
                continue;
            }
            // The sink's error text: the status line, then the body ("400 Bad Request: ...").
            return {status,
                    status >= 200 && status < 300
                        ? std::string()
                        : fmt::format("{} {}: {}", status,
                                      std::string_view(res.reason().data(), res.reason().size()),
                                      res.body())};
        }
    }

    void cancel() override {
        const std::lock_guard<std::mutex> lock(exchange_mutex_);
        cancelled_ = true;
        if (!in_exchange_) {
            return;  // the next post() sees cancelled_ before it sends anything
        }
        // Runs on the worker's thread, inside its io_context; a no-op once that exchange ended.
        asio::post(io_, [this, n = exchange_] {
            if (n == exchange_) {
                shut_socket();
            }
        });
    }

    std::optional<std::chrono::steady_clock::time_point> close_if_idle(
        std::chrono::steady_clock::time_point now) override {
        if (!connected_) {
            return std::nullopt;
        }
        if (now - last_used_ >= idle_timeout_) {
            close();
            return std::nullopt;
        }
        return last_used_ + idle_timeout_;
    }

    ~https_transport() override { close(); }

private:
    // Whether Go keeps the Authorization header for a request to `host`: the sink URI's host
    // or a subdomain of it.
    bool same_domain(std::string host) const {
        std::string sink = uri_->host;
        for (std::string* s : {&host, &sink}) {
            std::transform(s->begin(), s->end(), s->begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        }
        return host == sink || (host.size() > sink.size() && host.ends_with(sink) &&
                                host[host.size() - sink.size() - 1] == '.');
    }

    // Go's wording for a failed exchange: Post "https://host:port/path": <what happened> (the
    // URL of the request that failed, a redirect's too; the method of the first).
    std::string network_error(const hop& at, const error_code& ec) const {
        return fmt::format("Post \"{}\": {}", at.url(),
                           ec == asio::error::timed_out
                               ? "context deadline exceeded (Client.Timeout exceeded while "
                                 "awaiting headers)"
                           : ec == asio::error::operation_aborted ? "context canceled"
                                                                  : ec.message());
    }

    // Starts one asynchronous operation and runs it to completion, the exchange's deadline
    // (webhook_client_timeout covers the whole exchange, as Go's Client.Timeout does; none
    // when it is unset) or cancel().
    template <typename Start>
    void wait_for(Start&& start, error_code& ec) {
        if (is_cancelled()) {
            ec = asio::error::operation_aborted;
            return;
        }
        bool done = false;
        start([&](error_code e, auto&&...) {
            ec = e;
            done = true;
        });
        io_.restart();
        if (timeout_.count() > 0) {
            io_.run_until(deadline_);
        } else {
            while (!done && io_.run_one() > 0) {
            }
        }
        if (!done) {
            close();
            io_.restart();
            io_.run();
            ec = asio::error::timed_out;
        }
        if (ec && is_cancelled()) {
            ec = asio::error::operation_aborted;
        }
    }

    void begin_exchange() {
        const std::lock_guard<std::mutex> lock(exchange_mutex_);
        ++exchange_;
        in_exchange_ = true;
        deadline_ = std::chrono::steady_clock::now() + timeout_;
    }

    void end_exchange() {
        {
            const std::lock_guard<std::mutex> lock(exchange_mutex_);
            in_exchange_ = false;
            ++exchange_;  // a handler queued for the exchange just ended now does nothing
        }
        // A cancel() that raced with the end left a handler: it sees a finished exchange.
        io_.restart();
        io_.poll();
    }

    bool is_cancelled() {
        const std::lock_guard<std::mutex> lock(exchange_mutex_);
        return cancelled_;
    }

    // Ends the operations under way; close() then tidies up on the worker's side.
    void shut_socket() {
        error_code ignored;
        if (tls_stream_) {
            beast::get_lowest_layer(*tls_stream_).socket().close(ignored);
        }
        if (plain_) {
            plain_->socket().close(ignored);
        }
    }

    // The same on the plain or TLS stream.
    template <typename Start>
    void run(Start&& start, error_code& ec) {
        wait_for(
            [&](auto handler) {
                if (tls_stream_) {
                    start(*tls_stream_, handler);
                } else {
                    start(*plain_, handler);
                }
            },
            ec);
    }

    bool connect(const origin& to, error_code& ec) {
        tcp::resolver resolver(io_);
        auto endpoints = resolver.resolve(to.host, to.port, ec);
        if (ec) {
            return false;
        }
        if (to.tls) {
            tls_stream_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(io_, *tls_);
            // SNI (SSL_set_tlsext_host_name is a macro with a C cast).
            SSL_ctrl(tls_stream_->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME,
                     TLSEXT_NAMETYPE_host_name, const_cast<char*>(to.host.c_str()));
            if (!uri_->query.insecure_tls_skip_verify) {
                tls_stream_->set_verify_callback(ssl::host_name_verification(to.host));
            }
        } else {
            plain_ = std::make_unique<beast::tcp_stream>(io_);
        }
        auto& lowest = tls_stream_ ? beast::get_lowest_layer(*tls_stream_) : *plain_;
        wait_for([&](auto handler) { lowest.async_connect(endpoints, handler); }, ec);
        if (!ec) {
            // As CockroachDB's Go client: every TCP connection has Nagle's algorithm off.
            error_code ignored;
            lowest.socket().set_option(tcp::no_delay(true), ignored);
        }
        if (!ec && tls_stream_) {
            wait_for(
                [&](auto handler) {
                    tls_stream_->async_handshake(ssl::stream_base::client, handler);
                },
                ec);
        }
        if (ec) {
            close();
            return false;
        }
        connected_ = true;
        connected_to_ = to;
        last_used_ = std::chrono::steady_clock::now();
        return true;
    }

    void close() {
        shut_socket();
        connected_ = false;
        buffer_.clear();
        io_.restart();
        io_.poll();
        tls_stream_.reset();
        plain_.reset();
    }

    std::shared_ptr<const parsed_uri> uri_;
    std::shared_ptr<ssl::context> tls_;
    std::string authorization_;
    std::chrono::nanoseconds timeout_;
    std::chrono::nanoseconds idle_timeout_;
    compression::codec codec_;
    asio::io_context io_;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls_stream_;
    std::unique_ptr<beast::tcp_stream> plain_;
    beast::flat_buffer buffer_;
    bool connected_ = false;
    origin connected_to_;                              // while connected_
    std::chrono::steady_clock::time_point last_used_;  // the connection's last exchange ended
    std::chrono::steady_clock::time_point deadline_;   // of the exchange under way
    std::mutex exchange_mutex_;                        // guards the three below
    uint64_t exchange_ = 0;
    bool in_exchange_ = false;
    bool cancelled_ = false;  // for good
};

}  // namespace

result<transport_factory> make_https_transport(const endpoint_options& options) {
    auto uri = parse_uri(options.sink_uri);
    if (!uri) {
        return std::move(uri).error();
    }
    auto shared = std::make_shared<const parsed_uri>(std::move(uri).value());
    auto tls = std::make_shared<ssl::context>(ssl::context::tls_client);
    try {
        tls->set_options(ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1);
        tls->set_default_verify_paths();
        if (!shared->query.ca_cert.empty()) {
            // Added to the system roots, as the sink does.
            tls->add_certificate_authority(asio::buffer(shared->query.ca_cert));
        }
        if (!shared->query.client_cert.empty()) {
            tls->use_certificate_chain(asio::buffer(shared->query.client_cert));
            tls->use_private_key(asio::buffer(shared->query.client_key), ssl::context::pem);
        }
        tls->set_verify_mode(shared->query.insecure_tls_skip_verify ? ssl::verify_none
                                                                    : ssl::verify_peer);
    } catch (const boost::system::system_error& e) {
        return error{errc::tls_error, fmt::format("sink TLS settings: {}", e.code().message())};
    }
    const std::string authorization = options.authorization;
    const auto timeout = options.timeout;
    const auto idle_timeout = options.idle_timeout;
    const auto codec = options.compression;
    return transport_factory(
        [shared, tls, authorization, timeout, idle_timeout, codec]() -> std::unique_ptr<transport> {
            return std::make_unique<https_transport>(shared, tls, authorization, timeout,
                                                     idle_timeout, codec);
        });
}

}  // namespace molt::emulator
