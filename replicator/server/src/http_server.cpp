// The only translation unit with Beast and Asio (and their SSL parts): keep it that way, it is
// the slowest file to compile.
#include "molt/replicator/server/http_server.hpp"

#include <unistd.h>

#include <array>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fmt/format.h>
#include <openssl/ssl.h>

#include "molt/common/log.hpp"

namespace molt::replicator {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

inline auto awaitable_with(error_code& ec) {
    return asio::redirect_error(asio::use_awaitable, ec);
}

// Per connection, shared with shutdown(): close() is set and cleared on the connection's strand.
struct connection_state {
    asio::any_io_executor executor;
    bool busy = false;        ///< a request is being read, handled or answered
    bool over_limit = false;  ///< past the connection limit: answer one 503, then close
    std::function<void()> close;
};

// A bounded number of things at once (connections, admitted requests), shown in a gauge.
class admission {
public:
    admission(size_t limit, metrics::gauge& gauge) : limit_(limit), gauge_(gauge) {}
    bool try_acquire() {
        size_t now = in_use_.load();
        do {
            if (now >= limit_) {
                return false;
            }
        } while (!in_use_.compare_exchange_weak(now, now + 1));
        gauge_.add(1);
        return true;
    }
    void release() {
        in_use_.fetch_sub(1);
        gauge_.add(-1);
    }

private:
    const size_t limit_;
    metrics::gauge& gauge_;
    std::atomic<size_t> in_use_{0};
};

// One acquired unit of an admission, released when it goes (a named local in a coroutine).
class admission_slot {
public:
    admission_slot() = default;
    explicit admission_slot(admission& held) : held_(&held) {}
    admission_slot(const admission_slot&) = delete;
    admission_slot& operator=(const admission_slot&) = delete;
    ~admission_slot() {
        if (held_ != nullptr) {
            held_->release();
        }
    }
    bool acquire(admission& from) {
        if (held_ == nullptr && from.try_acquire()) {
            held_ = &from;
        }
        return held_ != nullptr;
    }

private:
    admission* held_ = nullptr;
};

// How much of a body the server did not read it swallows after answering, so the client reads
// the answer instead of a connection reset: generous for authenticated clients (413, 503),
// small for anyone else.
struct drain_budget {
    size_t bytes = 0;
    std::chrono::nanoseconds within{0};
};
constexpr drain_budget trusted_drain{64 * 1024 * 1024, std::chrono::seconds(2)};
constexpr drain_budget untrusted_drain{1024 * 1024, std::chrono::seconds(1)};

// Time for a connection past the limit to complete its TLS handshake and send its headers.
constexpr std::chrono::seconds over_limit_timeout{2};
// Connections past the limit that are answered a 503 at once; beyond, they are closed at once.
constexpr size_t max_over_limit_answers = 16;
// Readiness checks waiting or running at once; beyond, 503.
constexpr size_t max_readiness_checks = 16;
// Refusals for lack of room are logged at most this often (the metric counts every one).
constexpr std::chrono::seconds refusal_log_period{10};

std::string endpoint_text(const tcp::endpoint& ep) {
    const auto address = ep.address();
    if (address.is_v6()) {
        return fmt::format("[{}]:{}", address.to_string(), ep.port());
    }
    return fmt::format("{}:{}", address.to_string(), ep.port());
}

net_address to_net_address(const tcp::endpoint& ep) {
    return net_address{ep.address().to_string(), ep.port()};
}

// One request handed to a worker thread. It lives in the coroutine frame; only a pointer
// crosses the co_await. (GCC 12 copies non-trivial temporaries of a co_await expression byte by
// byte, which breaks std::string: keep them out of it.)
struct worker_job {
    http_request request;
    http_response response;
    bool diagnostics = false;
};

http_response handle(router& routes, worker_job& job) {
    try {
        return job.diagnostics ? routes.route_diagnostics(job.request)
                               : routes.route(std::move(job.request));
    } catch (const std::exception& e) {
        log::error().err(e.what()).msg("fatal error in request handler");
        http_response failed;
        failed.status = 500;
        failed.body = "internal error\n";
        return failed;
    }
}

// Runs the job on the pool (the router blocks on the database) and resumes the awaiting
// coroutine on its own executor.
template <typename Token>
auto run_on(asio::thread_pool& pool, router& routes, worker_job* job, Token&& token) {
    return asio::async_initiate<Token, void()>(
        [&pool, &routes](auto handler, worker_job* j) {
            auto home = asio::get_associated_executor(handler);
            asio::post(
                pool, [handler = std::move(handler), home = std::move(home), j, &routes]() mutable {
                    j->response = handle(routes, *j);
                    asio::post(home, std::move(handler));
                });
        },
        token, job);
}

http::response<http::string_body> to_beast(const http_response& r, unsigned version,
                                           bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(r.status), version};
    res.set(http::field::server, "replicator");
    res.set(http::field::content_type, r.content_type);
    if (!r.allow.empty()) {
        res.set(http::field::allow, r.allow);
    }
    if (r.retry_after != 0) {
        res.set(http::field::retry_after, std::to_string(r.retry_after));
    }
    res.keep_alive(keep_alive);
    res.body() = r.body;
    res.prepare_payload();
    return res;
}

