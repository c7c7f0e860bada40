#include "molt/test/fault_proxy.hpp"

#include <atomic>
#include <charconv>
#include <exception>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace molt::test {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::redirect_error;
using asio::use_awaitable;
using asio::ip::tcp;
using boost::system::error_code;

enum class proxy_mode { pass, blackhole, refuse };

// What the control side sets and the connections read.
struct settings {
    proxy_mode mode = proxy_mode::pass;
    std::chrono::milliseconds latency{0};
    uint64_t cut_after = 0;  // 0: no cut
    fault_direction cut_direction = fault_direction::either;
};

constexpr size_t read_chunk = 64 * 1024;
constexpr size_t max_control_line = 4096;
constexpr uint64_t max_latency_ms = 3'600'000;
constexpr int up = static_cast<int>(fault_direction::up);
constexpr int down = static_cast<int>(fault_direction::down);

std::string_view to_string(proxy_mode m) {
    switch (m) {
    case proxy_mode::pass: return "pass";
    case proxy_mode::blackhole: return "blackhole";
    case proxy_mode::refuse: return "refuse";
    }
    return "?";
}

std::string_view to_string(fault_direction d) {
    switch (d) {
    case fault_direction::up: return "up";
    case fault_direction::down: return "down";
    case fault_direction::either: return "either";
    }
    return "?";
}

// Close with SO_LINGER 0: the kernel sends RST instead of FIN and drops unsent data.
void reset_socket(tcp::socket& socket) {
    error_code ignored;
    if (socket.is_open()) {
        socket.set_option(asio::socket_base::linger(true, 0), ignored);
        socket.close(ignored);
    }
}

// One proxied connection; touched only on the proxy's thread.
struct session {
    explicit session(tcp::socket accepted)
        : client(std::move(accepted)), server(client.get_executor()) {}
    tcp::socket client;
    tcp::socket server;
    uint64_t sent[2] = {0, 0};  // forwarded, indexed by fault_direction up/down
    int eofs = 0;               // directions that ended with an orderly EOF
    bool closed = false;
};
using session_ptr = std::shared_ptr<session>;

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) {
            ++i;
        }
        const size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') {
            ++i;
        }
        if (i > start) {
            out.push_back(line.substr(start, i - start));
        }
    }
    return out;
}

bool parse_u64(std::string_view text, uint64_t& out) {
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return ec == std::errc() && ptr == end;
}

constexpr std::string_view usage =
    "pass | latency MS | reset [refuse] | blackhole | cut-after N [up|down|either] | stats";

}  // namespace

struct fault_proxy::impl {
    explicit impl(fault_proxy& owner) : owner_(owner) {}
    fault_proxy& owner_;  // answers the control protocol
    // Declared first so that it is destroyed last: the handlers it destroys own sockets.
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
    tcp::resolver::results_type target_;
    tcp::acceptor acceptor_{io_};
    tcp::acceptor control_{io_};
    // Never expires; cancel() wakes every connection waiting out a black-hole.
    asio::steady_timer wake_{io_, asio::steady_timer::time_point::max()};
    std::set<session_ptr> sessions_;

    mutable std::mutex mutex_;
    settings settings_;

    std::atomic<uint64_t> accepted_{0};
    std::atomic<uint64_t> active_{0};
    std::atomic<uint64_t> bytes_[2] = {0, 0};
    std::atomic<uint64_t> resets_{0};

    std::thread thread_;
    uint16_t port_ = 0;

    settings current() const {
        const std::lock_guard lock(mutex_);
        return settings_;
    }

    // Runs f on the proxy's thread and returns when it has run.
    void run_on_io(const std::function<void()>& f) {
        if (io_.get_executor().running_in_this_thread()) {
            f();
            return;
        }
        std::promise<void> done;
        asio::post(io_, [&] {
            try {
                f();
                done.set_value();
            } catch (...) {
                done.set_exception(std::current_exception());
            }
        });
        done.get_future().get();
    }

    void update(const std::function<void(settings&)>& change) {
        {
            const std::lock_guard lock(mutex_);
            change(settings_);
        }
        run_on_io([this] { wake_.cancel(); });
    }

    void close_session(const session_ptr& s, bool rst, bool fault) {
        if (s->closed) {
            return;
        }
        s->closed = true;
        // Counted before the sockets close, so a peer that sees the close sees the count too.
        sessions_.erase(s);
        --active_;
        if (fault) {
            ++resets_;
        }
        for (tcp::socket* socket : {&s->client, &s->server}) {
            if (rst) {
                reset_socket(*socket);
            } else {
                error_code ignored;
                socket->close(ignored);
            }
        }
        wake_.cancel();
    }

