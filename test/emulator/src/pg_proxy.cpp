#include "molt/emulator/pg_proxy.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <iostream>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "molt/emulator/crdb_sql.hpp"
#include "molt/emulator/pgwire.hpp"

namespace molt::emulator {
namespace {

std::string ssl_errors() {
    std::string out;
    while (const unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        out += (out.empty() ? "" : "; ") + std::string(buf);
    }
    return out.empty() ? "unknown TLS error" : out;
}

// A TCP connection to host:port (first address that answers), or -1.
int dial(const std::string& host, uint16_t port) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) {
        return -1;
    }
    int fd = -1;
    for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
        fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd >= 0 && ::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            ::close(fd);
            fd = -1;
        }
    }
    ::freeaddrinfo(found);
    if (fd >= 0) {
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

bool write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0) {
            return false;
        }
        bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

// The client side: a socket, with TLS once the client asked for it.
struct client_stream {
    int fd = -1;
    SSL* ssl = nullptr;

    ~client_stream() {
        if (ssl != nullptr) {
            SSL_free(ssl);
        }
    }
    ssize_t read(char* buf, size_t size) const {
        if (ssl != nullptr) {
            const int n = SSL_read(ssl, buf, static_cast<int>(size));
            return n > 0 ? n : -1;
        }
        return ::recv(fd, buf, size, 0);
    }
    bool write(std::string_view bytes) const {
        if (ssl == nullptr) {
            return write_all(fd, bytes);
        }
        while (!bytes.empty()) {
            const int n = SSL_write(ssl, bytes.data(), static_cast<int>(bytes.size()));
            if (n <= 0) {
                return false;
            }
            bytes.remove_prefix(static_cast<size_t>(n));
        }
        return true;
    }
    [[nodiscard]] bool pending() const { return ssl != nullptr && SSL_pending(ssl) > 0; }
};

// The SQL of Query and Parse messages, rewritten; everything else as it came.
result<std::string> rewritten_frame(const pgwire::message& m, crdb::executor& session) {
    if (m.type == 'Q') {
        auto sql = pgwire::parse_query(m.body);
        if (!sql) {
            return std::move(sql).error();
        }
        std::string body = crdb::rewrite_query(*sql, session);
        body.push_back('\0');
        return pgwire::frame('Q', body);
    }
    if (m.type == 'P') {
        auto parse = pgwire::parse_parse(m.body);
        if (!parse) {
            return std::move(parse).error();
        }
        // name \0 query \0 parameter types
        const size_t rest = parse->statement.size() + 1 + parse->query.size() + 1;
        std::string body = parse->statement;
        body.push_back('\0');
        body += crdb::rewrite_statement(parse->query, session);
        body.push_back('\0');
        body.append(m.body, rest, std::string::npos);
        return pgwire::frame('P', body);
    }
    return pgwire::frame(m.type, m.body);
}

}  // namespace

// A client connection and its backend connection. The sockets stay open until the thread has
// been joined, so a shutdown() from stop() never reaches a reused descriptor.
struct pg_proxy::connection {
    int client = -1;
    std::atomic<int> backend{-1};
    std::atomic<bool> done{false};
    std::thread thread;

    ~connection() {
        if (thread.joinable()) {
            thread.join();
        }
        ::close(client);
        if (backend >= 0) {
            ::close(backend);
        }
    }
};

pg_proxy::pg_proxy(proxy_options options, cluster& c) : options_(std::move(options)), cluster_(c) {}

pg_proxy::~pg_proxy() {
    stop();
}

