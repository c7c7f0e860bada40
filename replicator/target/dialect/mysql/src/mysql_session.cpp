// MySQL/MariaDB sessions: SOCI mysql, errors classified by MySQL error number.
#include <fmt/format.h>
#include <soci/mysql/soci-mysql.h>

#include "molt/common/redact.hpp"
#include "molt/replicator/dialect/mysql.hpp"
#include "molt/replicator/dialect/soci_session.hpp"

namespace molt::replicator::mysql {
namespace {

class mysql_session final : public soci_session {
public:
    using soci_session::soci_session;

private:
    error classify_current_exception() override {
        try {
            throw;
        } catch (const soci::mysql_soci_error& e) {
            const retry_class why = classify_error_number(e.err_num_);
            return error{why == retry_class::reconnect ? errc::unavailable : errc::database_error,
                         fmt::format("{} (MySQL error {})", clean(e.what()), e.err_num_), why};
        } catch (const std::exception& e) {
            return error{errc::database_error, clean(e.what()), retry_class::fatal};
        }
    }
};

}  // namespace

result<std::unique_ptr<target_session>> connect(const conn_url& url,
                                                std::chrono::nanoseconds lock_timeout) {
    try {
        auto s = std::make_unique<soci::session>(soci::mysql, url.soci_mysql());
        *s << "SET NAMES utf8mb4";
        *s << "SET SESSION time_zone = '+00:00'";
        *s << "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',STRICT_ALL_TABLES')";
        const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(lock_timeout).count();
        if (seconds > 0) {
            *s << fmt::format("SET SESSION innodb_lock_wait_timeout = {}", seconds);
        }
        return std::unique_ptr<target_session>(std::make_unique<mysql_session>(std::move(s)));
    } catch (const std::exception& e) {
        std::string message = e.what();
        while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
            message.pop_back();
        }
        return error{
            errc::unavailable,
            fmt::format("cannot connect to {}: {}", url.redacted(), redact_secrets(message)),
            retry_class::reconnect};
    }
}

}  // namespace molt::replicator::mysql
