// The stand-in's HTTP client against a local socket that misbehaves: the client timeout covers
// the whole exchange, no timeout waits until cancel(), and a cancelled transport sends nothing.
#include "molt/emulator/https_transport.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

using namespace molt;
using namespace molt::emulator;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

// Accepts connections on 127.0.0.1. It reads nothing for `read_after` after a connection is
// accepted, then reads whatever comes; `first` after it started reading it sends `answer`
// (nothing, when empty), all at once or a byte every `gap`.
class slow_server {
public:
    slow_server(std::string answer, std::chrono::milliseconds read_after,
                std::chrono::milliseconds first, std::chrono::milliseconds gap)
        : answer_(std::move(answer)), read_after_(read_after), first_(first), gap_(gap) {
        listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(listener_, 8) == 0);
        socklen_t len = sizeof addr;
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~slow_server() {
        stopping_ = true;
        thread_.join();
        ::close(listener_);
    }
    [[nodiscard]] std::string uri() const {
        return "http://127.0.0.1:" + std::to_string(port_) + "/db/public";
    }
    /// Connections accepted, once the listener had 300 ms to take any the client made.
    [[nodiscard]] int accepted() const {
        std::this_thread::sleep_for(300ms);
        return accepted_;
    }
    /// Connections the client closed, once the server had 300 ms to notice.
    [[nodiscard]] int closed() const {
        std::this_thread::sleep_for(300ms);
        return closed_;
    }

private:
    void serve() {
        int fd = -1;
        size_t sent = 0;
        clock_type::time_point reading, next;
        while (!stopping_) {
            // Not reading yet: wait without asking for POLLIN (pending data would wake us).
            const bool waiting = fd >= 0 && clock_type::now() < reading;
            pollfd p{fd < 0 ? listener_ : fd, static_cast<short>(waiting ? 0 : POLLIN), 0};
            ::poll(&p, 1, 5);
            if (fd < 0) {
                if ((p.revents & POLLIN) != 0) {
                    fd = ::accept(listener_, nullptr, nullptr);
                    ++accepted_;
                    reading = clock_type::now() + read_after_;
                    next = reading + first_;
                    sent = 0;
                }
                continue;
            }
            const auto now = clock_type::now();
            if (now >= reading && (p.revents & (POLLIN | POLLHUP)) != 0) {
                char buf[65536];
                if (::recv(fd, buf, sizeof buf, 0) <= 0) {
                    ::close(fd);  // the client went away
                    fd = -1;
                    ++closed_;
                    continue;
                }
            }
            if (sent < answer_.size() && now >= next) {
                const size_t n = gap_.count() > 0 ? 1 : answer_.size() - sent;
                const ssize_t put = ::send(fd, answer_.data() + sent, n, MSG_NOSIGNAL);
                sent += put > 0 ? static_cast<size_t>(put) : 0;
                next += gap_;
            }
        }
        if (fd >= 0) {
            ::close(fd);
        }
    }

    std::string answer_;
    std::chrono::milliseconds read_after_, first_, gap_;
    int listener_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<int> accepted_{0};
    std::atomic<int> closed_{0};
    std::thread thread_;
};

std::unique_ptr<transport> connect(const slow_server& server, std::chrono::nanoseconds timeout) {
    endpoint_options o;
    o.sink_uri = server.uri();
    o.timeout = timeout;
    auto factory = make_https_transport(o);
    REQUIRE(factory);
    return (*factory)();
}

}  // namespace

TEST_CASE("transport: without a client timeout a request waits until cancel()", "[emulator]") {
    slow_server server("", 0ms, 0ms, 0ms);  // never answers
    auto t = connect(server, 0ns);
    std::atomic<bool> returned{false};
    std::atomic<bool> waited{false};
    std::thread canceller([&] {
        std::this_thread::sleep_for(1500ms);
        waited = !returned.load();
        t->cancel();
    });
    const auto start = clock_type::now();
    const send_outcome out = t->post(R"({"payload":[],"length":0})", send_mode::whole);
    returned = true;
    canceller.join();
    CHECK(waited.load());  // still waiting after 1.5 s: there is no timeout
    CHECK(out.status == 0);
    CHECK_THAT(out.error, Catch::Contains("context canceled"));
    CHECK(clock_type::now() - start < 30s);
    // Cancelled for good: the next request fails at once, without connecting.
    const int before = server.accepted();
    CHECK(t->post(R"({"payload":[],"length":0})", send_mode::whole).status == 0);
    CHECK(server.accepted() == before);
}

TEST_CASE("transport: the client timeout covers the whole exchange, not each step", "[emulator]") {
    // 16 MiB of body: writing it waits 700 ms for the server to read, then the answer comes
    // 700 ms later. Each step takes less than 1 s; the exchange takes 1.4 s.
    const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK";
    const std::string body(16 << 20, ' ');
    {
        slow_server server(answer, 700ms, 700ms, 0ms);
        auto t = connect(server, 1s);
        const auto start = clock_type::now();
        const send_outcome out = t->post(body, send_mode::whole);
        const auto took = clock_type::now() - start;
        CHECK(out.status == 0);
        CHECK_THAT(out.error, Catch::Contains("Client.Timeout exceeded"));
        CHECK(took >= 900ms);
        CHECK(took < 5s);
    }
    {
        // The same server with time enough: answered.
        slow_server server(answer, 700ms, 700ms, 0ms);
        auto t = connect(server, 10s);
        const send_outcome out = t->post(body, send_mode::whole);
        INFO(out.error);
        CHECK(out.status == 200);
    }
}

TEST_CASE("transport: a transport cancelled before it sends sends nothing", "[emulator]") {
    slow_server server("", 0ms, 0ms, 0ms);
    auto t = connect(server, 0ns);
    t->cancel();
    const auto start = clock_type::now();
    const send_outcome out = t->post(R"({"payload":[],"length":0})", send_mode::whole);
    CHECK(out.status == 0);
    CHECK_THAT(out.error, Catch::Contains("context canceled"));
    CHECK(clock_type::now() - start < 5s);
    CHECK(server.accepted() == 0);
}

// CockroachDB's sink closes a kept-alive connection after a minute unused (Go's IdleConnTimeout),
// before a receiver's own idle timeout would close it under a request.
TEST_CASE("transport: a connection idle for the idle timeout is closed", "[emulator]") {
    slow_server server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0ms, 0ms, 0ms);
    endpoint_options o;
    o.sink_uri = server.uri();
    o.idle_timeout = 500ms;
    auto factory = make_https_transport(o);
    REQUIRE(factory);
    auto t = (*factory)();
    CHECK_FALSE(t->close_if_idle(clock_type::now()));  // no connection yet
    REQUIRE(t->post("{}", send_mode::whole).status == 200);
    const auto due = t->close_if_idle(clock_type::now());
    REQUIRE(due);  // kept alive: not idle long enough yet
    CHECK(server.closed() == 0);
    std::this_thread::sleep_until(*due);
    CHECK_FALSE(t->close_if_idle(clock_type::now()));
    CHECK(server.closed() == 1);
    REQUIRE(t->post("{}", send_mode::whole).status == 200);  // on a new connection
    CHECK(server.accepted() == 2);
}
