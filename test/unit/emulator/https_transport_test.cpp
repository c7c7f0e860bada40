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
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

using namespace molt;
using namespace molt::emulator;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

// A socket listening on 127.0.0.1 at a free port.
int listen_loopback(uint16_t& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 8) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
    return fd;
}

// Accepts connections on 127.0.0.1. It reads nothing for `read_after` after a connection is
// accepted, then reads whatever comes; `first` after it started reading it sends `answer`
// (nothing, when empty), all at once or a byte every `gap`.
class slow_server {
public:
    slow_server(std::string answer, std::chrono::milliseconds read_after,
                std::chrono::milliseconds first, std::chrono::milliseconds gap)
        : answer_(std::move(answer)), read_after_(read_after), first_(first), gap_(gap) {
        listener_ = listen_loopback(port_);
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

namespace {

struct seen_request {
    std::string method;
    std::string target;
    std::string headers;  // the header lines, lower-cased names kept as sent
    std::string body;
};

// Answers each request with `answer(request, index)`, on any number of keep-alive connections
// one at a time, and records what it was sent.
class scripted_http_server {
public:
    using script = std::function<std::string(const seen_request&, size_t)>;
    explicit scripted_http_server(script answer) : answer_(std::move(answer)) {
        listener_ = listen_loopback(port_);
        thread_ = std::thread([this] { serve(); });
    }
    ~scripted_http_server() {
        stopping_ = true;
        thread_.join();
        ::close(listener_);
    }
    [[nodiscard]] std::string origin() const { return "http://127.0.0.1:" + std::to_string(port_); }
    [[nodiscard]] std::vector<seen_request> seen() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return seen_;
    }

private:
    void serve() {
        int fd = -1;
        std::string in;
        while (!stopping_) {
            pollfd p{fd < 0 ? listener_ : fd, POLLIN, 0};
            ::poll(&p, 1, 5);
            if ((p.revents & (POLLIN | POLLHUP)) == 0) {
                continue;
            }
            if (fd < 0) {
                fd = ::accept(listener_, nullptr, nullptr);
                in.clear();
                continue;
            }
            char buf[65536];
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) {
                ::close(fd);
                fd = -1;
                continue;
            }
            in.append(buf, static_cast<size_t>(n));
            for (;;) {
                const size_t end = in.find("\r\n\r\n");
                if (end == std::string::npos) {
                    break;
                }
                seen_request r;
                const std::string head = in.substr(0, end);
                const size_t line_end = head.find("\r\n");
                const std::string line = head.substr(0, line_end);
                r.method = line.substr(0, line.find(' '));
                r.target = line.substr(line.find(' ') + 1, line.rfind(' ') - line.find(' ') - 1);
                r.headers = line_end == std::string::npos ? "" : head.substr(line_end + 2);
                size_t length = 0;
                if (const size_t at = r.headers.find("Content-Length: "); at != std::string::npos) {
                    length = std::stoul(r.headers.substr(at + 16));
                }
                if (in.size() < end + 4 + length) {
                    break;
                }
                r.body = in.substr(end + 4, length);
                in.erase(0, end + 4 + length);
                size_t index = 0;
                {
                    const std::lock_guard<std::mutex> lock(mutex_);
                    index = seen_.size();
                    seen_.push_back(r);
                }
                const std::string out = answer_(r, index);
                ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
            }
        }
        if (fd >= 0) {
            ::close(fd);
        }
    }

    script answer_;
    int listener_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mutex_;
    std::vector<seen_request> seen_;
    std::thread thread_;
};

std::string redirect(int status, const std::string& location) {
    return fmt::format("HTTP/1.1 {} Moved\r\nLocation: {}\r\nContent-Length: 5\r\n\r\nmoved",
                       status, location);
}

const std::string ok_answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

std::unique_ptr<transport> transport_to(const std::string& uri, std::string authorization = "") {
    endpoint_options o;
    o.sink_uri = uri;
    o.authorization = std::move(authorization);
    auto factory = make_https_transport(o);
    REQUIRE(factory);
    return (*factory)();
}

}  // namespace

