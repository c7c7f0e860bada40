// Sessions through SOCI's ODBC backend: connect without prompting, run the dialect's session
// setup, classify the first diagnostic record of every failure.
#include "molt/replicator/dialect/odbc_session.hpp"

#include <sql.h>
#include <sqlext.h>

#include <chrono>

#include <fmt/format.h>
#include <soci/odbc/soci-odbc.h>

#include "molt/common/redact.hpp"
#include "molt/replicator/dialect/soci_session.hpp"

namespace molt::replicator::odbc {
namespace {

diagnostic diagnostic_of(const soci::odbc_soci_error& e) {
    diagnostic d;
    d.sqlstate = reinterpret_cast<const char*>(e.odbc_error_code());
    d.native = e.native_error_code();
    d.message = reinterpret_cast<const char*>(e.odbc_error_message());
    while (!d.message.empty() && (d.message.back() == '\n' || d.message.back() == ' ')) {
        d.message.pop_back();
    }
    d.message = redact_secrets(d.message);
    return d;
}

std::string describe(const diagnostic& d) {
    return fmt::format("{} (SQLSTATE {}, native error {})", d.message, d.sqlstate, d.native);
}

// A parameter array's execution cancelled by its query timeout (retried).
struct timed_out : soci::soci_error {
    using soci::soci_error::soci_error;
};

class odbc_session final : public soci_session {
public:
    odbc_session(std::unique_ptr<soci::session> s, const session_options& options)
        : soci_session(std::move(s), options.max_array_bytes),
          ping_(options.ping),
          classify_(options.classify),
          query_timeout_seconds_(
              std::chrono::ceil<std::chrono::seconds>(options.query_timeout).count()) {}

    result<void> ping() override { return execute(ping_, {}); }

private:
    // A status the driver never writes: a driver without per-row statuses leaves it.
    static constexpr SQLUSMALLINT not_reported = 0xffff;

    static SQLHSTMT handle_of(soci::statement& st) {
        return static_cast<soci::odbc_statement_backend*>(st.get_backend())->hstmt_;
    }

    void before_array_execute(soci::statement& st, size_t rows) override {
        array_started_ = std::chrono::steady_clock::now();
        statuses_.assign(rows, not_reported);
        SQLSetStmtAttr(handle_of(st), SQL_ATTR_PARAM_STATUS_PTR, statuses_.data(), 0);
        if (query_timeout_seconds_ > 0) {
            SQLSetStmtAttr(
                handle_of(st), SQL_ATTR_QUERY_TIMEOUT,
                reinterpret_cast<SQLPOINTER>(static_cast<SQLULEN>(query_timeout_seconds_)), 0);
        }
    }

    void after_array_execute(soci::statement& st, size_t rows) override {
        for (size_t r = 0; r < rows; ++r) {
            if (statuses_[r] == SQL_PARAM_ERROR || statuses_[r] == SQL_PARAM_UNUSED) {
                // The first diagnostic record names the failure.
                throw soci::odbc_soci_error(
                    SQL_HANDLE_STMT, handle_of(st),
                    fmt::format("row {} of {} of a parameter array was {}", r + 1, rows,
                                statuses_[r] == SQL_PARAM_ERROR ? "refused" : "not run"));
            }
        }
    }

    void array_execute_failed(soci::statement& /*st*/) override {
        // SOCI's own failure left no diagnostic record. One that ran for the whole query
        // timeout is the timeout (psqlODBC: HYT00; Oracle: ORA-01013), which SOCI 4.0.3 turns
        // into this; anything else stays what it was.
        const auto ran = std::chrono::steady_clock::now() - array_started_;
        if (query_timeout_seconds_ > 0 &&
            ran >= std::chrono::seconds(query_timeout_seconds_) - std::chrono::milliseconds(100)) {
            throw timed_out(
                fmt::format("the statement ran for its query timeout ({} s) and was "
                            "cancelled",
                            query_timeout_seconds_));
        }
    }

