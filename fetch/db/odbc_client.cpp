// sql_client over unixODBC (Oracle targets: Oracle's ODBC driver, loaded at run time; tested
// through the PostgreSQL ODBC driver). Every value comes back as text; the last failure's code
// is the ORA number when the message has one ("ORA-01031" -> "1031"), else the SQLSTATE.
#include <sql.h>
#include <sqlext.h>

#include <cstring>

#include <fmt/format.h>

#include "molt/common/odbc_setup.hpp"
#include "molt/common/redact.hpp"

#include "db/clients.hpp"

namespace molt::fetch {
namespace {

struct diagnostic {
    std::string sqlstate;
    std::string message;
};

diagnostic diagnose(SQLSMALLINT type, SQLHANDLE handle) {
    diagnostic d;
    SQLCHAR state[SQL_SQLSTATE_SIZE + 1] = {0};
    SQLINTEGER native = 0;
    SQLCHAR text[SQL_MAX_MESSAGE_LENGTH + 1] = {0};
    SQLSMALLINT length = 0;
    if (SQL_SUCCEEDED(
            SQLGetDiagRecA(type, handle, 1, state, &native, text, sizeof text, &length))) {
        d.sqlstate = reinterpret_cast<const char*>(state);
        d.message = reinterpret_cast<const char*>(text);
    }
    while (!d.message.empty() && (d.message.back() == '\n' || d.message.back() == ' ')) {
        d.message.pop_back();
    }
    d.message = redact_secrets(d.message.empty() ? "no diagnostic from the driver" : d.message);
    return d;
}

class odbc_client final : public sql_client {
public:
    odbc_client(SQLHENV env, SQLHDBC dbc, std::string what, molt::dialect d,
                std::chrono::seconds timeout)
        : env_(env), dbc_(dbc), what_(std::move(what)), dialect_(d), timeout_(timeout) {}
    ~odbc_client() override {
        SQLDisconnect(dbc_);
        SQLFreeHandle(SQL_HANDLE_DBC, dbc_);
        SQLFreeHandle(SQL_HANDLE_ENV, env_);
    }

    result<sql_rows> query(std::string_view sql) override {
        code_.clear();
        SQLHSTMT st = SQL_NULL_HSTMT;
        if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, dbc_, &st))) {
            return failure(SQL_HANDLE_DBC, dbc_);
        }
        struct statement_guard {
            SQLHSTMT h;
            ~statement_guard() { SQLFreeHandle(SQL_HANDLE_STMT, h); }
        } guard{st};
        SQLSetStmtAttr(st, SQL_ATTR_QUERY_TIMEOUT,
                       reinterpret_cast<SQLPOINTER>(static_cast<SQLULEN>(timeout_.count())), 0);
        const std::string text(sql);
        const SQLRETURN rc = SQLExecDirectA(
            st, reinterpret_cast<SQLCHAR*>(const_cast<char*>(text.c_str())), SQL_NTS);
        sql_rows out;
        if (rc == SQL_NO_DATA) {
            return out;  // a statement that touched no row
        }
        if (!SQL_SUCCEEDED(rc)) {
            return failure(SQL_HANDLE_STMT, st);
        }
        SQLSMALLINT columns = 0;
        if (!SQL_SUCCEEDED(SQLNumResultCols(st, &columns))) {
            return failure(SQL_HANDLE_STMT, st);
        }
        for (SQLSMALLINT c = 1; c <= columns; ++c) {
            SQLCHAR name[256] = {0};
            SQLSMALLINT length = 0;
            SQLDescribeColA(st, c, name, sizeof name, &length, nullptr, nullptr, nullptr, nullptr);
            out.columns.emplace_back(reinterpret_cast<const char*>(name));
        }
        while (columns > 0) {
            const SQLRETURN fetched = SQLFetch(st);
            if (fetched == SQL_NO_DATA) {
                break;
            }
            if (!SQL_SUCCEEDED(fetched)) {
                return failure(SQL_HANDLE_STMT, st);
            }
            std::vector<std::optional<std::string>> row;
            for (SQLSMALLINT c = 1; c <= columns; ++c) {
                auto value = column_text(st, c);
                if (!value) {
                    return std::move(value).error();
                }
                row.push_back(std::move(*value));
            }
            out.rows.push_back(std::move(row));
        }
        return out;
    }

    const std::string& last_error_code() const override { return code_; }
    molt::dialect dialect() const override { return dialect_; }

