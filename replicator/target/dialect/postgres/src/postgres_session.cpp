// PostgreSQL sessions: SOCI postgresql, errors classified by SQLSTATE, broken connections
// detected from libpq's status.
#include <algorithm>
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

class postgres_session final : public soci_session {
public:
    using soci_session::soci_session;

private:
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
                         fmt::format("{} (SQLSTATE {})", clean(e.what()), state), why};
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
        return std::unique_ptr<target_session>(std::make_unique<postgres_session>(std::move(s)));
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