    void reset_all(bool refuse_new) {
        {
            const std::lock_guard lock(mutex_);
            if (refuse_new) {
                settings_.mode = proxy_mode::refuse;
            }
        }
        run_on_io([this] {
            const std::vector<session_ptr> open(sessions_.begin(), sessions_.end());
            for (const session_ptr& s : open) {
                close_session(s, true, true);
            }
        });
    }

    // Waits while the proxy is black-holed (or until s is closed).
    awaitable<void> gate(session_ptr s) {
        while (!s->closed && current().mode == proxy_mode::blackhole) {
            error_code ignored;
            co_await wake_.async_wait(redirect_error(use_awaitable, ignored));
        }
    }

    awaitable<void> accept_loop() {
        for (;;) {
            error_code ec;
            tcp::socket socket = co_await acceptor_.async_accept(redirect_error(use_awaitable, ec));
            if (!acceptor_.is_open()) {
                co_return;
            }
            if (ec) {
                continue;
            }
            ++accepted_;
            if (current().mode == proxy_mode::refuse) {
                ++resets_;
                reset_socket(socket);
                continue;
            }
            auto s = std::make_shared<session>(std::move(socket));
            sessions_.insert(s);
            ++active_;
            asio::co_spawn(io_, run(s), asio::detached);
        }
    }

    awaitable<void> run(session_ptr s) {
        co_await gate(s);
        if (s->closed) {
            co_return;
        }
        error_code ec;
        co_await asio::async_connect(s->server, target_, redirect_error(use_awaitable, ec));
        if (s->closed) {
            co_return;
        }
        if (ec) {
            close_session(s, true, false);  // the target refused: the client sees a reset
            co_return;
        }
        s->client.set_option(tcp::no_delay(true), ec);
        s->server.set_option(tcp::no_delay(true), ec);
        asio::co_spawn(io_, pump(s, up), asio::detached);
        asio::co_spawn(io_, pump(s, down), asio::detached);
    }

    // Copies one direction of s: read a chunk, hold it for the latency and while black-holed,
    // forward what the cut allows. An EOF is forwarded as a shutdown, a reset as a reset.
    awaitable<void> pump(session_ptr s, int direction) {
        tcp::socket& from = direction == up ? s->client : s->server;
        tcp::socket& to = direction == up ? s->server : s->client;
        std::vector<char> buffer(read_chunk);
        for (;;) {
            error_code ec;
            const size_t n = co_await from.async_read_some(asio::buffer(buffer),
                                                           redirect_error(use_awaitable, ec));
            if (s->closed) {
                co_return;
            }
            const auto delay = current().latency;
            if (delay.count() > 0) {
                asio::steady_timer hold(io_, delay);
                error_code ignored;
                co_await hold.async_wait(redirect_error(use_awaitable, ignored));
            }
            co_await gate(s);
            if (s->closed) {
                co_return;
            }
            if (ec == asio::error::eof) {
                error_code ignored;
                to.shutdown(tcp::socket::shutdown_send, ignored);
                if (++s->eofs == 2) {
                    close_session(s, false, false);
                }
                co_return;
            }
            if (ec) {
                close_session(s, true, false);
                co_return;
            }
            const settings now = current();
            size_t forward = n;
            bool cut = false;
            if (now.cut_after > 0 && (now.cut_direction == fault_direction::either ||
                                      static_cast<int>(now.cut_direction) == direction)) {
                const uint64_t sent = s->sent[direction];
                const uint64_t room = sent >= now.cut_after ? 0 : now.cut_after - sent;
                if (n >= room) {
                    forward = static_cast<size_t>(room);
                    cut = true;
                }
            }
            if (forward > 0) {
                // Counted when handed to the socket, so a peer that read them sees the count.
                s->sent[direction] += forward;
                bytes_[direction] += forward;
                co_await asio::async_write(to, asio::buffer(buffer.data(), forward),
                                           redirect_error(use_awaitable, ec));
                if (s->closed) {
                    co_return;
                }
                if (ec) {
                    close_session(s, true, false);
                    co_return;
                }
            }
            if (cut) {
                close_session(s, true, true);
                co_return;
            }
        }
    }

    awaitable<void> control_loop() {
        for (;;) {
            error_code ec;
            tcp::socket socket = co_await control_.async_accept(redirect_error(use_awaitable, ec));
            if (!control_.is_open()) {
                co_return;
            }
            if (!ec) {
                asio::co_spawn(io_, control_session(std::move(socket)), asio::detached);
            }
        }
    }

    awaitable<void> control_session(tcp::socket socket) {
        std::string data;
        for (;;) {
            error_code ec;
            const size_t n = co_await asio::async_read_until(
                socket, asio::dynamic_buffer(data, max_control_line), '\n',
                redirect_error(use_awaitable, ec));
            if (ec) {
                co_return;
            }
            const std::string reply =
                owner_.command(std::string_view(data).substr(0, n - 1)) + "\n";
            data.erase(0, n);
            co_await asio::async_write(socket, asio::buffer(reply),
                                       redirect_error(use_awaitable, ec));
            if (ec) {
                co_return;
            }
        }
    }

