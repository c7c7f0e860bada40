// sql_client over the MariaDB client library, for MySQL and MariaDB targets. Unlike SOCI, the
// C API can demand that the server's certificate be verified, so molt honours sslmode=verify-ca
// and verify-full.
#include <mysql.h>

#include <fmt/format.h>

#include "molt/common/redact.hpp"

#include "db/clients.hpp"

namespace molt::fetch {
namespace {

class mysql_client final : public sql_client {
public:
    mysql_client(MYSQL* conn, std::string what) : conn_(conn), what_(std::move(what)) {}
    ~mysql_client() override { mysql_close(conn_); }

    result<sql_rows> query(std::string_view sql) override {
        code_.clear();
        if (mysql_real_query(conn_, sql.data(), static_cast<unsigned long>(sql.size())) != 0) {
            return failure();
        }
        sql_rows out;
        MYSQL_RES* res = mysql_store_result(conn_);
        if (res == nullptr) {
            if (mysql_field_count(conn_) != 0) {
                return failure();
            }
            return out;  // a statement without a result set
        }
        const unsigned ncols = mysql_num_fields(res);
        const MYSQL_FIELD* fields = mysql_fetch_fields(res);
        for (unsigned c = 0; c < ncols; ++c) {
            out.columns.emplace_back(fields[c].name);
        }
        while (MYSQL_ROW row = mysql_fetch_row(res)) {
            const unsigned long* lengths = mysql_fetch_lengths(res);
            std::vector<std::optional<std::string>> values;
            values.reserve(ncols);
            for (unsigned c = 0; c < ncols; ++c) {
                if (row[c] == nullptr) {
                    values.emplace_back(std::nullopt);
                } else {
                    values.emplace_back(std::string(row[c], lengths[c]));
                }
            }
            out.rows.push_back(std::move(values));
        }
        mysql_free_result(res);
        return out;
    }

    const std::string& last_error_code() const override { return code_; }
    molt::dialect dialect() const override { return molt::dialect::mysql; }

private:
    error failure() {
        const unsigned number = mysql_errno(conn_);
        // 2000-2999 are client-side errors (connection lost, timeouts): not the server's code.
        code_ = number >= 2000 && number < 3000 ? "" : std::to_string(number);
        return error{errc::database_error, fmt::format("{}: {} (error {})", what_,
                                                       redact_secrets(mysql_error(conn_)), number)};
    }

    MYSQL* conn_;
    std::string what_;
    std::string code_;
};

}  // namespace

result<std::unique_ptr<sql_client>> connect_mysql(const conn_url& url, std::string_view what,
                                                  std::chrono::seconds timeout) {
    MYSQL* conn = mysql_init(nullptr);
    if (conn == nullptr) {
        return error{errc::internal, fmt::format("{}: cannot initialise the MySQL client", what)};
    }
    const auto seconds = static_cast<unsigned>(timeout.count());
    mysql_options(conn, MYSQL_OPT_CONNECT_TIMEOUT, &seconds);
    mysql_options(conn, MYSQL_OPT_READ_TIMEOUT, &seconds);
    mysql_options(conn, MYSQL_OPT_WRITE_TIMEOUT, &seconds);
    const tls_params& tls = url.tls();
    const bool use_tls = tls.mode != ssl_mode::unset && tls.mode != ssl_mode::disable;
    if (use_tls) {
        mysql_ssl_set(conn, tls.key.empty() ? nullptr : tls.key.c_str(),
                      tls.cert.empty() ? nullptr : tls.cert.c_str(),
                      tls.root_cert.empty() ? nullptr : tls.root_cert.c_str(), nullptr, nullptr);
        const my_bool enforce = 1;
        mysql_optionsv(conn, MYSQL_OPT_SSL_ENFORCE, &enforce);
        // verify-ca: the chain; verify-full: the chain and the host name. MariaDB Connector/C
        // checks both together, so verify-ca is checked as strictly as verify-full.
        const my_bool verify =
            tls.mode == ssl_mode::verify_ca || tls.mode == ssl_mode::verify_full ? 1 : 0;
        mysql_optionsv(conn, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
    }
    // As the Go driver MOLT uses: always TCP, 127.0.0.1 when no host is given. "localhost" is
    // kept for the certificate's name but dialled over TCP.
    const std::string host = url.host().empty() ? "127.0.0.1" : url.host();
    const unsigned protocol = MYSQL_PROTOCOL_TCP;
    mysql_options(conn, MYSQL_OPT_PROTOCOL, &protocol);
    if (mysql_real_connect(conn, host.c_str(), url.user().c_str(),
                           url.has_password() ? url.password().c_str() : nullptr,
                           url.database().empty() ? nullptr : url.database().c_str(),
                           url.port_or_default(), nullptr, 0) == nullptr) {
        std::string message = redact_secrets(mysql_error(conn));
        mysql_close(conn);
        return error{errc::unavailable, fmt::format("{}: error connect: cannot connect to {}: {}",
                                                    what, url.redacted(), message)};
    }
    return std::unique_ptr<sql_client>(std::make_unique<mysql_client>(conn, std::string(what)));
}

}  // namespace molt::fetch
