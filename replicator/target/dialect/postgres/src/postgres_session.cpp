// PostgreSQL sessions: SOCI postgresql, errors classified by SQLSTATE, broken connections
// detected from libpq's status.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <libpq-fe.h>
#include <soci/postgresql/soci-postgresql.h>

#include "molt/common/log.hpp"
#include "molt/replicator/dialect/postgres.hpp"
#include "molt/replicator/dialect/soci_session.hpp"

namespace molt::replicator::postgres {
namespace {

// libpq's default prints NOTICE and WARNING messages (e.g. `relation "_replicator_progress"
// already exists, skipping`) raw on stderr, between the JSON log lines. Log them instead:
// WARNING at warn, everything else (NOTICE, INFO, DEBUG, LOG) at debug.
void log_notice(void* /*unused*/, const PGresult* notice) {
    const auto field = [notice](int code) -> std::string_view {
        const char* value = PQresultErrorField(notice, code);
        return value != nullptr ? value : "";
    };
    const std::string_view severity = field(PG_DIAG_SEVERITY_NONLOCALIZED);
    std::string_view message = field(PG_DIAG_MESSAGE_PRIMARY);
    if (message.empty()) {
        message = PQresultErrorMessage(notice);
    }
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
        message.remove_suffix(1);
    }
    (severity == "WARNING" ? log::warn() : log::debug())
        .str("severity", severity)
        .str("sqlstate", field(PG_DIAG_SQLSTATE))
        .str("notice", log::sanitize(message))
        .msg("PostgreSQL notice");
}

// A server that stops answering (a frozen host, a black-holed route) is noticed by nothing
// libpq does while it waits for an answer: statement_timeout runs on the server, and keepalives
// and tcp_user_timeout stay quiet while the peer's kernel acknowledges. The watchdog shuts the
// socket of a call that outlives its limit down, so the call fails at once (class 08, the
// session is dropped) instead of blocking its thread. One thread serves every session.
class call_watchdog {
public:
    static call_watchdog& instance() {
        // Never destroyed: its thread waits for the process's whole life.
        static call_watchdog* w = new call_watchdog;
        return *w;
    }
    /// Watches a duplicate of `fd` (the same socket, but a number libpq cannot close and the
    /// system cannot hand to another socket meanwhile).
    std::optional<uint64_t> arm(int fd, std::chrono::steady_clock::time_point deadline) {
        const int own = ::dup(fd);
        if (own < 0) {
            return std::nullopt;
        }
        const std::lock_guard<std::mutex> lock(mutex_);
        const uint64_t id = next_++;
        armed_.emplace(id, entry{own, deadline});
        changed_.notify_one();
        return id;
    }
    void disarm(uint64_t id) noexcept {
        int own = -1;
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            if (const auto it = armed_.find(id); it != armed_.end()) {
                own = it->second.fd;
                armed_.erase(it);
            } else if (const auto fired = fired_.find(id); fired != fired_.end()) {
                own = fired->second;
                fired_.erase(fired);
            }
        }
        if (own >= 0) {
            ::close(own);
        }
    }

private:
    struct entry {
        int fd;
        std::chrono::steady_clock::time_point deadline;
    };
    call_watchdog() : thread_([this] { watch(); }) { thread_.detach(); }
    [[noreturn]] void watch() {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            if (armed_.empty()) {
                changed_.wait(lock);
                continue;
            }
            auto first = std::min_element(armed_.begin(), armed_.end(), [](auto& a, auto& b) {
                return a.second.deadline < b.second.deadline;
            });
            // A copy: the entry may be disarmed (erased) while this waits.
            const auto deadline = first->second.deadline;
            if (std::chrono::steady_clock::now() < deadline) {
                changed_.wait_until(lock, deadline);
                continue;
            }
            log::warn().msg(
                "PostgreSQL did not answer within the statement timeout and a margin; "
                "closing the connection");
            ::shutdown(first->second.fd, SHUT_RDWR);
            fired_.emplace(first->first, first->second.fd);  // closed by disarm
            armed_.erase(first);
        }
    }
    std::mutex mutex_;
    std::condition_variable changed_;
    std::map<uint64_t, entry> armed_;
    std::map<uint64_t, int> fired_;
    uint64_t next_ = 0;
    std::thread thread_;
};

