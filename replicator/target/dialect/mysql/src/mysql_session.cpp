// MySQL/MariaDB sessions: SOCI mysql, errors classified by MySQL error number, bounded network
// waits, and the server's certificate checked as sslmode asks.
#include <mysql.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <soci/mysql/soci-mysql.h>

// Connector/C keeps the TLS session behind the connection's I/O layer; these installed headers
// describe it (MYSQL::net.pvio->ctls->ssl). ma_tls.h, which ma_pvio.h includes with HAVE_TLS,
// uses uchar before ma_pvio.h declares it.
typedef unsigned char uchar;
#define HAVE_TLS
#include <ma_pvio.h>
#undef HAVE_TLS

#include "molt/common/log.hpp"
#include "molt/common/redact.hpp"
#include "molt/replicator/dialect/mysql.hpp"
#include "molt/replicator/dialect/soci_session.hpp"

#include "escape.hpp"

namespace molt::replicator::mysql {
namespace {

class mysql_session final : public soci_session {
public:
    using soci_session::soci_session;

private:
    // SOCI's MySQL backend substitutes parameters on the client too: each value escaped for
    // the connection and quoted, NULL as NULL, the i-th placeholder taking the i-th value.
    // Doing it here writes the statement once, where SOCI makes several objects and copies per
    // value (most of the replicator's allocations on a MySQL target). A placeholder is ':' then
    // letters, digits or '_', never inside a quoted string or a `quoted identifier`.
    bool send_inline(const std::string& text, const sql_params& params) override {
        MYSQL* conn = static_cast<soci::mysql_session_backend*>(sql().get_backend())->conn_;
        // Byte-by-byte escaping is exact for UTF-8 only. connect() sets utf8mb4; a userscript's
        // statement may set another, which the server reports (session tracking, on by default)
        // and the client library records. With tracking off the record stays utf8mb4, as SOCI's
        // own escaping would assume too.
        const std::string_view charset = mysql_character_set_name(conn);
        if (charset != "utf8mb4" && charset != "utf8mb3" && charset != "utf8") {
            return false;
        }
        // Whether the session's sql_mode has NO_BACKSLASH_ESCAPES: in every reply's status.
        const bool no_backslash_escapes =
            (conn->server_status & SERVER_STATUS_NO_BACKSLASH_ESCAPES) != 0;
        std::string out;
        size_t bytes = text.size();
        for (const auto& p : params) {
            bytes += p ? p->size() + p->size() / 8 + 2 : 4;
        }
        out.reserve(bytes);
        size_t next = 0;
        size_t from = 0;  // text[from, i) not copied yet
        char quote = 0;   // inside '...', "..." or `...`
        for (size_t i = 0; i < text.size(); ++i) {
            const char c = text[i];
            if (quote != 0) {
                if (c == '\\' && quote != '`' && !no_backslash_escapes) {
                    ++i;
                } else if (c == quote) {
                    quote = 0;  // a doubled quote reopens at once
                }
            } else if (c == '\'' || c == '"' || c == '`') {
                quote = c;
            } else if (c == ':' && i + 1 < text.size() && name_char(text[i + 1])) {
                out.append(text, from, i - from);
                while (i + 1 < text.size() && name_char(text[i + 1])) {
                    ++i;
                }
                from = i + 1;
                if (next++ >= params.size()) {
                    continue;  // counted, for the error below
                }
                const std::optional<std::string>& v = params[next - 1];
                if (v) {
                    out += '\'';
                    append_escaped(out, *v, no_backslash_escapes);
                    out += '\'';
                } else {
                    out += "NULL";
                }
            }
        }
        if (next != params.size()) {
            // A bug in the statement's making, not a database error (SOCI sent such a statement
            // cut short, or failed on an index out of range).
            throw std::invalid_argument(
                fmt::format("{} values for a statement with {} placeholders", params.size(), next));
        }
        out.append(text, from, text.size() - from);
        auto fail = [conn] {
            throw soci::mysql_soci_error(mysql_error(conn), static_cast<int>(mysql_errno(conn)));
        };
        if (mysql_real_query(conn, out.data(), static_cast<unsigned long>(out.size())) != 0) {
            fail();
        }
        // Every result read and freed (a userscript's statement may return rows, or several
        // results), so that the next statement finds the connection ready.
        for (;;) {
            if (mysql_field_count(conn) > 0) {
                MYSQL_RES* rows = mysql_store_result(conn);
                if (rows == nullptr) {
                    fail();
                }
                mysql_free_result(rows);
            }
            const int more = mysql_next_result(conn);
            if (more > 0) {
                fail();
            }
            if (more < 0) {
                return true;
            }
        }
    }