    std::string stats_line() const {
        const settings now = current();
        std::ostringstream out;
        out << "accepted=" << accepted_ << " active=" << active_ << " up=" << bytes_[up]
            << " down=" << bytes_[down] << " resets=" << resets_ << " mode=" << to_string(now.mode)
            << " latency_ms=" << now.latency.count() << " cut_after=" << now.cut_after
            << " cut_direction=" << to_string(now.cut_direction);
        return out.str();
    }

    static void listen(tcp::acceptor& acceptor, const std::string& host, uint16_t port) {
        const tcp::endpoint at(asio::ip::make_address(host), port);
        acceptor.open(at.protocol());
        acceptor.set_option(tcp::acceptor::reuse_address(true));
        acceptor.bind(at);
        acceptor.listen();
    }

    void stop() {
        run_on_io([this] {
            error_code ignored;
            acceptor_.close(ignored);
            control_.close(ignored);
            const std::vector<session_ptr> open(sessions_.begin(), sessions_.end());
            for (const session_ptr& s : open) {
                close_session(s, false, false);
            }
        });
        work_.reset();
        io_.stop();
        thread_.join();
    }
};

fault_proxy::fault_proxy(const std::string& target_host, uint16_t target_port,
                         const std::string& listen_host, uint16_t listen_port)
    : impl_(std::make_unique<impl>(*this)) {
    tcp::resolver resolver(impl_->io_);
    impl_->target_ = resolver.resolve(target_host, std::to_string(target_port));
    impl::listen(impl_->acceptor_, listen_host, listen_port);
    impl_->port_ = impl_->acceptor_.local_endpoint().port();
    asio::co_spawn(impl_->io_, impl_->accept_loop(), asio::detached);
    impl_->thread_ = std::thread([io = &impl_->io_] { io->run(); });
}

fault_proxy::~fault_proxy() {
    impl_->stop();
}

uint16_t fault_proxy::port() const noexcept {
    return impl_->port_;
}

void fault_proxy::pass() {
    impl_->update([](settings& s) { s = settings{}; });
}

void fault_proxy::latency(std::chrono::milliseconds each_way) {
    impl_->update([each_way](settings& s) { s.latency = each_way; });
}

void fault_proxy::reset(bool refuse_new) {
    impl_->reset_all(refuse_new);
}

void fault_proxy::blackhole() {
    impl_->update([](settings& s) { s.mode = proxy_mode::blackhole; });
}

void fault_proxy::cut_after(uint64_t bytes, fault_direction direction) {
    impl_->update([bytes, direction](settings& s) {
        s.cut_after = bytes;
        s.cut_direction = direction;
    });
}

fault_proxy_stats fault_proxy::stats() const {
    return {impl_->accepted_, impl_->active_, impl_->bytes_[up], impl_->bytes_[down],
            impl_->resets_};
}

std::string fault_proxy::stats_line() const {
    return impl_->stats_line();
}

std::string fault_proxy::command(std::string_view line) {
    const std::vector<std::string_view> w = words(line);
    const auto error = [&](std::string_view why) {
        return "error: " + std::string(why) + " (commands: " + std::string(usage) + ")";
    };
    const std::string_view name = w.empty() ? std::string_view() : w[0];
    uint64_t n = 0;
    if (name == "pass" && w.size() == 1) {
        pass();
    } else if (name == "latency" && w.size() == 2 && parse_u64(w[1], n) && n <= max_latency_ms) {
        latency(std::chrono::milliseconds(n));
    } else if (name == "reset" && (w.size() == 1 || (w.size() == 2 && w[1] == "refuse"))) {
        reset(w.size() == 2);
    } else if (name == "blackhole" && w.size() == 1) {
        blackhole();
    } else if (name == "cut-after" && (w.size() == 2 || w.size() == 3) && parse_u64(w[1], n)) {
        const std::string_view d = w.size() == 3 ? w[2] : "either";
        if (d != "up" && d != "down" && d != "either") {
            return error("cut-after: the direction is up, down or either");
        }
        cut_after(n, d == "up"     ? fault_direction::up
                     : d == "down" ? fault_direction::down
                                   : fault_direction::either);
    } else if (name == "stats" && w.size() == 1) {
        return stats_line();
    } else {
        return error("cannot read \"" + std::string(line) + "\"");
    }
    return "ok";
}

uint16_t fault_proxy::listen_control(const std::string& host, uint16_t port) {
    uint16_t bound = 0;
    impl_->run_on_io([&] {
        impl::listen(impl_->control_, host, port);
        bound = impl_->control_.local_endpoint().port();
        asio::co_spawn(impl_->io_, impl_->control_loop(), asio::detached);
    });
    return bound;
}

}  // namespace molt::test
