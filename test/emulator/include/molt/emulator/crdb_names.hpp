#pragma once
// CockroachDB databases inside one PostgreSQL database, for the stand-in (`crdb-emulator
// serve`). A session's database is the backend database it connected to; named as a database,
// it means PostgreSQL's own schemas (appdb.public.t is public.t). Every other database D is
// emulated by schemas of the backend database, one per CockroachDB schema S:
//
//     schema S of database D   is   the backend schema  enc(D) "." enc(S)
//
// where enc() writes '%' as "%25" and '.' as "%2E", so the one '.' of the name separates the
// parts: the rule is injective and its names never equal a name without a '.' (backend schemas
// with a '.' in their names are reserved for it). _replicator.public.t is "_replicator.public".t.
// CREATE DATABASE makes enc(D).public and enc(D).information_schema (views of D's tables,
// columns and schemas, with D's names); D exists while a schema of it does. Names are limited
// by PostgreSQL's 63 bytes.
//
// Statements are rewritten from their tokens (string literals, quoted identifiers and comments
// keep their text): a dotted name where a table is named (after FROM, JOIN, INTO, UPDATE, TABLE,
// ...) is read as CockroachDB reads it — d.s.t is database d, schema s; a.t is schema a of the
// current database if there is one, else database a's public schema — and written as the
// backend schema. Elsewhere (columns), only d.s.t.c names with a known database are rewritten.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "molt/emulator/crdb_sql.hpp"

namespace molt::emulator::crdb {

/// PostgreSQL's longest identifier (NAMEDATALEN - 1); longer names would be truncated.
inline constexpr size_t max_identifier_bytes = 63;

/// The backend schema of schema `schema` of emulated database `database`.
[[nodiscard]] std::string backend_schema(std::string_view database, std::string_view schema);
/// What every backend schema of `database` starts with: enc(database) ".".
[[nodiscard]] std::string database_prefix(std::string_view database);
/// The database and schema a backend schema emulates; nullopt for other names.
[[nodiscard]] std::optional<std::pair<std::string, std::string>> emulated_schema(
    std::string_view backend);
/// A SQL expression that decodes enc() applied to the text expression `expr`.
[[nodiscard]] std::string decode_sql(std::string_view expr);

/// A piece of a statement's text to replace.
struct text_edit {
    size_t begin = 0, end = 0;
    std::string text;
};

/// The edits that make the database-qualified names of one statement PostgreSQL's, or the
/// error CockroachDB gives for them (e.g. creating a table in a database that does not exist).
[[nodiscard]] std::variant<std::vector<text_edit>, sql_error> resolve_names(
    const std::vector<token>& tokens, catalog& c);

/// `sql` with the edits applied; they are sorted by position and do not overlap.
[[nodiscard]] std::string apply_edits(std::string_view sql, const std::vector<text_edit>& edits);

}  // namespace molt::emulator::crdb