result<tcp::acceptor> listen_on(asio::io_context& io, const net_address& where) {
    error_code ec;
    tcp::endpoint endpoint;
    if (where.host.empty()) {
        endpoint = tcp::endpoint(tcp::v6(), where.port);
    } else {
        tcp::resolver resolver(io);
        auto results = resolver.resolve(where.host, std::to_string(where.port), ec);
        if (ec || results.empty()) {
            return error{errc::io_error, fmt::format("cannot resolve \"{}\": {}", where.host,
                                                     ec ? ec.message() : "no address")};
        }
        endpoint = results.begin()->endpoint();
    }
    tcp::acceptor acceptor(io);
    acceptor.open(endpoint.protocol(), ec);
    if (ec && where.host.empty()) {
        // No IPv6 here: every IPv4 interface instead.
        endpoint = tcp::endpoint(tcp::v4(), where.port);
        ec.clear();
        acceptor.open(endpoint.protocol(), ec);
    }
    if (!ec && endpoint.protocol() == tcp::v6() && where.host.empty()) {
        acceptor.set_option(asio::ip::v6_only(false), ec);
    }
    if (!ec) {
        acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
        acceptor.bind(endpoint, ec);
    }
    if (!ec) {
        acceptor.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        return error{errc::io_error,
                     fmt::format("cannot listen on {}: {}", where.to_string(), ec.message())};
    }
    return acceptor;
}

// The 413 for a body over --maxBodySize (found with the headers, or while reading a chunked body).
http_response body_too_large(size_t limit, const std::string& remote) {
    log::warn().str("remote", remote).msg("request body over the limit; refused with 413");
    http_response r;
    r.status = 413;
    r.body = fmt::format("request body exceeds the limit of {} bytes (--maxBodySize)\n", limit);
    return r;
}

// Reads and discards what the client still sends of a body that was not read, within `budget`.
template <typename Stream>
asio::awaitable<void> discard_unread(Stream& stream, drain_budget budget) {
    std::array<char, 16 * 1024> scratch{};
    size_t drained = 0;
    error_code ec;
    beast::get_lowest_layer(stream).expires_after(budget.within);
    while (drained < budget.bytes) {
        const size_t n = co_await stream.async_read_some(asio::buffer(scratch), awaitable_with(ec));
        if (ec) {
            break;
        }
        drained += n;
    }
}

}  // namespace

