#pragma once
// The SQL side of the CockroachDB stand-in (`crdb-emulator serve`): which statements CockroachDB
// has and PostgreSQL lacks, and how their results reach the client. Pure functions, no I/O.
//
// The proxy hands every statement a client sends (Query, or Parse in the extended protocol) to
// rewrite(). Ordinary SQL passes through unchanged, except that calls of version() and
// cluster_logical_timestamp() become constants (CockroachDB's answers). A CockroachDB-only
// statement is parsed into a `statement`, executed by the caller's `executor`, and replaced by a
// PostgreSQL statement that produces its result with the same column names and types:
//
//   rows     SELECT * FROM (VALUES ('1'::int8, 'running'::text)) AS crdb_result("job_id", ...)
//   no rows  DO $crdb_emulator$BEGIN END$crdb_emulator$
//   error    DO $crdb_emulator$BEGIN RAISE EXCEPTION USING MESSAGE = '...', ERRCODE = '...';
//            END$crdb_emulator$
//
// so both protocols, transactions and result shapes are PostgreSQL's own.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "molt/common/hlc.hpp"

namespace molt::emulator::crdb {

/// A token of SQL text: what the statement parser and the function substitution look at.
struct token {
    enum class kind { word, quoted_ident, string, number, symbol } type = kind::symbol;
    std::string text;  ///< words as written; strings and quoted identifiers unescaped
    size_t begin = 0, end = 0;
};
/// Tokens of one statement; comments and whitespace dropped. Unterminated quotes end the text.
[[nodiscard]] std::vector<token> tokenize(std::string_view sql);

/// ASCII lower case: how unquoted identifiers and keywords fold.
[[nodiscard]] std::string fold_case(std::string_view s);

/// Splits a simple-query string at semicolons outside quotes and comments; blank statements
/// are dropped.
[[nodiscard]] std::vector<std::string_view> split_statements(std::string_view sql);

struct show_setting {
    std::string name;
};
struct show_all_settings {};
struct set_setting {
    std::string name;
    std::optional<std::string> value;  ///< nullopt: DEFAULT or RESET
};
struct create_changefeed {
    std::vector<std::vector<std::string>> tables;  ///< name parts: [db.][schema.]table
    /// With `tables` (same index): the family of a `TABLE t FAMILY f` target; nullopt: the
    /// whole table.
    std::vector<std::optional<std::string>> families;
    std::string sink_uri;
    std::vector<std::pair<std::string, std::optional<std::string>>> options;  ///< lower-case names
};
struct show_jobs {
    bool changefeeds_only = false;
    std::optional<int64_t> job;
};
struct control_job {
    enum class action { pause, resume, cancel } what = action::pause;
    int64_t job = 0;
};
/// ALTER CHANGEFEED id {ADD [TABLE] t [, ...] [WITH opt [= v] [, ...]] | DROP [TABLE] t [, ...]}...
/// (SET and UNSET are not emulated).
struct alter_changefeed {
    struct command {
        bool add = true;
        std::vector<std::vector<std::string>> tables;                             ///< name parts
        std::vector<std::pair<std::string, std::optional<std::string>>> options;  ///< ADD's WITH
    };
    int64_t job = 0;
    std::vector<command> commands;  ///< in statement order
};
/// CREATE DATABASE [IF NOT EXISTS] name: an emulated database (crdb_names.hpp).
struct create_database {
    std::string name;
    bool if_not_exists = false;
};
/// DROP DATABASE [IF EXISTS] name [CASCADE | RESTRICT]; CASCADE is CockroachDB's default.
struct drop_database {
    std::string name;
    bool if_exists = false;
    bool restricted = false;  ///< RESTRICT: refuse a database that holds tables
};
/// SHOW DATABASES [WITH COMMENT]
struct show_databases {
    bool with_comment = false;
};
/// USE name, SET [SESSION] database = name: only the session's own database is accepted.
struct use_database {
    std::string name;
};
/// CREATE SCHEMA [IF NOT EXISTS] db.schema: a database-qualified schema, which PostgreSQL
/// does not take.
struct create_schema {
    std::string database, schema;
    bool if_not_exists = false;
};
/// A CockroachDB-only statement the stand-in does not emulate; `what` names it.
struct not_emulated {
    std::string what;
};
/// A CockroachDB-only statement that does not parse.
struct syntax_error {
    std::string message;
};
using statement =
    std::variant<show_setting, show_all_settings, set_setting, create_changefeed, show_jobs,
                 control_job, alter_changefeed, create_database, drop_database, show_databases,
                 use_database, create_schema, not_emulated, syntax_error>;

/// The CockroachDB-only statement `sql` is, or nullopt for SQL that passes through.
[[nodiscard]] std::optional<statement> parse_statement(std::string_view sql);

struct sql_error {
    std::string sqlstate;  ///< e.g. "0A000"
    std::string message;
};

/// A column family of a table (CockroachDB's FAMILY [name] (column, ...) in CREATE TABLE).
struct column_family {
    std::string name;
    std::vector<std::string> columns;  ///< in family order
    friend bool operator==(const column_family&, const column_family&) = default;
};

/// A CREATE TABLE as the stand-in passes it to PostgreSQL, which has no column families.
struct created_table {
    std::vector<std::string> name;  ///< [schema.]table as the statement names it (folded)
    /// As CockroachDB assigns them: in statement order, an unnamed one named
    /// fam_<index>_<columns joined by '_'>, every column no FAMILY clause names appended to the
    /// first (the primary family). Empty without FAMILY clauses: one family, "primary".
    std::vector<column_family> families;
    std::string sql;  ///< the statement without its FAMILY clauses
};

/// CREATE TABLE's FAMILY clauses taken out (nullopt for any other statement), or the error
/// CockroachDB gives for them. Column qualifiers (`c INT FAMILY f`, `CREATE FAMILY`) are
/// refused as not emulated.
[[nodiscard]] std::optional<std::variant<created_table, sql_error>> parse_create_table(
    std::string_view sql);

/// What an emulated statement returns.
struct statement_result {
    struct column {
        std::string name;
        std::string type;  ///< PostgreSQL type name (int8, text, bool, numeric, ...)
    };
    std::vector<column> columns;                                ///< empty: a command without rows
    std::vector<std::vector<std::optional<std::string>>> rows;  ///< values as text; nullopt NULL
    std::optional<sql_error> error;
    std::optional<std::string> postgres_sql;  ///< run this PostgreSQL statement instead