    error classify_current_exception() override {
        error e = classify_exception();
        if (e.retry() != retry_class::reconnect && connection_dead()) {
            // Some failures on a lost connection carry no connection SQLSTATE (SOCI reports a
            // describe step that failed after the driver lost the socket): ask the driver.
            return error{errc::unavailable, e.message() + " (the connection is lost)",
                         retry_class::reconnect};
        }
        return e;
    }

    error classify_exception() {
        try {
            throw;
        } catch (const timed_out& e) {
            return error{errc::timeout, e.get_error_message(), retry_class::retry_now};
        } catch (const soci::odbc_soci_error& e) {
            const diagnostic d = diagnostic_of(e);
            const retry_class why = classify_ ? classify_(d) : classify_sqlstate(d.sqlstate);
            return error{why == retry_class::reconnect ? errc::unavailable : errc::database_error,
                         describe(d), why};
        } catch (const soci::soci_error& e) {
            return error{errc::database_error, clean(e.get_error_message()), retry_class::fatal};
        } catch (const std::exception& e) {
            return error{errc::database_error, clean(e.what()), retry_class::fatal};
        }
    }

    // SQL_ATTR_CONNECTION_DEAD (ODBC 3.5): the driver's own view, without a round trip.
    bool connection_dead() {
        auto* backend = static_cast<soci::odbc_session_backend*>(sql().get_backend());
        SQLUINTEGER dead = SQL_CD_FALSE;
        const SQLRETURN rc =
            SQLGetConnectAttr(backend->hdbc_, SQL_ATTR_CONNECTION_DEAD, &dead, 0, nullptr);
        return SQL_SUCCEEDED(rc) && dead == SQL_CD_TRUE;
    }

    std::string ping_;
    std::function<retry_class(const diagnostic&)> classify_;
    std::vector<SQLUSMALLINT> statuses_;
    long long query_timeout_seconds_;
    std::chrono::steady_clock::time_point array_started_;
};

bool driver_missing(const diagnostic& d) {
    return d.sqlstate == "IM002" || d.sqlstate == "IM003" ||
           d.message.find("Can't open lib") != std::string::npos;
}

}  // namespace

retry_class classify_sqlstate(std::string_view s) noexcept {
    if (s.substr(0, 2) == "08" || s == "HYT01") {
        return retry_class::reconnect;
    }
    if (s == "40001" || s == "40P01" || s == "HYT00") {
        return retry_class::retry_now;
    }
    return retry_class::fatal;
}

result<std::unique_ptr<target_session>> connect(const session_options& options) {
    std::unique_ptr<soci::session> s;
    try {
        soci::connection_parameters parameters(soci::odbc, options.connection_string);
        // SOCI asks the driver to prompt for what is missing unless told not to; a daemon has
        // nobody to answer.
        parameters.set_option(soci::odbc_option_driver_complete,
                              std::to_string(SQL_DRIVER_NOPROMPT));
        s = std::make_unique<soci::session>(parameters);
    } catch (const soci::odbc_soci_error& e) {
        const diagnostic d = diagnostic_of(e);
        if (driver_missing(d)) {
            return error{errc::invalid_argument,
                         fmt::format("cannot connect to {}: the ODBC driver manager cannot load "
                                     "the driver: {}",
                                     options.display, describe(d))};
        }
        return error{errc::unavailable,
                     fmt::format("cannot connect to {}: {}", options.display, describe(d)),
                     retry_class::reconnect};
    } catch (const std::exception& e) {
        return error{
            errc::unavailable,
            fmt::format("cannot connect to {}: {}", options.display, redact_secrets(e.what())),
            retry_class::reconnect};
    }
    auto session = std::make_unique<odbc_session>(std::move(s), options);
    for (const std::string& statement : options.init) {
        if (auto done = session->execute(statement, {}); !done) {
            return done.error().with_context(
                fmt::format("cannot set up a session on {} ({})", options.display, statement));
        }
    }
    return std::unique_ptr<target_session>(std::move(session));
}

}  // namespace molt::replicator::odbc
