#include "molt/fetch/https_client.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <mutex>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "molt/fetch/metrics_server.hpp"

#include "test_certs.hpp"

namespace {

using namespace std::chrono_literals;
using molt::fetch::http_get;
using molt::fetch::http_target;
namespace tc = molt::test_certs;

using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, tc::deleter<SSL_CTX, SSL_CTX_free>>;
using ssl_ptr = std::unique_ptr<SSL, tc::deleter<SSL, SSL_free>>;

/// A listening socket on 127.0.0.1 with a port picked by the kernel.
int listen_loopback(uint16_t& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return fd;
}

/// A scripted HTTP(S) server on a thread: answers every connection with `response` (raw bytes)
/// after reading the request head, or, when `silent`, accepts and never says anything.
class test_server {
public:
    struct options {
        bool tls = true;
        const tc::issued* cert = nullptr;       ///< the server certificate (TLS)
        const tc::issued* client_ca = nullptr;  ///< require client certificates from this CA
        std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        bool silent = false;
    };

    explicit test_server(options opts) : opts_(std::move(opts)) {
        std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not end the test run
        listen_fd_ = listen_loopback(port_);
        REQUIRE(::pipe(stop_pipe_) == 0);
        if (opts_.tls) {
            ctx_.reset(SSL_CTX_new(TLS_server_method()));
            REQUIRE(SSL_CTX_use_certificate(ctx_.get(), opts_.cert->cert.get()) == 1);
            REQUIRE(SSL_CTX_use_PrivateKey(ctx_.get(), opts_.cert->key.get()) == 1);
            if (opts_.client_ca != nullptr) {
                X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_.get()),
                                    opts_.client_ca->cert.get());
                SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                                   nullptr);
            }
        }
        thread_ = std::thread([this] { run(); });
    }
    test_server(const test_server&) = delete;
    test_server& operator=(const test_server&) = delete;
    ~test_server() {
        const char b = 1;
        [[maybe_unused]] const auto n = ::write(stop_pipe_[1], &b, 1);
        thread_.join();
        for (const int fd : held_) {
            ::close(fd);
        }
        ::close(listen_fd_);
        ::close(stop_pipe_[0]);
        ::close(stop_pipe_[1]);
    }

    [[nodiscard]] uint16_t port() const { return port_; }
    [[nodiscard]] std::string last_request() {
        std::lock_guard lock(mutex_);
        return last_request_;
    }

private:
    void run() {
        for (;;) {
            pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
            ::poll(fds, 2, -1);
            if (fds[1].revents != 0) {
                return;
            }
            const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) {
                continue;
            }
            if (opts_.silent) {
                held_.push_back(fd);  // accepted, never answered
                continue;
            }
            timeval tv{2, 0};  // a broken client must not hang the test
            ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            serve(fd);
            ::close(fd);
        }
    }

    void serve(int fd) {
        ssl_ptr ssl;
        if (opts_.tls) {
            ssl.reset(SSL_new(ctx_.get()));
            SSL_set_fd(ssl.get(), fd);
            if (SSL_accept(ssl.get()) != 1) {
                ERR_clear_error();
                return;
            }
        }
        std::string request;
        char buf[4096];
        while (request.find("\r\n\r\n") == std::string::npos) {
            const int n = ssl ? SSL_read(ssl.get(), buf, sizeof buf)
                              : static_cast<int>(::recv(fd, buf, sizeof buf, 0));
            if (n <= 0) {
                ERR_clear_error();
                return;
            }
            request.append(buf, static_cast<size_t>(n));
        }
        {
            std::lock_guard lock(mutex_);
            last_request_ = request;
        }
        if (ssl) {
            SSL_write(ssl.get(), opts_.response.data(), static_cast<int>(opts_.response.size()));
            SSL_shutdown(ssl.get());
        } else {
            [[maybe_unused]] const auto n =
                ::send(fd, opts_.response.data(), opts_.response.size(), MSG_NOSIGNAL);
        }
        ERR_clear_error();
    }

    options opts_;
    uint16_t port_ = 0;
    int listen_fd_ = -1;
    int stop_pipe_[2] = {-1, -1};
    ssl_ctx_ptr ctx_;
    std::vector<int> held_;
    std::mutex mutex_;
    std::string last_request_;
    std::thread thread_;
};

