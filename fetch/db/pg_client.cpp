// sql_client over libpq, for CockroachDB sources and PostgreSQL targets.
#include <fmt/format.h>
#include <libpq-fe.h>

#include "molt/common/log.hpp"
#include "molt/common/redact.hpp"

#include "db/clients.hpp"

namespace molt::fetch {
namespace {

// libpq's messages end with a newline and may carry DETAIL/HINT lines; keep the first line.
std::string first_line(const char* text) {
    std::string s = text != nullptr ? text : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
        s.pop_back();
    }
    if (const auto nl = s.find('\n'); nl != std::string::npos) {
        s.resize(nl);
    }
    return redact_secrets(s);
}

class pg_client final : public sql_client {
public:
    pg_client(PGconn* conn, std::string what) : conn_(conn), what_(std::move(what)) {}
    ~pg_client() override { PQfinish(conn_); }

    result<sql_rows> query(std::string_view sql) override {
        code_.clear();
        PGresult* res = PQexec(conn_, std::string(sql).c_str());
        const ExecStatusType status = PQresultStatus(res);
        if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
            const char* state =
                res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
            code_ = state != nullptr ? state : "";
            std::string message = first_line(res != nullptr && PQresultErrorMessage(res)[0] != 0
                                                 ? PQresultErrorMessage(res)
                                                 : PQerrorMessage(conn_));
            PQclear(res);
            return error{errc::database_error, code_.empty() ? fmt::format("{}: {}", what_, message)
                                                             : fmt::format("{}: {} (SQLSTATE {})",
                                                                           what_, message, code_)};
        }
        sql_rows out;
        const int ncols = PQnfields(res);
        for (int c = 0; c < ncols; ++c) {
            out.columns.emplace_back(PQfname(res, c));
        }
        const int nrows = PQntuples(res);
        out.rows.reserve(static_cast<size_t>(nrows));
        for (int r = 0; r < nrows; ++r) {
            std::vector<std::optional<std::string>> row;
            row.reserve(static_cast<size_t>(ncols));
            for (int c = 0; c < ncols; ++c) {
                if (PQgetisnull(res, r, c) != 0) {
                    row.emplace_back(std::nullopt);
                } else {
                    row.emplace_back(std::string(PQgetvalue(res, r, c),
                                                 static_cast<size_t>(PQgetlength(res, r, c))));
                }
            }
            out.rows.push_back(std::move(row));
        }
        PQclear(res);
        return out;
    }

    const std::string& last_error_code() const override { return code_; }
    molt::dialect dialect() const override { return molt::dialect::postgres; }

private:
    PGconn* conn_;
    std::string what_;
    std::string code_;
};

// Server NOTICEs (e.g. "... already exists, skipping") are not for molt's user.
void ignore_notice(void* /*arg*/, const char* /*message*/) {}

}  // namespace

result<std::unique_ptr<sql_client>> connect_postgres(const conn_url& url, std::string_view what,
                                                     std::chrono::seconds timeout) {
    std::string conninfo = url.libpq_conninfo();
    if (!url.param("connect_timeout")) {
        conninfo += fmt::format(" connect_timeout={}", timeout.count());
    }
    // A server that vanishes without a reset must not hang molt for TCP's retransmission
    // timeout (about 15 minutes): keepalives and a TCP user timeout bound every wait.
    conninfo += fmt::format(
        " keepalives=1 keepalives_idle=5 keepalives_interval=5 keepalives_count=3 "
        "tcp_user_timeout={}",
        timeout.count() * 1000);
    // Every statement molt runs is small; a stalled server must not hang molt. The user's own
    // options (e.g. CockroachDB Cloud's --cluster=...) are kept.
    std::string options = std::string(url.param("options").value_or(""));
    options +=
        (options.empty() ? "" : " ") + fmt::format("-c statement_timeout={}s", timeout.count());
    std::string quoted;
    for (const char c : options) {
        if (c == '\\' || c == '\'') {
            quoted += '\\';
        }
        quoted += c;
    }
    conninfo += " options='" + quoted + "'";
    PGconn* conn = PQconnectdb(conninfo.c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
        std::string message = first_line(PQerrorMessage(conn));
        PQfinish(conn);
        return error{errc::unavailable, fmt::format("{}: error connect: cannot connect to {}: {}",
                                                    what, url.redacted(), message)};
    }
    PQsetNoticeProcessor(conn, ignore_notice, nullptr);
    return std::unique_ptr<sql_client>(std::make_unique<pg_client>(conn, std::string(what)));
}

}  // namespace molt::fetch