struct http_server::impl {
    impl(http_server_config c, router& r, metrics::registry& m)
        : cfg(std::move(c)),
          routes(r),
          io(static_cast<int>(cfg.io_threads)),
          workers(cfg.worker_threads),
          probes(cfg.probe_threads),
          guard(io.get_executor()),
          refusals(m.counter("http_overload_refusals_total",
                             "Connections and requests refused for lack of room (503 or closed)",
                             {"reason"})),
          main_connections(
              cfg.max_connections,
              m.gauge("http_connections_open", "Open connections", {"port"}).with({"main"})),
          diagnostics_connections(
              cfg.diagnostics_max_connections,
              m.gauge("http_connections_open", "Open connections", {"port"}).with({"diagnostics"})),
          over_limit_connections(max_over_limit_answers,
                                 m.gauge("http_connections_over_limit",
                                         "Connections past the limit being answered 503")
                                     .get()),
          worker_slots(cfg.worker_threads + cfg.max_queued,
                       m.gauge("http_requests_admitted",
                               "Webhook requests being read, waiting for a worker or handled")
                           .get()),
          readiness_slots(
              max_readiness_checks,
              m.gauge("http_readiness_checks", "Readiness checks waiting or running").get()) {}

    template <typename Stream>
    asio::awaitable<void> serve(Stream& stream, connection_state& state, bool diagnostics,
                                bool verified, const std::string& remote);
    asio::awaitable<void> connection(tcp::socket socket, bool diagnostics, bool over_limit);
    asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, bool diagnostics);
    void refused(std::string_view reason, std::string_view what);

    http_server_config cfg;
    router& routes;
    asio::io_context io;
    asio::thread_pool workers;
    asio::thread_pool probes;
    asio::executor_work_guard<asio::io_context::executor_type> guard;
    /// The TLS context of new connections (null: plain HTTP). reload_tls() swaps it; each
    /// connection holds the one it started with.
    std::shared_ptr<ssl::context> tls;
    std::mutex tls_mutex;
    std::optional<tcp::acceptor> main_acceptor;
    std::optional<tcp::acceptor> diagnostics_acceptor;
    std::vector<std::thread> threads;
    std::atomic<bool> stopping{false};
    std::mutex mutex;
    std::set<std::shared_ptr<connection_state>> connections;
    metrics::family<metrics::counter>& refusals;
    admission main_connections;
    admission diagnostics_connections;
    admission over_limit_connections;
    admission worker_slots;
    admission readiness_slots;
    std::atomic<int64_t> last_refusal_log{0};  ///< steady clock, nanoseconds
};

void http_server::impl::refused(std::string_view reason, std::string_view what) {
    auto& counter = refusals.with({std::string(reason)});
    counter.add();
    const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
    int64_t last = last_refusal_log.load();
    const int64_t period = std::chrono::nanoseconds(refusal_log_period).count();
    if ((last == 0 || now - last >= period) &&
        last_refusal_log.compare_exchange_strong(last, now)) {
        log::warn()
            .str("reason", std::string(reason))
            .unum("refused_so_far", counter.value())
            .msg(fmt::format("{}; refused (logged at most every {}s, counted in "
                             "http_overload_refusals_total)",
                             what, refusal_log_period.count()));
    }
}

