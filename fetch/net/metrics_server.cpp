#include "molt/fetch/metrics_server.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "molt/common/log.hpp"

namespace molt::fetch {
namespace {

using clock = std::chrono::steady_clock;

constexpr size_t max_request_head = 8 * 1024;  // request line and headers
/// After the response, unread request bytes are drained for at most this long so that closing
/// the socket does not reset the connection before the client has read the answer.
constexpr auto linger_bound = std::chrono::milliseconds(250);
constexpr std::string_view prometheus_type = "text/plain; version=0.0.4; charset=utf-8";

struct response {
    int status = 200;
    std::string_view reason = "OK";
    std::string_view content_type = "text/plain; charset=utf-8";
    std::string body;
    std::string_view extra_headers;
};

response plain(int status, std::string_view reason, std::string body) {
    return {status, reason, "text/plain; charset=utf-8", std::move(body), {}};
}

/// The pure part: a response for a request line's method and target.
response handle(std::string_view method, std::string_view target, metrics::registry& registry,
                const std::function<std::string()>& status_json) {
    const std::string_view path = target.substr(0, target.find_first_of("?#"));
    if (method != "GET") {
        response r = plain(405, "Method Not Allowed", "method not allowed\n");
        r.extra_headers = "Allow: GET\r\n";
        return r;
    }
    try {
        if (path == "/metrics") {
            return {200, "OK", prometheus_type, registry.expose(), {}};
        }
        if (path == "/healthz") {
            return plain(200, "OK", "OK\n");
        }
        if (path == "/status") {
            return {200, "OK", "application/json", status_json ? status_json() : "{}", {}};
        }
    } catch (const std::exception& e) {
        // A failing collector or status callback must not end the server thread.
        log::warn().str("path", path).err(e.what()).msg("metrics server: request failed");
        return plain(500, "Internal Server Error", "internal error\n");
    }
    return plain(404, "Not Found", "404 page not found\n");
}

std::string serialize(const response& r) {
    return fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{}",
        r.status, r.reason, r.content_type, r.body.size(), r.extra_headers, r.body);
}

enum class readiness { ready, timed_out, stopping };

/// Waits for `events` on `fd`, the deadline, or a signal on `stop_fd`, whichever comes first.
readiness wait(int fd, short events, int stop_fd, clock::time_point deadline) {
    for (;;) {
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
        if (left <= 0) {
            return readiness::timed_out;
        }
        pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
        const int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(left, 60'000)));
        if (n < 0 && errno != EINTR) {
            return readiness::timed_out;
        }
        if (n > 0) {
            return fds[1].revents != 0 ? readiness::stopping : readiness::ready;
        }
    }
}

class fd_guard {
public:
    explicit fd_guard(int fd) : fd_(fd) {}
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
    ~fd_guard() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    [[nodiscard]] int get() const noexcept { return fd_; }
    int release() noexcept { return std::exchange(fd_, -1); }

private:
    int fd_;
};

/// A listening socket on the first address of `node` that binds; the reason of the last
/// failure otherwise.
result<int> listen_on_node(const std::string& node, uint16_t port, bool dual_stack) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    if (const int rc = ::getaddrinfo(node.c_str(), service.c_str(), &hints, &found); rc != 0) {
        return error{errc::io_error, ::gai_strerror(rc)};
    }
    std::vector<const addrinfo*> candidates;
    for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
        candidates.push_back(ai);
    }
    // Like Go for a name such as "localhost": IPv4 first.
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const addrinfo* a, const addrinfo* b) {
                         return a->ai_family == AF_INET && b->ai_family != AF_INET;
                     });
    std::string why = "no address";
    for (const addrinfo* ai : candidates) {
        fd_guard fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                             ai->ai_protocol));
        if (fd.get() < 0) {
            why = std::strerror(errno);
            continue;
        }
        const int one = 1;
        const int zero = 0;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6 && dual_stack) {
            ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        }
        if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd.get(), 64) != 0) {
            why = std::strerror(errno);
            continue;
        }
        ::freeaddrinfo(found);
        return fd.release();
    }
    ::freeaddrinfo(found);
    return error{errc::io_error, why};
}

/// A listening socket for `addr`; for an empty host, every interface (IPv6 dual-stack when
/// available, as Go listens on ":port").
result<int> listen_on(const net_address& addr) {
    const auto fail = [&](std::string_view why) {
        return error{errc::io_error,
                     fmt::format("metrics server: cannot listen on {}: {}", addr.to_string(), why)};
    };
    // Every interface: IPv6 dual-stack first, IPv4 alone where IPv6 is unavailable.
    const std::vector<std::string> nodes = addr.host.empty()
                                               ? std::vector<std::string>{"::", "0.0.0.0"}
                                               : std::vector<std::string>{addr.host};
    std::string why = "no address";
    for (const std::string& node : nodes) {
        auto fd = listen_on_node(node, addr.port, addr.host.empty());
        if (fd) {
            return *fd;
        }
        why = std::move(fd).error().message();
    }
    return fail(why);
}