    static bool name_char(char c) noexcept {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
    }

    error classify_current_exception() override {
        try {
            throw;
        } catch (const soci::mysql_soci_error& e) {
            const retry_class why = classify_error_number(e.err_num_);
            return error{
                why == retry_class::reconnect ? errc::unavailable : errc::database_error,
                fmt::format("{} (MySQL error {})", clean(e.get_error_message()), e.err_num_), why};
        } catch (const soci::soci_error& e) {
            // Without SOCI's context ("while preparing/executing <statement> with <values>").
            return error{errc::database_error, clean(e.get_error_message()), retry_class::fatal};
        } catch (const std::exception& e) {
            return error{errc::database_error, clean(e.what()), retry_class::fatal};
        }
    }
};

long long whole_seconds_up(std::chrono::nanoseconds d) {
    return std::chrono::ceil<std::chrono::seconds>(d).count();
}

// SOCI's timeout options, unless the URL set them (timeout, readTimeout, writeTimeout): connect
// and handshake within the apply timeout, at least 2 s and at most 10 s; reads and writes within
// the apply timeout plus 5 s, so that the server's own lock-wait timeout answers first.
std::string with_timeouts(const conn_url& url, std::chrono::nanoseconds apply_timeout) {
    using std::chrono::seconds;
    std::string out = url.soci_mysql();
    const bool bounded = apply_timeout > std::chrono::nanoseconds::zero();
    const long long connect =
        bounded ? std::clamp<long long>(whole_seconds_up(apply_timeout), 2, 10) : 10;
    const long long io = bounded ? whole_seconds_up(apply_timeout + seconds(5)) : 60;
    if (!url.param("timeout")) {
        out += fmt::format(" connect_timeout={}", connect);
    }
    if (!url.param("readTimeout")) {
        out += fmt::format(" read_timeout={}", io);
    }
    if (!url.param("writeTimeout")) {
        out += fmt::format(" write_timeout={}", io);
    }
    return out;
}

// What sslmode demands of an open connection, checked before any statement runs. The chain is
// already verified during the handshake, before the credentials are sent: Connector/C verifies
// the peer whenever a CA file is given, and conn_url requires sslrootcert for require,
// verify-ca and verify-full. Connector/C 3.3 checks the host name only when asked to, which SOCI
// 4.0.3 cannot do; so it is checked here, on the certificate the server presented.
result<void> check_tls(MYSQL* conn, const conn_url& url) {
    const ssl_mode mode = url.tls().mode;
    if (mode != ssl_mode::require && mode != ssl_mode::verify_ca && mode != ssl_mode::verify_full) {
        return ok();
    }
    auto refuse = [&](std::string why) -> result<void> {
        return error{errc::unavailable, fmt::format("{} (sslmode={})", why, to_string(mode)),
                     retry_class::reconnect};
    };
    if (mysql_get_ssl_cipher(conn) == nullptr) {
        return refuse("the server did not agree to TLS");
    }
    const char* library = nullptr;
    if (mariadb_get_infov(conn, MARIADB_TLS_LIBRARY, &library) != 0 || library == nullptr ||
        std::string_view(library).rfind("OpenSSL", 0) != 0) {
        return refuse(
            fmt::format("cannot check the server's certificate: the MySQL client "
                        "library uses {}, not OpenSSL",
                        library == nullptr ? "an unknown TLS library" : library));
    }
    auto* ssl = conn->net.pvio != nullptr && conn->net.pvio->ctls != nullptr
                    ? static_cast<SSL*>(conn->net.pvio->ctls->ssl)
                    : nullptr;
    if (ssl == nullptr) {
        return refuse("cannot check the server's certificate: no TLS session");
    }
    const long verified = SSL_get_verify_result(ssl);
    if (verified != X509_V_OK) {
        return refuse(fmt::format("the server's certificate is not trusted: {}",
                                  X509_verify_cert_error_string(verified)));
    }
    X509* cert = SSL_get1_peer_certificate(ssl);
    if (cert == nullptr) {
        return refuse("the server presented no certificate");
    }
    result<void> outcome = ok();
    if (mode == ssl_mode::verify_full) {
        // The host as written (soci_mysql() dials 127.0.0.1 for localhost and for no host).
        const std::string host = url.host().empty() ? "127.0.0.1" : url.host();
        const bool matches = X509_check_ip_asc(cert, host.c_str(), 0) == 1 ||
                             X509_check_host(cert, host.data(), host.size(), 0, nullptr) == 1;
        if (!matches) {
            outcome =
                refuse(fmt::format("the server's certificate is not valid for host \"{}\"", host));
        }
    }
    X509_free(cert);
    return outcome;
}

std::string clean_message(std::string message) {
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
        message.pop_back();
    }
    return redact_secrets(message);
}

}  // namespace