struct pki {
    tc::issued ca = tc::make_cert({.cn = "Test CA", .ca = true});
    tc::issued other_ca = tc::make_cert({.cn = "Other CA", .ca = true});
    tc::issued server = tc::make_cert(
        {.cn = "server", .sans = "DNS:localhost,IP:127.0.0.1", .eku = "serverAuth"}, &ca);
    tc::issued client = tc::make_cert({.cn = "changefeed", .eku = "clientAuth"}, &ca);
    tc::temp_dir dir;
    std::string ca_file = dir.write("ca.crt", ca.cert_pem);
    std::string other_ca_file = dir.write("other-ca.crt", other_ca.cert_pem);
};

http_target tls_target(uint16_t port, std::string host = "127.0.0.1") {
    return {std::move(host), port, true, {}, {}, {}};
}

std::string with_port(const std::string& host, uint16_t port) {
    return host + ":" + std::to_string(port);
}

}  // namespace

TEST_CASE("https_client: plain GET against the metrics server", "[https_client]") {
    molt::metrics::registry registry;
    registry.counter("molt_test_total", "A test counter").get().add(3);
    auto server = molt::fetch::metrics_server::start({"127.0.0.1", 0}, registry,
                                                     [] { return std::string(R"({"ok":true})"); });
    REQUIRE(server);
    const uint16_t port = (*server)->address().port;
    const http_target plain{"127.0.0.1", port, false, {}, {}, {}};

    auto health = http_get(plain, "/healthz", 5s);
    REQUIRE(health);
    CHECK(health->status == 200);
    CHECK(health->body == "OK\n");

    auto metrics = http_get(plain, "/metrics", 5s);
    REQUIRE(metrics);
    CHECK(metrics->status == 200);
    CHECK(metrics->body == registry.expose());

    auto status = http_get(plain, "/status", 5s);
    REQUIRE(status);
    CHECK(status->body == R"({"ok":true})");

    auto missing = http_get(plain, "/nope", 5s);
    REQUIRE(missing);
    CHECK(missing->status == 404);

    SECTION("an unspecified host means loopback") {
        for (const std::string host : {"", "0.0.0.0"}) {
            auto r = http_get({host, port, false, {}, {}, {}}, "/healthz", 5s);
            REQUIRE(r);
            CHECK(r->status == 200);
        }
    }
    SECTION("a body over the limit is an error") {
        auto r = http_get(plain, "/metrics", 5s, 4);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == molt::errc::limit_exceeded);
    }
}

TEST_CASE("https_client: TLS without verification", "[https_client]") {
    const pki p;
    test_server server({.cert = &p.server});
    auto r = http_get(tls_target(server.port()), "/_/healthz", 5s);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "hello");
    const std::string request = server.last_request();
    CHECK(request.rfind("GET /_/healthz HTTP/1.1\r\n", 0) == 0);
    CHECK(request.find("\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n") !=
          std::string::npos);
    CHECK(request.find("\r\nConnection: close\r\n") != std::string::npos);
}