template <typename Stream>
asio::awaitable<void> http_server::impl::serve(Stream& stream, connection_state& state,
                                               bool diagnostics, bool verified,
                                               const std::string& remote) {
    beast::flat_buffer buffer;
    for (;;) {
        if (stopping) {
            co_return;
        }
        http::request_parser<http::string_body> parser;
        parser.header_limit(64 * 1024);
        parser.body_limit(cfg.max_body_bytes);
        error_code ec;
        // Waiting for the next request of a keep-alive connection: the idle timeout.
        beast::get_lowest_layer(stream).expires_after(
            state.over_limit ? std::chrono::nanoseconds(over_limit_timeout) : cfg.idle_timeout);
        co_await http::async_read_header(stream, buffer, parser, awaitable_with(ec));
        if (ec && ec != http::error::body_limit) {
            co_return;
        }
        state.busy = true;
        // A Content-Length over the limit is reported with the headers; a chunked body only
        // once it grows past the limit.
        const bool over_body_limit = ec == http::error::body_limit;
        const auto& head = parser.get();
        const unsigned version = head.version();
        bool keep_alive = head.keep_alive();
        worker_job job;
        job.request = http_request{std::string(head.method_string()), std::string(head.target()),
                                   std::string(), verified, remote};
        job.request.arrived = std::chrono::steady_clock::now();
        // Several Content-Encoding fields are one list ("gzip" + "br" is "gzip, br").
        for (auto [f, end] = head.equal_range(http::field::content_encoding); f != end; ++f) {
            job.request.content_encoding +=
                (job.request.content_encoding.empty() ? "" : ", ") + std::string(f->value());
        }
        if (const auto auth = head.find(http::field::authorization); auth != head.end()) {
            job.request.authorization = std::string(auth->value());
        }
        job.diagnostics = diagnostics;
        // Set when the answer goes out before the body is read: the connection closes after it.
        std::optional<drain_budget> unread;
        admission_slot slot;
        const request_lane lane = routes.lane(job.request, diagnostics);
        if (state.over_limit) {
            job.response = routes.overloaded(
                job.request, diagnostics ? "too many connections to the diagnostics port; retry"
                                         : "too many connections (--maxConnections); retry");
            unread = untrusted_drain;
        } else if (lane != request_lane::webhook) {
            if (lane == request_lane::local) {
                job.response = handle(routes, job);
            } else if (slot.acquire(readiness_slots)) {
                co_await run_on(probes, routes, &job, asio::use_awaitable);
            } else {
                job.response = routes.overloaded(job.request, "too many readiness checks; retry");
            }
            if (!parser.is_done()) {
                unread = untrusted_drain;  // diagnostics take no body
            }
        } else if (auto refusal = routes.screen(job.request)) {
            // A 415 is for an authenticated client: it may send its body and read the answer.
            unread = refusal->status == 415 ? trusted_drain : untrusted_drain;
            job.response = std::move(*refusal);
        } else if (over_body_limit) {
            job.response = body_too_large(cfg.max_body_bytes, remote);
            unread = trusted_drain;
        } else if (!slot.acquire(worker_slots)) {
            refused("queue_full", "every worker is busy and the queue is full");
            job.response = routes.overloaded(
                job.request,
                "the replicator is busy: every worker is busy and --maxQueuedRequests requests "
                "wait; retry");
            unread = trusted_drain;
        } else {
            if (beast::iequals(head[http::field::expect], "100-continue")) {
                http::response<http::empty_body> go_on{http::status::continue_, version};
                co_await http::async_write(stream, go_on, awaitable_with(ec));
            }
            if (!ec && !parser.is_done()) {
                beast::get_lowest_layer(stream).expires_after(cfg.read_timeout);
                co_await http::async_read(stream, buffer, parser, awaitable_with(ec));
            }
            if (ec == http::error::body_limit) {
                job.response = body_too_large(cfg.max_body_bytes, remote);
                unread = trusted_drain;
            } else if (ec) {
                co_return;
            } else {
                job.request.body = std::move(parser.get().body());
                // The worker asks whether the client left (router.cpp, peer_closed) through a
                // duplicate of the socket, closed once it is done: the connection may be closed
                // meanwhile (a shutdown past its grace period) and its number reused. (An int,
                // not a std::function made here: GCC 12 miscompiles one made in a coroutine.)
                const int watched = ::dup(beast::get_lowest_layer(stream).socket().native_handle());
                job.request.socket = watched;
                co_await run_on(workers, routes, &job, asio::use_awaitable);
                if (watched >= 0) {
                    ::close(watched);
                }
            }
        }
        keep_alive = keep_alive && !stopping && !unread;
        auto res = to_beast(job.response, version, keep_alive);
        beast::get_lowest_layer(stream).expires_after(cfg.read_timeout);
        co_await http::async_write(stream, res, awaitable_with(ec));
        state.busy = false;
        if (!ec && unread && !parser.is_done()) {
            // The client may still be sending the body we did not read. Closing with unread
            // data makes the kernel reset the connection, and the client would never see the
            // answer: read and discard what arrives, for a short while.
            co_await discard_unread(stream, *unread);
        }
        if (ec || !keep_alive) {
            co_return;
        }
    }
}