private:
    // Column `c` of the current row as text, read in pieces (SQLGetData), nullopt for NULL.
    result<std::optional<std::string>> column_text(SQLHSTMT st, SQLSMALLINT c) {
        std::string value;
        char buffer[4096];
        for (;;) {
            SQLLEN indicator = 0;
            const SQLRETURN rc = SQLGetData(st, c, SQL_C_CHAR, buffer, sizeof buffer, &indicator);
            if (rc == SQL_NO_DATA) {
                break;
            }
            if (!SQL_SUCCEEDED(rc)) {
                return failure(SQL_HANDLE_STMT, st);
            }
            if (indicator == SQL_NULL_DATA) {
                return std::optional<std::string>();
            }
            // A piece that did not fit is NUL-terminated (a driver may stop short of the
            // buffer's end rather than split a character); one that fit has its length.
            const size_t piece =
                indicator == SQL_NO_TOTAL || indicator >= static_cast<SQLLEN>(sizeof buffer)
                    ? strnlen(buffer, sizeof buffer - 1)
                    : static_cast<size_t>(indicator);
            value.append(buffer, piece);
            if (rc == SQL_SUCCESS) {
                break;
            }
        }
        return std::optional<std::string>(std::move(value));
    }

    error failure(SQLSMALLINT type, SQLHANDLE handle) {
        const diagnostic d = diagnose(type, handle);
        // 08xxx: the connection, not the server, failed.
        // ORA-01031 -> "1031"; else the SQLSTATE; none for 08xxx (the connection failed).
        const int ora = odbc_setup::ora_number(d.message);
        code_ = d.sqlstate.rfind("08", 0) == 0 ? "" : ora != 0 ? std::to_string(ora) : d.sqlstate;
        return error{errc::database_error,
                     fmt::format("{}: {} (SQLSTATE {})", what_, d.message, d.sqlstate)};
    }

    SQLHENV env_;
    SQLHDBC dbc_;
    std::string what_;
    molt::dialect dialect_;
    std::chrono::seconds timeout_;
    std::string code_;
};

}  // namespace

result<std::unique_ptr<sql_client>> connect_odbc(const std::string& connection_string,
                                                 const std::string& display, std::string_view what,
                                                 molt::dialect d, std::chrono::seconds timeout) {
    SQLHENV env = SQL_NULL_HENV;
    SQLHDBC dbc = SQL_NULL_HDBC;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &env))) {
        return error{errc::internal, fmt::format("{}: cannot initialise unixODBC", what)};
    }
    SQLSetEnvAttr(env, SQL_ATTR_ODBC_VERSION, reinterpret_cast<SQLPOINTER>(SQL_OV_ODBC3), 0);
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_DBC, env, &dbc))) {
        SQLFreeHandle(SQL_HANDLE_ENV, env);
        return error{errc::internal, fmt::format("{}: cannot initialise unixODBC", what)};
    }
    const auto seconds = reinterpret_cast<SQLPOINTER>(static_cast<SQLULEN>(timeout.count()));
    SQLSetConnectAttr(dbc, SQL_ATTR_LOGIN_TIMEOUT, seconds, 0);
    SQLSetConnectAttr(dbc, SQL_ATTR_CONNECTION_TIMEOUT, seconds, 0);
    std::string text = connection_string;
    const SQLRETURN rc = SQLDriverConnectA(dbc, nullptr, reinterpret_cast<SQLCHAR*>(text.data()),
                                           SQL_NTS, nullptr, 0, nullptr, SQL_DRIVER_NOPROMPT);
    if (!SQL_SUCCEEDED(rc)) {
        const diagnostic diag = diagnose(SQL_HANDLE_DBC, dbc);
        SQLFreeHandle(SQL_HANDLE_DBC, dbc);
        SQLFreeHandle(SQL_HANDLE_ENV, env);
        return error{errc::unavailable,
                     fmt::format("{}: error connect: cannot connect to {}: {} (SQLSTATE {})", what,
                                 display, diag.message, diag.sqlstate)};
    }
    return std::unique_ptr<sql_client>(
        std::make_unique<odbc_client>(env, dbc, std::string(what), d, timeout));
}

result<std::unique_ptr<sql_client>> connect_oracle(const conn_url& url, std::string_view what,
                                                   std::chrono::seconds timeout) {
    odbc_setup::prepare_oracle_client_environment();
    auto driver =
        odbc_setup::choose_oracle_driver(odbc_setup::registered_drivers(), url.param("odbcDriver"));
    if (!driver) {
        return error{errc::unavailable,
                     fmt::format("{}: error connect: cannot connect to {}: {}", what,
                                 url.redacted(), driver.error().message())};
    }
    return connect_odbc(odbc_setup::oracle_connection_string(url, *driver), url.redacted(), what,
                        molt::dialect::oracle, timeout);
}

}  // namespace molt::fetch