TEST_CASE("https_client: TLS verified against a CA and the host", "[https_client]") {
    const pki p;
    test_server server({.cert = &p.server});
    const uint16_t port = server.port();

    SECTION("IP address in subjectAltName") {
        http_target t = tls_target(port);
        t.ca_file = p.ca_file;
        auto r = http_get(t, "/", 5s);
        REQUIRE(r);
        CHECK(r->status == 200);
    }
    SECTION("DNS name in subjectAltName") {
        http_target t = tls_target(port, "localhost");
        t.ca_file = p.ca_file;
        auto r = http_get(t, "/", 5s);
        INFO((r ? std::string() : r.error().message()));
        REQUIRE(r);
        CHECK(r->status == 200);
    }
    SECTION("another CA") {
        http_target t = tls_target(port);
        t.ca_file = p.other_ca_file;
        auto r = http_get(t, "/", 5s);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == molt::errc::tls_error);
        const std::string& m = r.error().message();
        CHECK(m.find(with_port("127.0.0.1", port)) != std::string::npos);
        CHECK(m.find("TLS handshake") != std::string::npos);
        CHECK(m.find("certificate verify failed") != std::string::npos);
    }
    SECTION("a CA file that does not exist") {
        http_target t = tls_target(port);
        t.ca_file = "/nonexistent/ca.crt";
        auto r = http_get(t, "/", 5s);
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find("/nonexistent/ca.crt") != std::string::npos);
    }
}

TEST_CASE("https_client: the host must be in the certificate", "[https_client]") {
    const pki p;
    const tc::issued elsewhere =
        tc::make_cert({.cn = "127.0.0.1", .sans = "DNS:other.example", .eku = "serverAuth"}, &p.ca);
    test_server server({.cert = &elsewhere});
    http_target t = tls_target(server.port());
    t.ca_file = p.ca_file;
    auto r = http_get(t, "/", 5s);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == molt::errc::tls_error);
    CHECK(r.error().message().find("TLS handshake") != std::string::npos);
    t.ca_file.clear();  // without verification the same server is fine
    CHECK(http_get(t, "/", 5s));
}

TEST_CASE("https_client: client certificates", "[https_client]") {
    const pki p;
    test_server server({.cert = &p.server, .client_ca = &p.ca});
    http_target t = tls_target(server.port());

    SECTION("presented") {
        t.client_cert_pem = p.client.cert_pem;
        t.client_key_pem = p.client.key_pem;
        auto r = http_get(t, "/", 5s);
        INFO((r ? std::string() : r.error().message()));
        REQUIRE(r);
        CHECK(r->status == 200);
    }
    SECTION("missing") {
        auto r = http_get(t, "/", 5s);
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find(with_port("127.0.0.1", server.port())) != std::string::npos);
    }
    SECTION("a key that does not match, named without key material") {
        t.client_cert_pem = p.client.cert_pem;
        t.client_key_pem = p.server.key_pem;
        auto r = http_get(t, "/", 5s);
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find("does not match") != std::string::npos);
        CHECK(r.error().message().find("PRIVATE KEY") == std::string::npos);
    }
    SECTION("garbage") {
        t.client_cert_pem = p.client.key_pem;  // a key where the certificate belongs
        t.client_key_pem = "not a key";
        auto r = http_get(t, "/", 5s);
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find("PRIVATE KEY") == std::string::npos);
    }
}

TEST_CASE("https_client: response framing", "[https_client]") {
    const pki p;
    struct framing_case {
        const char* name;
        std::string response;
        int status;
        std::string body;
    };
    const std::vector<framing_case> cases = {
        {"Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcIGNORED", 200, "abc"},
        {"chunked",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n"
         "7;ext=1\r\npedia i\r\nB\r\nn \r\nchunks.\r\n0\r\nX-Trailer: t\r\n\r\n",
         200, "Wikipedia in \r\nchunks."},
        {"read to close", "HTTP/1.0 500 Internal Server Error\r\n\r\nbody until close", 500,
         "body until close"},
        {"interim 100 Continue",
         "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok", 201,
         "ok"},
        {"no body for 204", "HTTP/1.1 204 No Content\r\n\r\n", 204, ""},
        {"LF-only lines", "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi", 200, "hi"},
    };
    for (const bool tls : {true, false}) {
        for (const auto& c : cases) {
            DYNAMIC_SECTION((tls ? "TLS, " : "plain, ") << c.name) {
                test_server server({.tls = tls, .cert = &p.server, .response = c.response});
                http_target t = tls_target(server.port());
                t.tls = tls;
                auto r = http_get(t, "/", 5s);
                INFO((r ? std::string() : r.error().message()));
                REQUIRE(r);
                CHECK(r->status == c.status);
                CHECK(r->body == c.body);
            }
        }
    }
}

