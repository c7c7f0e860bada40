#pragma once
// Connection strings, as MOLT and the replicator take them:
//
//   postgres://user:pass@host:5432/db?sslmode=verify-full&sslrootcert=...   (also postgresql://,
//                                                                            and pg://, pgx://)
//   mysql://user:pass@host:3306/db?sslmode=verify-full&sslrootcert=.%2fca.crt   URL form
//   mysql://user:pass@tcp(host:3306)/db?...                                     go-sql-driver DSN
//   oracle://C%23%23MIGRATION_USER:pass@host:1521/ORCLPDB1                       (also ora://)
//
// User, password, database and query values are percent-decoded ('+' in the query is a space,
// as Go reads it). Passwords with any of : / ? # @ % must be percent-encoded, in both MySQL
// forms. TLS parameters (sslmode, sslrootcert, sslcert, sslkey) are checked here; whether the
// files exist is checked when connecting. A MySQL URL takes only the parameters it can honour
// (sslmode, sslrootcert, sslcert, sslkey; go-sql-driver's tls, timeout, readTimeout,
// writeTimeout, charset, parseTime, loc=UTC); any other is refused by name. Error messages never
// contain the password.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "molt/common/dialect.hpp"
#include "molt/common/result.hpp"

namespace molt {

/// libpq's sslmode values; MySQL targets take the same names (as MOLT does).
enum class ssl_mode { unset, disable, allow, prefer, require, verify_ca, verify_full };

[[nodiscard]] std::string_view to_string(ssl_mode mode) noexcept;

struct tls_params {
    ssl_mode mode = ssl_mode::unset;
    std::string root_cert;  ///< sslrootcert: CA file
    std::string cert;       ///< sslcert: client certificate file
    std::string key;        ///< sslkey: client key file
};

class conn_url {
public:
    [[nodiscard]] static result<conn_url> parse(std::string_view text);

    [[nodiscard]] molt::dialect dialect() const noexcept { return dialect_; }
    [[nodiscard]] const std::string& scheme() const noexcept { return scheme_; }
    [[nodiscard]] const std::string& user() const noexcept { return user_; }
    [[nodiscard]] const std::string& password() const noexcept { return password_; }
    [[nodiscard]] bool has_password() const noexcept { return has_password_; }
    [[nodiscard]] const std::string& host() const noexcept { return host_; }
    [[nodiscard]] std::optional<uint16_t> port() const noexcept { return port_; }
    /// The port, or the dialect's default (5432, 3306, 1521).
    [[nodiscard]] uint16_t port_or_default() const noexcept;
    /// Database name (PostgreSQL, MySQL) or service name (Oracle).
    [[nodiscard]] const std::string& database() const noexcept { return database_; }
    /// Every query parameter, decoded, in the order written (TLS parameters included).
    [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& params() const noexcept {
        return params_;
    }
    [[nodiscard]] std::optional<std::string_view> param(std::string_view key) const noexcept;
    [[nodiscard]] const tls_params& tls() const noexcept { return tls_; }
    /// True when written in the go-sql-driver form user:pass@tcp(host:port)/db.
    [[nodiscard]] bool is_mysql_dsn() const noexcept { return mysql_dsn_; }

    /// URL form with the password replaced by "xxxxx"; safe to log.
    [[nodiscard]] std::string redacted() const;
    /// Canonical URL form (a MySQL DSN becomes mysql://user:pass@host:port/db), re-encoded.
    /// Contains the password: for handing to a child process, never for logs.
    [[nodiscard]] std::string to_url() const;
    /// libpq key=value conninfo (also what SOCI's postgresql backend takes). PostgreSQL only.
    [[nodiscard]] std::string libpq_conninfo() const;
    /// SOCI mysql backend connection string. MySQL only. Carries the CA, certificate and key
    /// files and the go-sql-driver timeouts (timeout, readTimeout, writeTimeout as
    /// connect_timeout, read_timeout, write_timeout in whole seconds). SOCI 4.0.3 cannot demand
    /// server-certificate verification: the replicator's MySQL dialect checks the certificate
    /// after the handshake (see common/README.md).
    [[nodiscard]] std::string soci_mysql() const;

private:
    [[nodiscard]] std::string build_url(bool redact) const;

    molt::dialect dialect_ = molt::dialect::postgres;
    std::string scheme_;
    std::string user_;
    std::string password_;
    bool has_password_ = false;
    std::string host_;
    std::optional<uint16_t> port_;
    std::string database_;
    std::vector<std::pair<std::string, std::string>> params_;
    tls_params tls_;
    bool mysql_dsn_ = false;
};

}  // namespace molt