    [[nodiscard]] static statement_result failure(std::string sqlstate, std::string message);
};

/// The PostgreSQL statement that produces `r` (see the top of this file).
[[nodiscard]] std::string to_postgres(const statement_result& r);

/// What resolving database-qualified names needs to know (crdb_names.hpp); implemented by the
/// cluster for each session.
class catalog {
public:
    virtual ~catalog() = default;
    /// The session's database: the backend PostgreSQL database the client connected to.
    [[nodiscard]] virtual std::string current_database() = 0;
    /// Whether the current database has this schema (PostgreSQL's name, e.g. "public").
    [[nodiscard]] virtual bool schema_exists(std::string_view backend_schema) = 0;
    /// Whether the emulated database exists (the current database is not one).
    [[nodiscard]] virtual bool database_exists(std::string_view database) = 0;
};

/// What the stand-in answers; implemented by the cluster.
class executor : public catalog {
public:
    /// SELECT version()
    [[nodiscard]] virtual std::string version() = 0;
    /// SELECT cluster_logical_timestamp(): a fresh HLC, above every one handed out before.
    [[nodiscard]] virtual hlc logical_timestamp() = 0;
    [[nodiscard]] virtual statement_result execute(const statement& s) = 0;
    /// A CREATE TABLE passed to PostgreSQL (its families, for changefeeds); by default ignored.
    virtual void note_table(const created_table& t) { (void)t; }
};

/// One statement, rewritten for PostgreSQL (executing it first when it is CockroachDB's):
/// CockroachDB's functions become constants and database-qualified names PostgreSQL's.
[[nodiscard]] std::string rewrite_statement(std::string_view sql, executor& ex);
/// A simple-query string: each statement rewritten, joined again with ';'. As on CockroachDB,
/// a schema (or database) created by a statement exists for the names of later ones, although
/// PostgreSQL runs none of them before the whole string is rewritten.
[[nodiscard]] std::string rewrite_query(std::string_view sql, executor& ex);

/// A SQL string literal: 'it''s'.
[[nodiscard]] std::string quote_literal(std::string_view s);
/// A quoted identifier: "My ""table""".
[[nodiscard]] std::string quote_identifier(std::string_view s);
/// A PL/pgSQL block run as one statement: DO $crdb_emulator$<body>$crdb_emulator$, with a tag
/// the body does not contain.
[[nodiscard]] std::string do_block(std::string_view body);
/// A name quoted as CockroachDB's messages quote names (Go's %q): "a \"b\"".
[[nodiscard]] std::string message_quote(std::string_view name);
/// A name as CockroachDB prints it in errors: parts joined by '.', each in double quotes
/// unless it is a plain lower-case identifier.
[[nodiscard]] std::string display_name(const std::vector<std::string>& parts);

}  // namespace molt::emulator::crdb
