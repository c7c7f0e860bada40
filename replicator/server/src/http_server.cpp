// The only translation unit with Beast and Asio (and their SSL parts): keep it that way, it is
// the slowest file to compile.
#include "molt/replicator/server/http_server.hpp"

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
    bool busy = false;  ///< a request is being read, handled or answered
    std::function<void()> close;
};

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

http_response handle_on_worker(router& routes, worker_job& job) {
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
auto run_on_worker(asio::thread_pool& pool, router& routes, worker_job* job, Token&& token) {
    return asio::async_initiate<Token, void()>(
        [&pool, &routes](auto handler, worker_job* j) {
            auto home = asio::get_associated_executor(handler);
            asio::post(
                pool, [handler = std::move(handler), home = std::move(home), j, &routes]() mutable {
                    j->response = handle_on_worker(routes, *j);
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

}  // namespace

struct http_server::impl {
    impl(http_server_config c, router& r)
        : cfg(std::move(c)),
          routes(r),
          io(static_cast<int>(cfg.io_threads)),
          workers(cfg.worker_threads),
          guard(io.get_executor()) {}

    template <typename Stream>
    asio::awaitable<void> serve(Stream& stream, connection_state& state, bool diagnostics,
                                bool verified, const std::string& remote);
    asio::awaitable<void> connection(tcp::socket socket, bool diagnostics);
    asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, bool diagnostics);

    http_server_config cfg;
    router& routes;
    asio::io_context io;
    asio::thread_pool workers;
    asio::executor_work_guard<asio::io_context::executor_type> guard;
    std::optional<ssl::context> tls;
    std::optional<tcp::acceptor> main_acceptor;
    std::optional<tcp::acceptor> diagnostics_acceptor;
    std::vector<std::thread> threads;
    std::atomic<bool> stopping{false};
    std::mutex mutex;
    std::set<std::shared_ptr<connection_state>> connections;
};

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
        beast::get_lowest_layer(stream).expires_after(cfg.idle_timeout);
        co_await http::async_read_header(stream, buffer, parser, awaitable_with(ec));
        if (ec && ec != http::error::body_limit) {
            co_return;
        }
        state.busy = true;
        if (!ec) {
            // A Content-Length over the limit is reported with the headers; a chunked body only
            // once it grows past the limit.
            beast::get_lowest_layer(stream).expires_after(cfg.read_timeout);
            co_await http::async_read(stream, buffer, parser, awaitable_with(ec));
        }
        http_response response;
        bool keep_alive = false;
        unsigned version = 11;
        if (ec == http::error::body_limit) {
            response.status = 413;
            response.body = fmt::format(
                "request body exceeds the limit of {} bytes (--maxBodySize)\n", cfg.max_body_bytes);
            log::warn().str("remote", remote).msg("request body over the limit; refused with 413");
        } else if (ec) {
            co_return;
        } else {
            auto req = parser.release();
            keep_alive = req.keep_alive();
            version = req.version();
            worker_job job;
            job.request = http_request{std::string(req.method_string()), std::string(req.target()),
                                       std::move(req.body()), verified, remote};
            job.diagnostics = diagnostics;
            co_await run_on_worker(workers, routes, &job, asio::use_awaitable);
            response = std::move(job.response);
        }
        keep_alive = keep_alive && !stopping;
        auto res = to_beast(response, version, keep_alive);
        beast::get_lowest_layer(stream).expires_after(cfg.read_timeout);
        co_await http::async_write(stream, res, awaitable_with(ec));
        state.busy = false;
        if (!ec && response.status == 413) {
            // The client may still be sending the body we refused. Closing with unread data
            // makes the kernel reset the connection, and the client would never see the 413:
            // read and discard what arrives, for a short while.
            std::array<char, 16 * 1024> scratch{};
            size_t drained = 0;
            beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
            while (drained < 64 * 1024 * 1024) {
                const size_t n =
                    co_await stream.async_read_some(asio::buffer(scratch), awaitable_with(ec));
                if (ec) {
                    break;
                }
                drained += n;
            }
            co_return;
        }
        if (ec || !keep_alive) {
            co_return;
        }
    }
}

asio::awaitable<void> http_server::impl::connection(tcp::socket socket, bool diagnostics) {
    auto state = std::make_shared<connection_state>();
    state->executor = socket.get_executor();
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

    if (tls && !diagnostics) {
        beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), *tls);
        const unregister registration{*this, state};
        state->close = [&stream] {
            error_code ignored;
            beast::get_lowest_layer(stream).socket().close(ignored);
        };
        beast::get_lowest_layer(stream).expires_after(cfg.read_timeout);
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
        auto executor = socket.get_executor();
        asio::co_spawn(executor, connection(std::move(socket), diagnostics), asio::detached);
    }
}

http_server::http_server(http_server_config config, router& routes)
    : impl_(std::make_unique<impl>(std::move(config), routes)) {}

http_server::~http_server() {
    if (!impl_->threads.empty()) {
        shutdown(std::chrono::seconds(0));
    }
}

result<void> http_server::start() {
    impl& s = *impl_;
    if (s.cfg.tls) {
        try {
            s.tls.emplace(ssl::context::tls_server);
            s.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                               ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                               ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
            s.tls->use_certificate_chain(asio::buffer(s.cfg.tls->certificate_pem));
            s.tls->use_private_key(asio::buffer(s.cfg.tls->private_key_pem), ssl::context::pem);
            if (!s.cfg.tls->client_ca_file.empty()) {
                s.tls->load_verify_file(s.cfg.tls->client_ca_file);
                // Verified when presented; requests without one are refused by the router (401),
                // while /_/healthz stays reachable.
                s.tls->set_verify_mode(ssl::verify_peer);
            }
        } catch (const boost::system::system_error& e) {
            return error{errc::tls_error, fmt::format("cannot set up TLS: {}", e.code().message())};
        }
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
    }
    return clean;
}

}  // namespace molt::replicator