result<void> pg_proxy::start() {
    if (!options_.tls_certificate.empty()) {
        SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
        tls_ = std::shared_ptr<void>(ctx, [](void* p) { SSL_CTX_free(static_cast<SSL_CTX*>(p)); });
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        if (SSL_CTX_use_certificate_chain_file(ctx, options_.tls_certificate.c_str()) != 1) {
            return error{errc::tls_error,
                         fmt::format("--tls-cert {}: {}", options_.tls_certificate, ssl_errors())};
        }
        // The key's contents never reach a message, only its file name.
        if (SSL_CTX_use_PrivateKey_file(ctx, options_.tls_private_key.c_str(), SSL_FILETYPE_PEM) !=
                1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            ERR_clear_error();
            return error{errc::tls_error,
                         fmt::format("--tls-key {}: not a readable, unencrypted PEM key matching "
                                     "--tls-cert",
                                     options_.tls_private_key)};
        }
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    if (const int rc =
            ::getaddrinfo(options_.listen_host.empty() ? nullptr : options_.listen_host.c_str(),
                          std::to_string(options_.listen_port).c_str(), &hints, &found);
        rc != 0) {
        return error{errc::invalid_argument,
                     fmt::format("--listen {}: {}", options_.listen_host, gai_strerror(rc))};
    }
    listener_ = ::socket(found->ai_family, found->ai_socktype, found->ai_protocol);
    const int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const bool bound = listener_ >= 0 &&
                       ::bind(listener_, found->ai_addr, found->ai_addrlen) == 0 &&
                       ::listen(listener_, 128) == 0;
    const int err = errno;
    ::freeaddrinfo(found);
    if (!bound) {
        return error{errc::io_error, fmt::format("--listen {}:{}: {}", options_.listen_host,
                                                 options_.listen_port, std::strerror(err))};
    }
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
    return ok();
}

void pg_proxy::stop() {
    if (stopping_.exchange(true)) {
        return;
    }
    if (acceptor_.joinable()) {
        acceptor_.join();
    }
    if (listener_ >= 0) {
        ::close(listener_);
        listener_ = -1;
    }
    const std::lock_guard<std::mutex> lock(mutex_);
    for (auto& c : connections_) {
        ::shutdown(c->client, SHUT_RDWR);
        if (c->backend >= 0) {
            ::shutdown(c->backend, SHUT_RDWR);
        }
    }
    connections_.clear();  // joins, then closes
}

void pg_proxy::accept_loop() {
    while (!stopping_) {
        pollfd p{listener_, POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0) {
            continue;
        }
        const int fd = ::accept(listener_, nullptr, nullptr);
        if (fd < 0) {
            continue;
        }
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        const std::lock_guard<std::mutex> lock(mutex_);
        // Finished connections are reaped here.
        for (auto it = connections_.begin(); it != connections_.end();) {
            if ((*it)->done) {
                it = connections_.erase(it);
            } else {
                ++it;
            }
        }
        auto c = std::make_unique<connection>();
        c->client = fd;
        connection& ref = *c;
        connections_.push_back(std::move(c));
        ref.thread = std::thread([this, &ref] {
            serve(ref);
            ref.done = true;  // its sockets are closed once the thread is joined
        });
    }
}

void pg_proxy::serve(connection& conn) {
    client_stream client{conn.client, nullptr};
    pgwire::frame_reader reader(true);
    char buf[65536];
    auto next_frame = [&]() -> std::optional<pgwire::message> {
        for (;;) {
            auto m = reader.next();
            if (!m) {
                return std::nullopt;
            }
            if (*m) {
                return std::move(**m);
            }
            const ssize_t n = client.read(buf, sizeof buf);
            if (n <= 0) {
                return std::nullopt;
            }
            reader.feed(std::string_view(buf, static_cast<size_t>(n)));
        }
    };

    // Startup: TLS negotiation, then the startup message goes to the backend as it came.
    std::string user, database;
    for (;;) {
        auto m = next_frame();
        if (!m) {
            return;
        }
        auto startup = pgwire::parse_startup(m->body);
        if (!startup) {
            (void)client.write(pgwire::error_response("FATAL", "08P01", startup.error().message()));
            return;
        }
        if (startup->code == pgwire::ssl_request_code) {
            if (!tls_ || client.ssl != nullptr) {
                if (!client.write("N")) {
                    return;
                }
                continue;
            }
            if (!client.write("S")) {
                return;
            }
            client.ssl = SSL_new(static_cast<SSL_CTX*>(tls_.get()));
            SSL_set_fd(client.ssl, client.fd);
            if (SSL_accept(client.ssl) != 1) {
                std::cerr << "crdb-emulator: TLS handshake with a client failed: " << ssl_errors()
                          << "\n";
                return;
            }
            continue;
        }
        if (startup->code == pgwire::gssenc_request_code) {
            if (!client.write("N")) {
                return;
            }
            continue;
        }
        const int backend = dial(options_.backend_host, options_.backend_port);
        if (backend < 0) {
            (void)client.write(pgwire::error_response(
                "FATAL", "08006",
                fmt::format("crdb-emulator cannot reach its backend PostgreSQL at {}:{}",
                            options_.backend_host, options_.backend_port)));
            return;
        }
        conn.backend = backend;
        if (!write_all(backend, pgwire::frame(0, m->body))) {
            return;
        }
        if (startup->code == pgwire::cancel_request_code) {
            return;  // the backend acts on it and closes
        }
        if (startup->code != pgwire::protocol_v3) {
            return;  // the backend refuses it
        }
        const std::string* u = startup->parameter("user");
        const std::string* d = startup->parameter("database");
        user = u != nullptr ? *u : "";
        database = d != nullptr && !d->empty() ? *d : user;
        reader.end_startup();
        break;
    }

    cluster_session session(cluster_, user, database);
    for (;;) {
        pollfd fds[2] = {{conn.client, POLLIN, 0}, {conn.backend, POLLIN, 0}};
        if (!client.pending() && ::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            const ssize_t n = ::recv(conn.backend, buf, sizeof buf, 0);
            if (n <= 0 || !client.write(std::string_view(buf, static_cast<size_t>(n)))) {
                return;
            }
        }
        if (client.pending() || (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            const ssize_t n = client.read(buf, sizeof buf);
            if (n <= 0) {
                return;
            }
            reader.feed(std::string_view(buf, static_cast<size_t>(n)));
            std::string out;
            for (;;) {
                auto m = reader.next();
                if (!m) {
                    (void)client.write(
                        pgwire::error_response("FATAL", "08P01", m.error().message()));
                    return;
                }
                if (!*m) {
                    break;
                }
                auto frame = rewritten_frame(**m, session);
                if (!frame) {
                    (void)client.write(
                        pgwire::error_response("FATAL", "08P01", frame.error().message()));
                    return;
                }
                out += *frame;
            }
            if (!out.empty() && !write_all(conn.backend, out)) {
                return;
            }
        }
    }
}

}  // namespace molt::emulator
