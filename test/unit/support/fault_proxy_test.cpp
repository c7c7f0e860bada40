// molt::test::fault_proxy against a plain TCP peer of the test's own: each fault does exactly
// what it says, byte for byte, and the control protocol answers as documented.
#include "molt/test/fault_proxy.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>
#include <utility>

#include <catch2/catch.hpp>

namespace {

using namespace std::chrono_literals;
using molt::test::fault_direction;
using molt::test::fault_proxy;
using clock_type = std::chrono::steady_clock;

// Generous bound for anything that should happen "now": never reached unless the proxy is wrong.
constexpr auto soon = 10s;

class fd_socket {
public:
    explicit fd_socket(int fd = -1) : fd_(fd) {}
    fd_socket(fd_socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    fd_socket& operator=(fd_socket&& other) noexcept {
        std::swap(fd_, other.fd_);
        return *this;
    }
    fd_socket(const fd_socket&) = delete;
    fd_socket& operator=(const fd_socket&) = delete;
    ~fd_socket() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    [[nodiscard]] int fd() const { return fd_; }

private:
    int fd_;
};

sockaddr_in loopback(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return a;
}

// true when fd is readable (data, EOF or an error) within `within`.
bool readable(const fd_socket& s, std::chrono::milliseconds within) {
    pollfd p{s.fd(), POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(within.count())) == 1;
}

// The target: a listening socket on a free port.
class target_server {
public:
    target_server() : listener_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        sockaddr_in a = loopback(0);
        REQUIRE(::bind(listener_.fd(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(listener_.fd(), 16) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(listener_.fd(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port_ = ntohs(a.sin_port);
    }
    [[nodiscard]] uint16_t port() const { return port_; }
    // A connection from the proxy, if one arrives within `within`.
    fd_socket accept(std::chrono::milliseconds within = soon) {
        if (!readable(listener_, within)) {
            return fd_socket();
        }
        return fd_socket(::accept4(listener_.fd(), nullptr, nullptr, SOCK_CLOEXEC));
    }

private:
    fd_socket listener_;
    uint16_t port_ = 0;
};

fd_socket connect_to(uint16_t port) {
    fd_socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a = loopback(port);
    REQUIRE(::connect(s.fd(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return s;
}

void send_all(const fd_socket& s, const std::string& bytes) {
    REQUIRE(::send(s.fd(), bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(bytes.size()));
}

// What one side reads until the connection ends: the bytes, and how it ended.
struct ending {
    std::string bytes;
    int error = 0;  // 0: orderly EOF; ECONNRESET: reset; ETIMEDOUT: nothing ended within `soon`
};

ending read_to_end(const fd_socket& s) {
    ending out;
    const auto deadline = clock_type::now() + soon;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
        if (left <= 0ms || !readable(s, left)) {
            out.error = ETIMEDOUT;
            return out;
        }
        char buffer[4096];
        const ssize_t n = ::recv(s.fd(), buffer, sizeof buffer, 0);
        if (n == 0) {
            return out;
        }
        if (n < 0) {
            out.error = errno;
            return out;
        }
        out.bytes.append(buffer, static_cast<size_t>(n));
    }
}

// Reads exactly `size` bytes (or fewer if the connection ends or `soon` passes).
std::string read_exact(const fd_socket& s, size_t size) {
    std::string out;
    const auto deadline = clock_type::now() + soon;
    while (out.size() < size) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
        if (left <= 0ms || !readable(s, left)) {
            break;
        }
        char buffer[4096];
        const ssize_t n = ::recv(s.fd(), buffer, std::min(sizeof buffer, size - out.size()), 0);
        if (n <= 0) {
            break;
        }
        out.append(buffer, static_cast<size_t>(n));
    }
    return out;
}

// A client connected through the proxy, and the target's end of the same connection.
struct pair_through {
    fd_socket client;
    fd_socket server;
};

pair_through open_through(fault_proxy& proxy, target_server& target) {
    pair_through p{connect_to(proxy.port()), fd_socket()};
    p.server = target.accept();
    REQUIRE(p.server.fd() >= 0);
    return p;
}

}  // namespace

TEST_CASE("fault_proxy: pass-through forwards both ways and counts", "[unit][fault_proxy]") {
    target_server target;
    fault_proxy proxy("127.0.0.1", target.port());
    REQUIRE(proxy.port() != 0);
    auto p = open_through(proxy, target);
    send_all(p.client, "ping");
    CHECK(read_exact(p.server, 4) == "ping");
    send_all(p.server, "pong!");
    CHECK(read_exact(p.client, 5) == "pong!");

    // An orderly close travels as an orderly close, and the connection is then gone.
    ::shutdown(p.client.fd(), SHUT_WR);
    const ending at_server = read_to_end(p.server);
    CHECK(at_server.bytes.empty());
    CHECK(at_server.error == 0);
    ::shutdown(p.server.fd(), SHUT_WR);
    CHECK(read_to_end(p.client).error == 0);

    const auto stats = proxy.stats();
    CHECK(stats.accepted == 1);
    CHECK(stats.bytes_up == 4);
    CHECK(stats.bytes_down == 5);
    CHECK(stats.resets == 0);
}

TEST_CASE("fault_proxy: latency holds each direction at least the set time",
          "[unit][fault_proxy]") {
    target_server target;
    fault_proxy proxy("127.0.0.1", target.port());
    auto p = open_through(proxy, target);
    proxy.latency(150ms);
    const auto start = clock_type::now();
    send_all(p.client, "a");
    CHECK(read_exact(p.server, 1) == "a");
    const auto up = clock_type::now() - start;
    send_all(p.server, "b");
    CHECK(read_exact(p.client, 1) == "b");
    const auto round_trip = clock_type::now() - start;
    CHECK(up >= 150ms);
    CHECK(round_trip >= 300ms);
    CHECK(round_trip < soon);

    proxy.pass();
    send_all(p.client, "c");
    CHECK(read_exact(p.server, 1) == "c");
}

TEST_CASE("fault_proxy: cut-after forwards exactly N bytes, then resets both sides",
          "[unit][fault_proxy]") {
    target_server target;
    fault_proxy proxy("127.0.0.1", target.port());

    SECTION("client to target") {
        proxy.cut_after(10, fault_direction::up);
        auto p = open_through(proxy, target);
        send_all(p.server, "down is not cut");
        CHECK(read_exact(p.client, 15) == "down is not cut");
        send_all(p.client, "0123456789abcdefghijklmno");
        const ending at_server = read_to_end(p.server);
        CHECK(at_server.bytes == "0123456789");
        CHECK(at_server.error == ECONNRESET);
        CHECK(read_to_end(p.client).error == ECONNRESET);
        CHECK(proxy.stats().bytes_up == 10);
    }
    SECTION("target to client, counted from the start of the connection") {
        proxy.cut_after(8, fault_direction::down);
        auto p = open_through(proxy, target);
        send_all(p.server, "12345");
        CHECK(read_exact(p.client, 5) == "12345");
        send_all(p.server, "67890");
        const ending at_client = read_to_end(p.client);
        CHECK(at_client.bytes == "678");
        CHECK(at_client.error == ECONNRESET);
        CHECK(proxy.stats().bytes_down == 8);
    }
    SECTION("either direction: whichever reaches N first") {
        proxy.cut_after(4, fault_direction::either);
        auto p = open_through(proxy, target);
        send_all(p.client, "abc");
        CHECK(read_exact(p.server, 3) == "abc");
        send_all(p.server, "wxyz");
        const ending at_client = read_to_end(p.client);
        CHECK(at_client.bytes == "wxyz");
        CHECK(at_client.error == ECONNRESET);
    }
    const auto stats = proxy.stats();
    CHECK(stats.resets == 1);
    CHECK(stats.active == 0);
}

TEST_CASE("fault_proxy: reset resets open connections, refuse resets new ones until pass",
          "[unit][fault_proxy]") {
    target_server target;
    fault_proxy proxy("127.0.0.1", target.port());
    auto first = open_through(proxy, target);
    auto second = open_through(proxy, target);
    REQUIRE(proxy.stats().active == 2);

    proxy.reset();
    CHECK(read_to_end(first.client).error == ECONNRESET);
    CHECK(read_to_end(second.server).error == ECONNRESET);
    CHECK(proxy.stats().resets == 2);
    CHECK(proxy.stats().active == 0);

    // Without refuse, the next connection goes through.
    auto third = open_through(proxy, target);
    send_all(third.client, "x");
    CHECK(read_exact(third.server, 1) == "x");

    proxy.reset(true);
    CHECK(read_to_end(third.client).error == ECONNRESET);
    const fd_socket refused = connect_to(proxy.port());
    CHECK(read_to_end(refused).error == ECONNRESET);
    CHECK(target.accept(200ms).fd() < 0);  // the refused one never reached the target
    CHECK(proxy.stats().resets == 4);

    proxy.pass();
    auto fourth = open_through(proxy, target);
    send_all(fourth.client, "y");
    CHECK(read_exact(fourth.server, 1) == "y");
    CHECK(proxy.stats().accepted == 5);
}

TEST_CASE("fault_proxy: black-hole forwards nothing and closes nothing until pass",
          "[unit][fault_proxy]") {
    target_server target;
    fault_proxy proxy("127.0.0.1", target.port());
    auto open = open_through(proxy, target);

    proxy.blackhole();
    send_all(open.client, "held");
    send_all(open.server, "held too");
    const fd_socket fresh = connect_to(proxy.port());  // accepted: connect() succeeds
    send_all(fresh, "new");
    // Nothing may arrive while black-holed: a bounded look for the absence of bytes, which a
    // forwarding proxy fails at once.
    CHECK_FALSE(readable(open.server, 300ms));
    CHECK_FALSE(readable(open.client, 300ms));
    CHECK(target.accept(300ms).fd() < 0);   // the new connection is not passed on
    ::shutdown(open.client.fd(), SHUT_WR);  // nor is an orderly close
    CHECK_FALSE(readable(open.server, 300ms));
    CHECK(proxy.stats().accepted == 2);
    CHECK(proxy.stats().bytes_up == 0);

    // pass releases what was held, in order, like a healed partition.
    proxy.pass();
    CHECK(read_exact(open.server, 4) == "held");
    CHECK(read_exact(open.client, 8) == "held too");
    CHECK(read_to_end(open.server).error == 0);
    const fd_socket released = target.accept();
    REQUIRE(released.fd() >= 0);
    CHECK(read_exact(released, 3) == "new");
}

TEST_CASE("fault_proxy: a refused target resets the client", "[unit][fault_proxy]") {
    uint16_t closed_port = 0;
    {
        const target_server gone;
        closed_port = gone.port();
    }
    fault_proxy proxy("127.0.0.1", closed_port);
    const fd_socket client = connect_to(proxy.port());
    CHECK(read_to_end(client).error == ECONNRESET);
}

TEST_CASE("fault_proxy: the control protocol", "[unit][fault_proxy]") {
    target_server target;
    fault_proxy proxy("127.0.0.1", target.port());
    CHECK(proxy.command("stats") ==
          "accepted=0 active=0 up=0 down=0 resets=0 mode=pass latency_ms=0 cut_after=0 "
          "cut_direction=either");
    CHECK(proxy.command("latency 250") == "ok");
    CHECK(proxy.command("cut-after 4096 down") == "ok");
    CHECK(proxy.command("  blackhole \r") == "ok");
    CHECK(proxy.command("stats") ==
          "accepted=0 active=0 up=0 down=0 resets=0 mode=blackhole latency_ms=250 "
          "cut_after=4096 cut_direction=down");
    CHECK(proxy.command("reset refuse") == "ok");
    CHECK_THAT(proxy.command("stats"), Catch::Contains("mode=refuse"));
    CHECK(proxy.command("pass") == "ok");
    CHECK_THAT(proxy.command("stats"),
               Catch::EndsWith("mode=pass latency_ms=0 cut_after=0 cut_direction=either"));

    for (const char* bad : {"", "latency", "latency -1", "latency 5x", "latency 3600001",
                            "cut-after 10 sideways", "reset now", "pass 1", "frobnicate"}) {
        INFO(bad);
        CHECK_THAT(proxy.command(bad), Catch::StartsWith("error: "));
    }
    CHECK_THAT(proxy.command("latency"),
               Catch::Contains("(commands: pass | latency MS | reset [refuse] | blackhole | "
                               "cut-after N [up|down|either] | stats)"));

    // The same lines over the control port, several on one connection.
    const uint16_t control = proxy.listen_control();
    const fd_socket c = connect_to(control);
    send_all(c, "latency 5\nstats\nnonsense\n");
    std::string replies;
    while (std::count(replies.begin(), replies.end(), '\n') < 3 && readable(c, soon)) {
        char buffer[1024];
        const ssize_t n = ::recv(c.fd(), buffer, sizeof buffer, 0);
        if (n <= 0) {
            break;
        }
        replies.append(buffer, static_cast<size_t>(n));
    }
    CHECK_THAT(replies, Catch::StartsWith("ok\naccepted=0 "));
    CHECK_THAT(replies, Catch::Contains(" latency_ms=5 "));
    CHECK_THAT(replies, Catch::Contains("\nerror: cannot read \"nonsense\""));
}