// Go's client, which CockroachDB's sink uses, follows redirects: 301/302/303 turn the POST into
// a GET without a body, and a 2xx on it counts as success (the rows are lost); 307/308 send the
// same body again. At most 10.
TEST_CASE("transport: redirects are followed as Go's client follows them", "[emulator]") {
    const std::string body = R"({"payload":[],"length":0})";
    for (const int status : {301, 302, 303}) {
        INFO(status);
        scripted_http_server server([&](const seen_request& r, size_t) {
            return r.target == "/db/public" ? redirect(status, "/elsewhere?x=1") : ok_answer;
        });
        auto t = transport_to(server.origin() + "/db/public", "Bearer secret");
        const send_outcome out = t->post(body, send_mode::whole);
        INFO(out.error);
        CHECK(out.status == 200);  // a success, although nothing received the rows
        const auto seen = server.seen();
        REQUIRE(seen.size() == 2);
        CHECK(seen[0].method == "POST");
        CHECK(seen[0].body == body);
        CHECK(seen[1].method == "GET");
        CHECK(seen[1].target == "/elsewhere?x=1");
        // Go's Host is the URL's host as written, its port included, on every hop.
        const std::string host = "Host: " + server.origin().substr(std::string("http://").size());
        CHECK_THAT(seen[0].headers, Catch::Contains(host + "\r\n"));
        CHECK_THAT(seen[1].headers, Catch::Contains(host + "\r\n"));
        CHECK(seen[1].body.empty());
        CHECK_THAT(seen[1].headers, !Catch::Contains("Content-Length: 2"));
        CHECK_THAT(seen[1].headers, Catch::Contains("Authorization: Bearer secret"));  // same host
    }
    for (const int status : {307, 308}) {
        INFO(status);
        scripted_http_server other([&](const seen_request&, size_t) { return ok_answer; });
        // Absolute, to another origin: the body goes again.
        scripted_http_server server([&](const seen_request&, size_t) {
            return redirect(status, other.origin() + "/moved/here");
        });
        auto t = transport_to(server.origin() + "/db/public", "Bearer secret");
        const send_outcome out = t->post(body, send_mode::whole);
        INFO(out.error);
        CHECK(out.status == 200);
        const auto seen = other.seen();
        REQUIRE(seen.size() == 1);
        CHECK(seen[0].method == "POST");
        CHECK(seen[0].target == "/moved/here");
        CHECK(seen[0].body == body);
        CHECK_THAT(seen[0].headers,
                   Catch::Contains("Host: " + other.origin().substr(std::string("http://").size()) +
                                   "\r\n"));
        CHECK_THAT(seen[0].headers, Catch::Contains("Referer: " + server.origin() + "/db/public"));
        // The next request starts from the sink URI again.
        CHECK(t->post(body, send_mode::whole).status == 200);
        CHECK(server.seen().size() == 2);
    }
    {
        // Authorization goes only within the sink's domain, and stays dropped once a hop has left
        // it (localhost is another domain than 127.0.0.1), back on the sink's host included.
        std::string sink_origin;
        scripted_http_server away(
            [&](const seen_request&, size_t) { return redirect(307, sink_origin + "/back"); });
        const std::string away_port = away.origin().substr(away.origin().rfind(':') + 1);
        scripted_http_server server([&](const seen_request& r, size_t) {
            return r.target == "/db/public"
                       ? redirect(307, "http://localhost:" + away_port + "/away")
                       : ok_answer;
        });
        sink_origin = server.origin();
        const send_outcome out = transport_to(server.origin() + "/db/public", "Bearer secret")
                                     ->post(body, send_mode::whole);
        INFO(out.error);
        CHECK(out.status == 200);
        const auto seen = server.seen();
        REQUIRE(seen.size() == 2);
        CHECK_THAT(seen[0].headers, Catch::Contains("Authorization: Bearer secret"));
        CHECK(seen[1].target == "/back");
        CHECK_THAT(seen[1].headers, !Catch::Contains("Authorization"));
        REQUIRE(away.seen().size() == 1);
        CHECK_THAT(away.seen()[0].headers, !Catch::Contains("Authorization"));
    }
    {
        // A redirect to a receiver that answers GET with 405 (as the replicator does): a failure.
        scripted_http_server server([&](const seen_request& r, size_t) {
            return r.method == "GET" ? std::string(
                                           "HTTP/1.1 405 Method Not Allowed\r\n"
                                           "Content-Length: 4\r\n\r\nPOST")
                                     : redirect(302, "/db/public");
        });
        const send_outcome out =
            transport_to(server.origin() + "/db/public")->post(body, send_mode::whole);
        CHECK(out.status == 405);
        CHECK(out.error == "405 Method Not Allowed: POST");
    }
    {
        // A 3xx without Location is an answer like any other: a failure.
        scripted_http_server server([&](const seen_request&, size_t) {
            return std::string("HTTP/1.1 302 Found\r\nContent-Length: 2\r\n\r\nno");
        });
        const send_outcome out =
            transport_to(server.origin() + "/db/public")->post(body, send_mode::whole);
        CHECK(out.status == 302);
        CHECK(out.error == "302 Found: no");
    }
    {
        // An endless loop: Go's client sends 10 requests and refuses the 10th redirect.
        scripted_http_server server(
            [&](const seen_request& r, size_t) { return redirect(307, r.target + "x"); });
        const send_outcome out =
            transport_to(server.origin() + "/db/public")->post(body, send_mode::whole);
        CHECK(out.status == 0);
        CHECK(out.error == "Post \"/db/publicxxxxxxxxxx\": stopped after 10 redirects");
        CHECK(server.seen().size() == 10);
    }
}