class postgres_session final : public soci_session {
public:
    postgres_session(std::unique_ptr<soci::session> s, std::chrono::nanoseconds call_limit)
        : soci_session(std::move(s)), call_limit_(call_limit) {}
    postgres_session(const postgres_session&) = delete;
    postgres_session& operator=(const postgres_session&) = delete;
    ~postgres_session() override {
        // The connection closes next, which frees its prepared statements on the server. SOCI
        // would first send a DEALLOCATE for each (a round trip apiece, outside any call's
        // watchdog): on a connection that stopped answering, often the reason it is closed, each
        // would wait until the network healed. Without a name, SOCI sends nothing.
        for_each_kept_statement([](soci::statement& st) {
            if (auto* backend =
                    static_cast<soci::postgresql_statement_backend*>(st.get_backend())) {
                backend->statementName_.clear();
            }
        });
    }

private:
    void before_call() override {
        auto* backend = static_cast<soci::postgresql_session_backend*>(sql().get_backend());
        const int fd = backend != nullptr ? PQsocket(backend->conn_) : -1;
        if (call_limit_.count() > 0 && fd >= 0) {
            watch_ =
                call_watchdog::instance().arm(fd, std::chrono::steady_clock::now() + call_limit_);
        }
    }
    void after_call() noexcept override {
        if (watch_) {
            call_watchdog::instance().disarm(*watch_);
            watch_.reset();
        }
    }

    std::chrono::nanoseconds call_limit_;
    std::optional<uint64_t> watch_;

    bool connection_ok() {
        auto* backend = static_cast<soci::postgresql_session_backend*>(sql().get_backend());
        return backend != nullptr && PQstatus(backend->conn_) == CONNECTION_OK;
    }

    error classify_current_exception() override {
        try {
            throw;
        } catch (const soci::postgresql_soci_error& e) {
            const std::string state = e.sqlstate();
            const retry_class why =
                connection_ok() ? classify_sqlstate(state) : retry_class::reconnect;
            return error{why == retry_class::reconnect ? errc::unavailable : errc::database_error,
                         fmt::format("{} (SQLSTATE {})", clean(e.get_error_message()), state), why};
        } catch (const soci::soci_error& e) {
            // Without SOCI's context ("while preparing/executing <statement> with <values>").
            const retry_class why = connection_ok() ? retry_class::fatal : retry_class::reconnect;
            return error{why == retry_class::reconnect ? errc::unavailable : errc::database_error,
                         clean(e.get_error_message()), why};
        } catch (const std::exception& e) {
            const retry_class why = connection_ok() ? retry_class::fatal : retry_class::reconnect;
            return error{why == retry_class::reconnect ? errc::unavailable : errc::database_error,
                         clean(e.what()), why};
        }
    }
};

// libpq's network bounds, unless the URL sets them: connecting (TCP, TLS, authentication)
// within the statement timeout, at least 2 s (libpq's minimum) and at most 10 s; keepalives so
// a silent peer is noticed while waiting for an answer; and tcp_user_timeout, so data the
// server never acknowledges (a black-holed connection) fails the call after the statement
// timeout plus 5 s instead of the kernel's ~15 minutes of retransmissions.
std::string with_timeouts(const conn_url& url, std::chrono::nanoseconds statement_timeout) {
    std::string out = url.libpq_conninfo();
    const bool bounded = statement_timeout > std::chrono::nanoseconds::zero();
    const long long seconds = std::chrono::ceil<std::chrono::seconds>(statement_timeout).count();
    const long long connect = bounded ? std::clamp<long long>(seconds, 2, 10) : 10;
    const long long unacknowledged_ms = bounded ? (seconds + 5) * 1000 : 60'000;
    const std::pair<std::string_view, std::string> defaults[] = {
        {"connect_timeout", std::to_string(connect)},
        {"keepalives", "1"},
        {"keepalives_idle", "10"},
        {"keepalives_interval", "5"},
        {"keepalives_count", "3"},
        {"tcp_user_timeout", std::to_string(unacknowledged_ms)},
    };
    for (const auto& [key, value] : defaults) {
        if (!url.param(key)) {
            out += fmt::format(" {}={}", key, value);
        }
    }
    return out;
}

}  // namespace

result<std::unique_ptr<target_session>> connect(const conn_url& url,
                                                std::chrono::nanoseconds statement_timeout) {
    std::string conninfo = with_timeouts(url, statement_timeout);
    if (!url.param("application_name")) {
        conninfo += " application_name=replicator";
    }
    try {
        auto s = std::make_unique<soci::session>(soci::postgresql, conninfo);
        auto* backend = static_cast<soci::postgresql_session_backend*>(s->get_backend());
        PQsetNoticeReceiver(backend->conn_, &log_notice, nullptr);
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(statement_timeout);
        if (ms.count() > 0) {
            *s << fmt::format("SET statement_timeout = {}", ms.count());
        }
        // The server ends a statement at statement_timeout; a call still unanswered 2 s later
        // is not going to be answered.
        const auto call_limit = ms.count() > 0 ? statement_timeout + std::chrono::seconds(2)
                                               : std::chrono::nanoseconds::zero();
        return std::unique_ptr<target_session>(
            std::make_unique<postgres_session>(std::move(s), call_limit));
    } catch (const std::exception& e) {
        std::string message = e.what();
        while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
            message.pop_back();
        }
        return error{errc::unavailable,
                     fmt::format("cannot connect to {}: {}", url.redacted(), message),
                     retry_class::reconnect};
    }
}

}  // namespace molt::replicator::postgres
