#include "molt/emulator/pg_client.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

namespace molt::emulator {
namespace {

std::string trimmed(const char* text) {
    std::string s = text == nullptr ? "" : text;
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
        s.pop_back();
    }
    return s;
}

}  // namespace

void pg_client::closer::operator()(pg_conn* c) const noexcept {
    PQfinish(c);
}

result<pg_client> pg_client::connect(const std::string& conninfo) {
    pg_client c;
    c.conn_.reset(PQconnectdb(conninfo.c_str()));
    if (!c.conn_ || PQstatus(c.conn_.get()) != CONNECTION_OK) {
        // libpq's message names host and port (and the user), not the password.
        return error{errc::unavailable, fmt::format("cannot connect to the backend PostgreSQL: {}",
                                                    trimmed(c.conn_ ? PQerrorMessage(c.conn_.get())
                                                                    : "out of memory"))};
    }
    return c;
}

result<pg_rows> pg_client::query(const std::string& sql, const std::vector<std::string>& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const std::string& p : params) {
        values.push_back(p.c_str());
    }
    std::unique_ptr<PGresult, decltype(&PQclear)> res(
        params.empty() ? PQexec(conn_.get(), sql.c_str())
                       : PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()),
                                      nullptr, values.data(), nullptr, nullptr, 0),
        &PQclear);
    const ExecStatusType status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        const char* primary =
            res ? PQresultErrorField(res.get(), PG_DIAG_MESSAGE_PRIMARY) : nullptr;
        return error{errc::database_error,
                     trimmed(primary != nullptr ? primary : PQerrorMessage(conn_.get()))};
    }
    pg_rows out;
    const int columns = PQnfields(res.get());
    for (int c = 0; c < columns; ++c) {
        out.columns.emplace_back(PQfname(res.get(), c));
    }
    const int rows = PQntuples(res.get());
    out.rows.reserve(static_cast<size_t>(rows));
    for (int r = 0; r < rows; ++r) {
        pg_row row;
        row.reserve(static_cast<size_t>(columns));
        for (int c = 0; c < columns; ++c) {
            if (PQgetisnull(res.get(), r, c) != 0) {
                row.emplace_back(std::nullopt);
            } else {
                row.emplace_back(std::string(PQgetvalue(res.get(), r, c),
                                             static_cast<size_t>(PQgetlength(res.get(), r, c))));
            }
        }
        out.rows.push_back(std::move(row));
    }
    return out;
}

result<void> pg_client::exec(const std::string& sql) {
    auto r = query(sql);
    if (!r) {
        return std::move(r).error();
    }
    return ok();
}

}  // namespace molt::emulator
