#include "molt/fetch/sql_client.hpp"

#include "db/clients.hpp"

namespace molt::fetch {

std::optional<size_t> sql_rows::column(std::string_view name) const {
    for (size_t i = 0; i < columns.size(); ++i) {
        if (columns[i] == name) {
            return i;
        }
    }
    return std::nullopt;
}

result<std::unique_ptr<sql_client>> connect_sql(const conn_url& url, std::string_view what,
                                                std::chrono::seconds timeout) {
    switch (url.dialect()) {
    case molt::dialect::postgres: return connect_postgres(url, what, timeout);
    case molt::dialect::mysql: return connect_mysql(url, what, timeout);
    case molt::dialect::oracle: return connect_oracle(url, what, timeout);
    }
    return error{errc::internal, std::string(what) + ": unknown dialect"};
}

std::string quote_literal(molt::dialect d, std::string_view text) {
    std::string out = "'";
    for (const char c : text) {
        if (c == '\'') {
            out += "''";
        } else if (c == '\\' && d == molt::dialect::mysql) {
            out += "\\\\";
        } else {
            out += c;
        }
    }
    return out + "'";
}

std::string quote_ident(molt::dialect d, std::string_view name) {
    const char q = d == molt::dialect::mysql ? '`' : '"';
    std::string out(1, q);
    for (const char c : name) {
        out += c;
        if (c == q) {
            out += c;
        }
    }
    return out + q;
}

}  // namespace molt::fetch