uint16_t bound_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    if (ss.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    }
    return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
}

}  // namespace

struct metrics_server::impl {
    impl(net_address a, metrics::registry& r, std::function<std::string()> s,
         std::chrono::milliseconds t, int listen, int stop)
        : address(std::move(a)),
          registry(r),
          status_json(std::move(s)),
          io_timeout(t),
          listen_fd(listen),
          stop_fd(stop) {}

    net_address address;
    metrics::registry& registry;
    std::function<std::string()> status_json;
    std::chrono::milliseconds io_timeout;
    fd_guard listen_fd;
    fd_guard stop_fd;
    std::thread thread;

    void run();
    void serve(int fd);
    bool write_all(int fd, std::string_view data);
};

void metrics_server::impl::run() {
    for (;;) {
        pollfd fds[2] = {{listen_fd.get(), POLLIN, 0}, {stop_fd.get(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            continue;  // EINTR
        }
        if (fds[1].revents != 0) {
            return;
        }
        const int fd = ::accept4(listen_fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            fd_guard conn(fd);
            serve(conn.get());
        } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            // Out of descriptors: back off instead of spinning on a ready listen socket.
            pollfd stop{stop_fd.get(), POLLIN, 0};
            if (::poll(&stop, 1, 100) > 0) {
                return;
            }
        }
    }
}

bool metrics_server::impl::write_all(int fd, std::string_view data) {
    const auto deadline = clock::now() + io_timeout;
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n >= 0) {
            data.remove_prefix(static_cast<size_t>(n));
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (wait(fd, POLLOUT, stop_fd.get(), deadline) != readiness::ready) {
                return false;
            }
        } else if (errno != EINTR) {
            return false;
        }
    }
    return true;
}

void metrics_server::impl::serve(int fd) {
    const auto deadline = clock::now() + io_timeout;
    std::string head;
    char buf[4096];
    size_t end = std::string::npos;
    while (end == std::string::npos && head.size() <= max_request_head) {
        if (wait(fd, POLLIN, stop_fd.get(), deadline) != readiness::ready) {
            return;  // a slow or idle client: drop it
        }
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            return;
        }
        if (n > 0) {
            head.append(buf, static_cast<size_t>(n));
            end = head.find("\r\n\r\n");
        }
    }
    response r;
    if (end == std::string::npos) {
        r = plain(431, "Request Header Fields Too Large", "request header too large\n");
    } else {
        const std::string_view line = std::string_view(head).substr(0, head.find("\r\n"));
        const size_t sp1 = line.find(' ');
        const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
        if (sp2 == std::string_view::npos || !line.substr(sp2 + 1).starts_with("HTTP/1.")) {
            r = plain(400, "Bad Request", "malformed request\n");
        } else {
            r = handle(line.substr(0, sp1), line.substr(sp1 + 1, sp2 - sp1 - 1), registry,
                       status_json);
        }
    }
    if (!write_all(fd, serialize(r))) {
        return;
    }
    // Half-close, then read what the client may still send until it closes (bounded): closing
    // with unread bytes would reset the connection and could destroy the response in flight.
    ::shutdown(fd, SHUT_WR);
    const auto linger_until = clock::now() + linger_bound;
    for (size_t drained = 0; drained < 1024 * 1024;) {
        if (wait(fd, POLLIN, stop_fd.get(), linger_until) != readiness::ready) {
            return;
        }
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            return;
        }
        drained += n > 0 ? static_cast<size_t>(n) : 0;
    }
}

result<std::unique_ptr<metrics_server>> metrics_server::start(
    const net_address& addr, metrics::registry& registry, std::function<std::string()> status_json,
    std::chrono::milliseconds io_timeout) {
    auto listener = listen_on(addr);
    if (!listener) {
        return std::move(listener).error();
    }
    fd_guard listen_fd(*listener);
    fd_guard stop_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (stop_fd.get() < 0) {
        return error{errc::io_error,
                     fmt::format("metrics server: eventfd: {}", std::strerror(errno))};
    }
    net_address bound{addr.host, bound_port(listen_fd.get())};
    auto p = std::make_unique<impl>(std::move(bound), registry, std::move(status_json), io_timeout,
                                    listen_fd.release(), stop_fd.release());
    p->thread = std::thread([raw = p.get()] { raw->run(); });
    return std::unique_ptr<metrics_server>(new metrics_server(std::move(p)));
}

metrics_server::metrics_server(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

metrics_server::~metrics_server() {
    const uint64_t one = 1;
    // An eventfd write of 1 cannot fail short of overflow; the thread sees it in every poll.
    [[maybe_unused]] const ssize_t n = ::write(impl_->stop_fd.get(), &one, sizeof one);
    if (impl_->thread.joinable()) {
        impl_->thread.join();
    }
}

const net_address& metrics_server::address() const noexcept {
    return impl_->address;
}

}  // namespace molt::fetch
