#pragma once
// CockroachDB's database statements over the backend database, laid out as crdb_names.hpp says:
// CREATE DATABASE, DROP DATABASE, SHOW DATABASES, CREATE SCHEMA db.schema, USE / SET database.
// Each becomes one PostgreSQL statement (a DO block, or a SELECT) that checks what CockroachDB
// checks and raises its errors, so it runs in the client's transaction and either protocol
// carries it. Pure functions, no I/O.

#include <optional>
#include <string_view>

#include "molt/emulator/crdb_sql.hpp"

namespace molt::emulator::crdb {

/// The answer to a database statement of a session connected to `current_database`; nullopt
/// for other statements.
[[nodiscard]] std::optional<statement_result> execute_database_statement(
    const statement& s, std::string_view current_database);

}  // namespace molt::emulator::crdb