asio::awaitable<void> http_server::impl::connection(tcp::socket socket, bool diagnostics,
                                                    bool over_limit) {
    // The connection's place (or its place among those past the limit), taken by accept_loop.
    const admission_slot place(over_limit    ? over_limit_connections
                               : diagnostics ? diagnostics_connections
                                             : main_connections);
    auto state = std::make_shared<connection_state>();
    state->executor = socket.get_executor();
    state->over_limit = over_limit;
    {
        const std::lock_guard<std::mutex> lock(mutex);
        connections.insert(state);
    }
    error_code ec;
    const std::string remote = endpoint_text(socket.remote_endpoint(ec));
    beast::tcp_stream tcp_stream(std::move(socket));
    // Unregisters on every exit, on this strand, before the stream is destroyed.
    struct unregister {
        impl& self;
        std::shared_ptr<connection_state> state;
        ~unregister() {
            state->close = nullptr;
            const std::lock_guard<std::mutex> lock(self.mutex);
            self.connections.erase(state);
        }
    };

    std::shared_ptr<ssl::context> context;
    if (!diagnostics) {
        const std::lock_guard<std::mutex> lock(tls_mutex);
        context = tls;
    }
    if (context) {
        beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), *context);
        const unregister registration{*this, state};
        state->close = [&stream] {
            error_code ignored;
            beast::get_lowest_layer(stream).socket().close(ignored);
        };
        beast::get_lowest_layer(stream).expires_after(
            over_limit ? std::chrono::nanoseconds(over_limit_timeout) : cfg.read_timeout);
        co_await stream.async_handshake(ssl::stream_base::server, awaitable_with(ec));
        if (ec) {
            log::debug().str("remote", remote).err(ec.message()).msg("TLS handshake failed");
            co_return;
        }
        bool verified = false;
        if (X509* peer = SSL_get1_peer_certificate(stream.native_handle()); peer != nullptr) {
            verified = SSL_get_verify_result(stream.native_handle()) == X509_V_OK;
            X509_free(peer);
        }
        co_await serve(stream, *state, false, verified, remote);
        // Close politely (close_notify), but never wait long for the peer.
        beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(1));
        co_await stream.async_shutdown(awaitable_with(ec));
    } else {
        const unregister registration{*this, state};
        state->close = [&tcp_stream] {
            error_code ignored;
            tcp_stream.socket().close(ignored);
        };
        co_await serve(tcp_stream, *state, diagnostics, false, remote);
        tcp_stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    }
}

asio::awaitable<void> http_server::impl::accept_loop(tcp::acceptor& acceptor, bool diagnostics) {
    for (;;) {
        tcp::socket socket(asio::make_strand(io));
        error_code ec;
        co_await acceptor.async_accept(socket, awaitable_with(ec));
        if (ec) {
            if (stopping || ec == asio::error::operation_aborted) {
                co_return;
            }
            log::warn().err(ec.message()).msg("accept failed");
            asio::steady_timer pause(io, std::chrono::milliseconds(50));
            co_await pause.async_wait(awaitable_with(ec));
            continue;
        }
        const bool over_limit =
            !(diagnostics ? diagnostics_connections : main_connections).try_acquire();
        if (over_limit) {
            refused("max_connections",
                    diagnostics ? "too many connections to the diagnostics port"
                                : fmt::format("more than {} connections (--maxConnections)",
                                              cfg.max_connections));
            if (!over_limit_connections.try_acquire()) {
                socket.close(ec);
                continue;
            }
        }
        // Nagle's algorithm off (as Go's net/http): a response written in two parts must not wait
        // for the client's delayed ACK of the first.
        socket.set_option(tcp::no_delay(true), ec);
        auto executor = socket.get_executor();
        asio::co_spawn(executor, connection(std::move(socket), diagnostics, over_limit),
                       asio::detached);
    }
}

http_server::http_server(http_server_config config, router& routes, metrics::registry& metrics)
    : impl_(std::make_unique<impl>(std::move(config), routes, metrics)) {}

http_server::~http_server() {
    if (!impl_->threads.empty()) {
        shutdown(std::chrono::seconds(0));
    }
}

