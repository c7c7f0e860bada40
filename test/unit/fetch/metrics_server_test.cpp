#include "molt/fetch/metrics_server.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>

#include "molt/fetch/https_client.hpp"

namespace {

using namespace std::chrono_literals;
using molt::fetch::metrics_server;

/// A blocking client socket connected to 127.0.0.1:port (receive timeout 5 s: never hangs).
int connect_loopback(uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
}

/// Sends `request` as is and returns everything the server sends until it closes.
std::string raw_exchange(uint16_t port, const std::string& request) {
    const int fd = connect_loopback(port);
    REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size()));
    std::string reply;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        reply.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return reply;
}

std::string raw_get(uint16_t port, const std::string& target) {
    return raw_exchange(port, "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
}

struct fixture {
    molt::metrics::registry registry;
    std::atomic<int> status_calls{0};
    std::unique_ptr<metrics_server> server;

    explicit fixture(std::chrono::milliseconds io_timeout = 5s) {
        registry.counter("molt_rows_total", "Rows", {"table"}).with({"t"}).add(7);
        auto started = metrics_server::start(
            {"127.0.0.1", 0}, registry,
            [this] {
                ++status_calls;
                return std::string(R"({"phase":"streaming"})");
            },
            io_timeout);
        REQUIRE(started);
        server = std::move(started).value();
    }
    [[nodiscard]] uint16_t port() const { return server->address().port; }
};

}  // namespace

TEST_CASE("metrics_server: port 0 gives the real port", "[metrics_server]") {
    fixture f;
    CHECK(f.server->address().host == "127.0.0.1");
    CHECK(f.port() != 0);
}

TEST_CASE("metrics_server: GET /metrics is the Prometheus exposition", "[metrics_server]") {
    fixture f;
    const std::string body = f.registry.expose();
    REQUIRE(body.find("molt_rows_total{table=\"t\"} 7") != std::string::npos);
    CHECK(raw_get(f.port(), "/metrics") ==
          "HTTP/1.1 200 OK\r\n"
          "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
          "Content-Length: " +
              std::to_string(body.size()) +
              "\r\n"
              "Connection: close\r\n\r\n" +
              body);
    CHECK(raw_get(f.port(), "/metrics?name=x").rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
}

TEST_CASE("metrics_server: /healthz and /status", "[metrics_server]") {
    fixture f;
    CHECK(raw_get(f.port(), "/healthz") ==
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n"
          "Connection: close\r\n\r\nOK\n");
    CHECK(raw_get(f.port(), "/status") ==
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 21\r\n"
          "Connection: close\r\n\r\n{\"phase\":\"streaming\"}");
    CHECK(raw_get(f.port(), "/status").find("streaming") != std::string::npos);
    CHECK(f.status_calls == 2);
}

TEST_CASE("metrics_server: other paths, methods and malformed requests", "[metrics_server]") {
    fixture f;
    CHECK(raw_get(f.port(), "/").rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
    CHECK(raw_get(f.port(), "/metricsx").rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
    const std::string post =
        raw_exchange(f.port(), "POST /metrics HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody");
    CHECK(post.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0) == 0);
    CHECK(post.find("\r\nAllow: GET\r\n") != std::string::npos);
    CHECK(raw_exchange(f.port(), "HEAD /healthz HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405 ", 0) == 0);
    CHECK(raw_exchange(f.port(), "garbage\r\n\r\n").rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
    CHECK(raw_exchange(f.port(), "GET /metrics SPDY/3\r\n\r\n").rfind("HTTP/1.1 400 ", 0) == 0);
    const std::string huge = "GET /healthz HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n";
    CHECK(raw_exchange(f.port(), huge).rfind("HTTP/1.1 431 ", 0) == 0);
    CHECK(f.status_calls == 0);
    // Still serving after all of that.
    CHECK(raw_get(f.port(), "/healthz").find("\r\n\r\nOK\n") != std::string::npos);
}

TEST_CASE("metrics_server: a failing status callback is a 500", "[metrics_server]") {
    molt::metrics::registry registry;
    auto started = metrics_server::start({"127.0.0.1", 0}, registry, []() -> std::string {
        throw std::runtime_error("no progress yet");
    });
    REQUIRE(started);
    const uint16_t port = (*started)->address().port;
    CHECK(raw_get(port, "/status").rfind("HTTP/1.1 500 Internal Server Error\r\n", 0) == 0);
    CHECK(raw_get(port, "/healthz").rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
}

TEST_CASE("metrics_server: an address in use is a clear error", "[metrics_server]") {
    fixture f;
    molt::metrics::registry other;
    auto second = metrics_server::start({"127.0.0.1", f.port()}, other, {});
    REQUIRE_FALSE(second);
    CHECK(second.error().code() == molt::errc::io_error);
    CHECK(second.error().message() == "metrics server: cannot listen on 127.0.0.1:" +
                                          std::to_string(f.port()) + ": Address already in use");
}

TEST_CASE("metrics_server: a bad host is an error", "[metrics_server]") {
    molt::metrics::registry registry;
    auto r = metrics_server::start({"203.0.113.7", 0}, registry, {});  // not ours: cannot bind
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("203.0.113.7:0") != std::string::npos);
}

TEST_CASE("metrics_server: every interface", "[metrics_server]") {
    molt::metrics::registry registry;
    auto r = metrics_server::start({"", 0}, registry, {});
    REQUIRE(r);
    CHECK((*r)->address().host.empty());
    auto reply =
        molt::fetch::http_get({"", (*r)->address().port, false, {}, {}, {}}, "/healthz", 5s);
    REQUIRE(reply);
    CHECK(reply->body == "OK\n");
}

TEST_CASE("metrics_server: a silent client does not hold the server", "[metrics_server]") {
    fixture f(200ms);
    const int idle = connect_loopback(f.port());  // connects, never sends
    const auto start = std::chrono::steady_clock::now();
    auto reply = molt::fetch::http_get({"127.0.0.1", f.port(), false, {}, {}, {}}, "/healthz", 5s);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    REQUIRE(reply);
    CHECK(reply->status == 200);
    CHECK(elapsed < 3s);
    // The idle connection was dropped after the read timeout: the server closed it.
    char b;
    CHECK(::recv(idle, &b, 1, 0) == 0);
    ::close(idle);
}

TEST_CASE("metrics_server: the destructor stops promptly", "[metrics_server]") {
    auto f = std::make_unique<fixture>(30s);
    // A client in the middle of a request: the server thread is waiting for the rest of it.
    const int slow = connect_loopback(f->port());
    const std::string partial = "GET /hea";
    REQUIRE(::send(slow, partial.data(), partial.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(partial.size()));
    const auto start = std::chrono::steady_clock::now();
    f.reset();
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    char b;
    CHECK(::recv(slow, &b, 1, 0) <= 0);  // closed (or reset, if never accepted), no answer
    ::close(slow);
}
