#pragma once
// The few SQL round trips molt makes itself (checks, catalogue, changefeed jobs), on the source
// (CockroachDB, pgwire via libpq) and on the target (PostgreSQL via libpq, MySQL/MariaDB via
// the MariaDB client library, Oracle via unixODBC and Oracle's ODBC driver). Text in, text out;
// every wait is bounded (connect and statement timeouts; through ODBC, as far as the driver
// honours SQL_ATTR_LOGIN_TIMEOUT and SQL_ATTR_QUERY_TIMEOUT); errors carry the server's code
// (SQLSTATE, MySQL error number, or ORA number) and message, never the password.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "molt/common/conn_url.hpp"
#include "molt/common/result.hpp"

namespace molt::fetch {

struct sql_rows {
    std::vector<std::string> columns;
    std::vector<std::vector<std::optional<std::string>>> rows;

    /// Index of a column by name, or nullopt.
    [[nodiscard]] std::optional<size_t> column(std::string_view name) const;
};

class sql_client {
public:
    sql_client() = default;
    sql_client(const sql_client&) = delete;
    sql_client& operator=(const sql_client&) = delete;
    virtual ~sql_client() = default;

    /// Runs one statement (no parameters: callers quote literals with quote_literal()).
    [[nodiscard]] virtual result<sql_rows> query(std::string_view sql) = 0;
    /// The server's code of the last failure: SQLSTATE ("42501"), a MySQL error number ("1142"),
    /// or for Oracle the ORA number ("1031"; the SQLSTATE when the message has none); empty when
    /// the last failure was not the server's (connection lost, timeout).
    [[nodiscard]] virtual const std::string& last_error_code() const = 0;
    [[nodiscard]] virtual molt::dialect dialect() const = 0;
};

/// Connects. `what` ("--source", "--target") prefixes every error. TLS follows the URL's
/// sslmode; for MySQL, verify-ca/verify-full verify the server certificate (and, for
/// verify-full, its host name).
[[nodiscard]] result<std::unique_ptr<sql_client>> connect_sql(const conn_url& url,
                                                              std::string_view what,
                                                              std::chrono::seconds timeout);

/// A client over an ODBC driver by a DSN-less connection string (what Oracle targets use; public
/// so that tests can reach it through another database's driver). `display` names the database
/// in errors (a redacted URL); `d` is what dialect() answers.
[[nodiscard]] result<std::unique_ptr<sql_client>> connect_odbc(const std::string& connection_string,
                                                               const std::string& display,
                                                               std::string_view what,
                                                               molt::dialect d,
                                                               std::chrono::seconds timeout);

/// 'text' with quotes doubled (and, for MySQL, backslashes too).
[[nodiscard]] std::string quote_literal(molt::dialect d, std::string_view text);
/// "name" (PostgreSQL/CockroachDB) or `name` (MySQL), quotes doubled.
[[nodiscard]] std::string quote_ident(molt::dialect d, std::string_view name);

}  // namespace molt::fetch