bool read_committed_allowed(bool log_bin, std::string_view binlog_format) noexcept {
    return !log_bin || (binlog_format != "STATEMENT" && binlog_format != "statement");
}

result<std::unique_ptr<target_session>> connect(const conn_url& url,
                                                std::chrono::nanoseconds lock_timeout) {
    try {
        auto s = std::make_unique<soci::session>(soci::mysql, with_timeouts(url, lock_timeout));
        auto* backend = static_cast<soci::mysql_session_backend*>(s->get_backend());
        if (auto tls = check_tls(backend->conn_, url); !tls) {
            return tls.error().with_context(fmt::format("cannot connect to {}", url.redacted()));
        }
        // Through the client library, so that it knows the character set it escapes for.
        if (mysql_set_character_set(backend->conn_, "utf8mb4") != 0) {
            throw soci::mysql_soci_error(mysql_error(backend->conn_),
                                         static_cast<int>(mysql_errno(backend->conn_)));
        }
        *s << "SET SESSION time_zone = '+00:00'";
        *s << "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',STRICT_ALL_TABLES')";
        // InnoDB's default, REPEATABLE READ, locks gaps between keys: transactions writing
        // disjoint keys (the consistent mode's parallel chunks, commits held in order) then
        // wait on each other until one gives up. The apply path reads nothing it relies on
        // being repeatable. A server logging statements (binlog_format STATEMENT) refuses
        // writes at READ COMMITTED (error 1665): there the session keeps the default.
        std::string log_bin;
        std::string binlog_format;
        *s << "SELECT CAST(@@log_bin AS CHAR), CAST(@@binlog_format AS CHAR)", soci::into(log_bin),
            soci::into(binlog_format);
        if (read_committed_allowed(log_bin == "1", binlog_format)) {
            *s << "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED";
        } else {
            static std::atomic<bool> warned{false};
            if (!warned.exchange(true)) {
                log::warn().msg(
                    "the MySQL target logs statements (binlog_format STATEMENT): its sessions "
                    "stay at REPEATABLE READ, whose gap locks slow parallel transactions; "
                    "binlog_format ROW or MIXED avoids that");
            }
        }
        const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(lock_timeout).count();
        if (seconds > 0) {
            *s << fmt::format("SET SESSION innodb_lock_wait_timeout = {}", seconds);
        }
        return std::unique_ptr<target_session>(std::make_unique<mysql_session>(std::move(s)));
    } catch (const std::exception& e) {
        return error{
            errc::unavailable,
            fmt::format("cannot connect to {}: {}", url.redacted(), clean_message(e.what())),
            retry_class::reconnect};
    }
}

}  // namespace molt::replicator::mysql
