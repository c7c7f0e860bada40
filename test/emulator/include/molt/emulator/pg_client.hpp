#pragma once
// A small libpq client for the CockroachDB stand-in's own work on its backend PostgreSQL:
// logical decoding, catalog lookups and initial scans. Text results only.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "molt/common/result.hpp"

struct pg_conn;

namespace molt::emulator {

using pg_row = std::vector<std::optional<std::string>>;

struct pg_rows {
    std::vector<std::string> columns;
    std::vector<pg_row> rows;
};

class pg_client {
public:
    /// Connects with a libpq conninfo; errors name the server, never the password.
    [[nodiscard]] static result<pg_client> connect(const std::string& conninfo);

    /// Runs one statement with text parameters; errc::database_error with the server's message.
    result<pg_rows> query(const std::string& sql, const std::vector<std::string>& params = {});
    result<void> exec(const std::string& sql);

private:
    struct closer {
        void operator()(pg_conn* c) const noexcept;
    };
    std::unique_ptr<pg_conn, closer> conn_;
};

}  // namespace molt::emulator