namespace {

// A server context for the material: TLS 1.2 and later; with a client CA, client certificates
// are verified when presented, and with `require_client_certificate` demanded in the handshake.
result<std::shared_ptr<ssl::context>> make_tls_context(const tls_material& material,
                                                       bool require_client_certificate) {
    try {
        auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
        context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                             ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                             ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
        context->use_certificate_chain(asio::buffer(material.certificate_pem));
        context->use_private_key(asio::buffer(material.private_key_pem), ssl::context::pem);
        if (!material.client_ca_file.empty()) {
            context->load_verify_file(material.client_ca_file);
            // Verified when presented. Without one: refused in the handshake when this port
            // serves only changefeeds; otherwise (it also serves /_/healthz and /_/varz) a
            // webhook request is refused at its headers (401), its body unread.
            context->set_verify_mode(require_client_certificate
                                         ? ssl::verify_peer | ssl::verify_fail_if_no_peer_cert
                                         : ssl::verify_peer);
        }
        return context;
    } catch (const boost::system::system_error& e) {
        return error{errc::tls_error, fmt::format("cannot set up TLS: {}", e.code().message())};
    }
}

}  // namespace

result<void> http_server::reload_tls(const tls_material& material) {
    impl& s = *impl_;
    if (!s.cfg.tls) {
        return error{errc::invalid_argument, "the server runs without TLS"};
    }
    auto context = make_tls_context(material, s.cfg.require_client_certificate);
    if (!context) {
        return std::move(context).error();
    }
    const std::lock_guard<std::mutex> lock(s.tls_mutex);
    s.tls = std::move(context).value();
    return ok();
}

result<void> http_server::start() {
    impl& s = *impl_;
    if (s.cfg.tls) {
        auto context = make_tls_context(*s.cfg.tls, s.cfg.require_client_certificate);
        if (!context) {
            return std::move(context).error();
        }
        s.tls = std::move(context).value();
    }
    auto main = listen_on(s.io, s.cfg.bind);
    if (!main) {
        return std::move(main).error();
    }
    s.main_acceptor.emplace(std::move(main).value());
    if (s.cfg.diagnostics_bind) {
        auto diag = listen_on(s.io, *s.cfg.diagnostics_bind);
        if (!diag) {
            return std::move(diag).error();
        }
        s.diagnostics_acceptor.emplace(std::move(diag).value());
        asio::co_spawn(s.io, s.accept_loop(*s.diagnostics_acceptor, true), asio::detached);
    }
    asio::co_spawn(s.io, s.accept_loop(*s.main_acceptor, false), asio::detached);
    for (size_t i = 0; i < s.cfg.io_threads; ++i) {
        s.threads.emplace_back([&s] { s.io.run(); });
    }
    return ok();
}

net_address http_server::bound_address() const {
    return to_net_address(impl_->main_acceptor->local_endpoint());
}

std::optional<net_address> http_server::bound_diagnostics_address() const {
    if (!impl_->diagnostics_acceptor) {
        return std::nullopt;
    }
    return to_net_address(impl_->diagnostics_acceptor->local_endpoint());
}

bool http_server::shutdown(std::chrono::nanoseconds grace) {
    impl& s = *impl_;
    if (s.threads.empty()) {
        return true;
    }
    s.stopping = true;
    asio::post(s.io, [&s] {
        error_code ignored;
        if (s.main_acceptor) {
            s.main_acceptor->close(ignored);
        }
        if (s.diagnostics_acceptor) {
            s.diagnostics_acceptor->close(ignored);
        }
    });
    const auto deadline = std::chrono::steady_clock::now() + grace;
    bool clean = false;
    for (;;) {
        std::vector<std::shared_ptr<connection_state>> open;
        {
            const std::lock_guard<std::mutex> lock(s.mutex);
            open.assign(s.connections.begin(), s.connections.end());
        }
        if (open.empty()) {
            clean = true;
            break;
        }
        const bool late = std::chrono::steady_clock::now() >= deadline;
        for (const auto& c : open) {
            // Idle connections close now; busy ones finish their request first.
            asio::post(c->executor, [c, late] {
                if (c->close && (late || !c->busy)) {
                    c->close();
                }
            });
        }
        if (late) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    s.guard.reset();
    s.io.stop();
    for (std::thread& t : s.threads) {
        t.join();
    }
    s.threads.clear();
    if (clean) {
        s.workers.join();
        s.probes.join();
    }
    return clean;
}

}  // namespace molt::replicator