TEST_CASE("https_client: malformed and oversized responses", "[https_client]") {
    const pki p;
    struct bad_case {
        const char* name;
        std::string response;
        molt::errc code;
    };
    const std::vector<bad_case> cases = {
        {"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", molt::errc::parse_error},
        {"bad status code", "HTTP/1.1 2x0 OK\r\n\r\n", molt::errc::parse_error},
        {"bad Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
         molt::errc::parse_error},
        {"conflicting Content-Length",
         "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
         molt::errc::parse_error},
        {"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
         molt::errc::parse_error},
        {"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
         molt::errc::parse_error},
        {"truncated headers", "HTTP/1.1 200 OK\r\nContent-", molt::errc::parse_error},
        {"Content-Length over the limit", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
         molt::errc::limit_exceeded},
        {"chunks over the limit",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n"
         "0\r\n\r\n",
         molt::errc::limit_exceeded},
        {"huge chunk size",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n",
         molt::errc::limit_exceeded},
        {"read to close over the limit", "HTTP/1.1 200 OK\r\n\r\n" + std::string(100, 'x'),
         molt::errc::limit_exceeded},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.name) {
            test_server server({.cert = &p.server, .response = c.response});
            auto r = http_get(tls_target(server.port()), "/", 5s, 10);
            REQUIRE_FALSE(r);
            CHECK(r.error().code() == c.code);
            CHECK(r.error().message().find(with_port("127.0.0.1", server.port())) !=
                  std::string::npos);
            CHECK(r.error().message().find("read response") != std::string::npos);
        }
    }
}

TEST_CASE("https_client: a server that accepts and never answers times out", "[https_client]") {
    const pki p;
    for (const bool tls : {true, false}) {
        DYNAMIC_SECTION((tls ? "TLS" : "plain")) {
            test_server server({.tls = tls, .cert = &p.server, .silent = true});
            http_target t = tls_target(server.port());
            t.tls = tls;
            const auto start = std::chrono::steady_clock::now();
            auto r = http_get(t, "/_/healthz", 300ms);
            const auto elapsed = std::chrono::steady_clock::now() - start;
            REQUIRE_FALSE(r);
            CHECK(r.error().code() == molt::errc::timeout);
            CHECK(elapsed >= 300ms);
            CHECK(elapsed < 3s);
            const std::string& m = r.error().message();
            CHECK(m.find(with_port("127.0.0.1", server.port())) != std::string::npos);
            CHECK(m.find(tls ? "TLS handshake" : "read response") != std::string::npos);
            CHECK(m.find("300 ms") != std::string::npos);
        }
    }
}

TEST_CASE("https_client: connection refused names the step", "[https_client]") {
    // A bound socket that does not listen: connecting to it is refused, and the port cannot be
    // taken by anyone else while it is held.
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    const uint16_t port = ntohs(a.sin_port);
    auto r = http_get(tls_target(port), "/_/healthz", 2s);
    ::close(fd);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == molt::errc::unavailable);
    CHECK(r.error().message() == "GET https://127.0.0.1:" + std::to_string(port) +
                                     "/_/healthz: connect: Connection refused");
}

TEST_CASE("https_client: a path must start with a slash", "[https_client]") {
    auto r = http_get(tls_target(1), "_/healthz", 1s);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == molt::errc::invalid_argument);
    CHECK_FALSE(http_get(tls_target(1), "/a\r\nX-Injected: 1", 1s));
}
