#pragma once
// The target database as the apply path sees it: sessions that run SQL with text parameters, and
// a dialect that writes SQL, converts changefeed values into bind text, reads the catalog, and
// classifies its errors (molt::error::retry()). Dialects live in target/dialect/<name>/.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "molt/common/dialect.hpp"
#include "molt/common/result.hpp"
#include "molt/proto/batch.hpp"
#include "molt/replicator/core/schema.hpp"

namespace molt::replicator {

/// Bind parameters as text (PostgreSQL casts them; MySQL converts them); nullopt is NULL.
using sql_params = std::vector<std::optional<std::string>>;
using sql_row = std::vector<std::optional<std::string>>;

/// One connection. Not thread-safe: one user at a time (the pool hands it out).
/// Failures are errc::database_error or errc::unavailable with a retry_class.
class target_session {
public:
    virtual ~target_session() = default;
    virtual result<void> begin() = 0;
    virtual result<void> commit() = 0;
    /// Best effort; a failure marks the session broken.
    virtual void rollback() noexcept = 0;
    virtual result<void> execute(const std::string& sql, const sql_params& params) = 0;
    /// execute() for a statement whose text runs again and again with other values: the session
    /// may keep it prepared (one round trip per run, parsed and planned once).
    virtual result<void> execute_reused(const std::string& sql, const sql_params& params) {
        return execute(sql, params);
    }
    /// Runs `sql` once per row with one array per parameter (target_dialect::binds_arrays):
    /// `params` holds the first parameter's `rows` values, then the second's, and so on. A
    /// driver with parameter arrays (ODBC) sends every row in one execution.
    virtual result<void> execute_array(const std::string& /*sql*/, const sql_params& /*params*/,
                                       size_t /*rows*/) {
        return error{errc::internal, "this target session cannot bind parameter arrays",
                     retry_class::fatal};
    }
    virtual result<std::vector<sql_row>> query(const std::string& sql,
                                               const sql_params& params) = 0;
    /// A cheap round trip (SELECT 1).
    virtual result<void> ping() = 0;
    /// True once a failure showed the connection is unusable (lost, or a rollback failed): the
    /// pool closes such a session instead of handing it out again, whoever forgot to say so.
    [[nodiscard]] virtual bool broken() const noexcept { return false; }

    /// A request's deadline: execute() and query() calls that would start at or after it fail
    /// at once (errc::timeout, retry_class::retry_now: the caller's retries stop at the same
    /// deadline), so a request with many statements ends
    /// within one statement's own limit of its deadline. nullopt (the default) for none; whoever
    /// sets it clears it before the session goes back to its pool.
    void set_deadline(std::optional<std::chrono::steady_clock::time_point> d) noexcept {
        deadline_ = d;
    }

protected:
    /// The error for a call that would start past the deadline, if it would.
    [[nodiscard]] std::optional<error> past_deadline() const {
        if (deadline_ && std::chrono::steady_clock::now() >= *deadline_) {
            return error{errc::timeout,
                         "the request's deadline passed before this statement; not started",
                         retry_class::retry_now};
        }
        return std::nullopt;
    }

private:
    std::optional<std::chrono::steady_clock::time_point> deadline_;
};

/// The consistent mode's progress table in a target schema (replicator/README.md, "Consistent
/// mode"), as each dialect writes it:
///   _replicator_progress (first_nanos, first_logical, last_nanos, last_logical, applied_at)
///   PK (last_nanos, last_logical)
/// Parameters are :p1..:p4 = first nanos, first logical, last nanos, last logical.
struct progress_statements {
    std::string table;     ///< the quoted, qualified name
    std::string create;    ///< CREATE TABLE IF NOT EXISTS
    std::string insert;    ///< a plain insert of one row
    std::string record;    ///< an insert that does nothing when the row's key exists
    std::string recorded;  ///< empty: `record` returns a row when it inserted; else a query
                           ///< answering the number of rows `record` inserted
    std::string present;   ///< non-empty (no `recorded`): a query (:p1, :p2 = last nanos,
                           ///< last logical: the key) returning a row when the range is
                           ///< recorded; `record` is then run only when it is not
    std::string select;    ///< every row, ordered by last
    std::string clear;     ///< delete every row
};

/// A column's value in a statement: `placeholder(column, n++)`; for a column with an expression
/// (column_info::expr), `finish(column, "(" + expr + ")")` with each `$0` of the expression
/// replaced by `placeholder(column, n++)`.
struct plain_expr {
    std::string operator()(const column_info& /*c*/, std::string sql) const { return sql; }
};
template <typename Placeholder, typename Finish = plain_expr>
[[nodiscard]] std::string value_sql(const column_info& c, size_t& n, Placeholder&& placeholder,
                                    Finish&& finish = {}) {
    if (c.expr.empty()) {
        return placeholder(c, n++);
    }
    std::string sql = "(";
    for (size_t i = 0; i < c.expr.size(); ++i) {
        if (value_mark_at(c.expr, i)) {
            sql += placeholder(c, n++);
            ++i;
        } else {
            sql += c.expr[i];
        }
    }
    return finish(c, sql + ")");
}

/// The rows of a multi-row VALUES list, "(…),(…)": `rows` rows of `columns` (indices into
/// t.columns), each value as value_sql writes it, n counting from 1 across rows.
template <typename Placeholder, typename Finish = plain_expr>
[[nodiscard]] std::string values_rows(const table_info& t, std::span<const size_t> columns,
                                      size_t rows, Placeholder&& placeholder,
                                      Finish&& finish = {}) {
    std::string sql;
    size_t n = 1;
    for (size_t r = 0; r < rows; ++r) {
        sql += r == 0 ? "(" : ",(";
        for (size_t i = 0; i < columns.size(); ++i) {
            sql += (i == 0 ? "" : ",") + value_sql(t.columns[columns[i]], n, placeholder, finish);
        }
        sql += ')';
    }
    return sql;
}

/// The common table expressions of a conditional upsert of `t` (table_info::conditional), after
/// a "data" expression of the rows (named as the table's columns): "deadlined" (the rows whose
/// deadline columns are later than now() less their durations; `before_now(column, us)` writes that
/// instant), "current" (the target's rows of their keys) and "action" (the rows without a target
/// row or whose cas columns compare greater): ", "deadlined" AS (…), … "action" AS (…)".
[[nodiscard]] std::string conditional_ctes(
    const table_info& t, molt::dialect d,
    const std::function<std::string(const column_info&, int64_t)>& before_now);

/// The query of the rows a conditional upsert with a userscript's merge will not write because
/// the target's row wins the cas comparison (table_info::merger), after a "data" expression of
/// the rows (named as the table's columns, and "__idx__" for each row's position from 0): the
/// rows within their deadlines joined with the target's rows of their keys, selecting
/// "__idx__" and `row_json` (the target's row "__t" as a JSON object), then `lock`.
[[nodiscard]] std::string merge_conflicts_ctes(
    const table_info& t, molt::dialect d,
    const std::function<std::string(const column_info&, int64_t)>& before_now,
    std::string_view row_json, std::string_view lock);

class target_dialect {
public:
    virtual ~target_dialect() = default;

    [[nodiscard]] virtual molt::dialect kind() const noexcept = 0;
    /// URL path segments naming a target schema: 2 (/db/schema) or 1 (/db).
    [[nodiscard]] virtual size_t schema_segments() const noexcept = 0;
    /// The most bind parameters one statement may carry.
    [[nodiscard]] virtual size_t max_parameters() const noexcept = 0;
    /// The statement that turns a session's foreign-key checks off (--skipForeignKeyChecks), and
    /// what the target needs to allow it, for the error when it refuses.
    [[nodiscard]] virtual std::string no_foreign_key_checks_sql() const = 0;
    [[nodiscard]] virtual std::string no_foreign_key_checks_hint() const = 0;
    /// The most bytes of bound values one statement should carry (as statement_bytes counts
    /// them): rows beyond go in the next statement, and a larger row in a statement of its own.
    [[nodiscard]] virtual size_t max_statement_bytes() const noexcept { return SIZE_MAX; }
    /// What a bound value adds to a statement as it travels to the server.
    [[nodiscard]] virtual size_t statement_bytes(
        const std::optional<std::string>& value) const noexcept {
        return value ? value->size() : 0;
    }

    /// Whether statements writing `columns` of `t` (indices into t.columns; for deletes, the
    /// primary key's) bind one parameter per column holding every row's value — an array —
    /// instead of one per value: their text is then the same whatever the row count (upsert_sql
    /// and delete_sql ignore `rows`), so a session prepares it once, and the server parses and
    /// plans it once. The values are still collected row by row; pack_columns() turns them into
    /// the column parameters.
    [[nodiscard]] virtual bool binds_columns(const table_info& /*t*/,
                                             std::span<const size_t> /*columns*/) const {
        return false;
    }
    /// `rows` rows of `columns` values each (row-major, as bind_value made them) as one
    /// parameter per column, for a statement binds_columns() accepted.
    [[nodiscard]] virtual sql_params pack_columns(sql_params row_major, size_t /*columns*/) const {
        return row_major;
    }
    /// Whether statements binds_columns() accepted bind each column as an array of separate
    /// values (pack_columns() puts them column by column), run by
    /// target_session::execute_array(), rather than as one value holding the whole column.
    [[nodiscard]] virtual bool binds_arrays() const noexcept { return false; }
    /// Whether the target has RELEASE SAVEPOINT (Oracle has not: a savepoint lasts until the
    /// transaction ends, and a SAVEPOINT of the same name moves it).
    [[nodiscard]] virtual bool releases_savepoints() const noexcept { return true; }

    /// Upsert of `rows` rows setting `columns` (indices into t.columns, primary key first).
    [[nodiscard]] virtual std::string upsert_sql(const table_info& t,
                                                 std::span<const size_t> columns,
                                                 size_t rows) const = 0;
    /// Delete of `rows` rows by primary key.
    [[nodiscard]] virtual std::string delete_sql(const table_info& t, size_t rows) const = 0;
    /// For a table with a userscript's merge (table_info::merger), run before upsert_sql with
    /// the same parameters: the rows it will not write because the target's row wins the cas
    /// comparison, each as its position in the statement (from 0) and the target's row as a
    /// JSON object with numbers as strings, locked for the transaction. Empty: no merge here.
    [[nodiscard]] virtual std::string merge_conflicts_sql(const table_info& /*t*/,
                                                          std::span<const size_t> /*columns*/,
                                                          size_t /*rows*/) const {
        return {};
    }

    /// The bind text for a changefeed value in a column; nullopt binds NULL.
    [[nodiscard]] virtual result<std::optional<std::string>> bind_value(
        const column_info& column, const proto::value& v) const = 0;

    /// The progress table's statements for a target schema.
    [[nodiscard]] virtual progress_statements progress_sql(const qualified_name& schema,
                                                           std::string_view table) const = 0;

    /// The dead-letter queue (--fatalRowPolicy dlq): the CREATE TABLE an operator runs for the
    /// table `table` of a target schema (the replicator never creates it). Columns:
    ///   event (key), dlq_name VARCHAR(256), source_nanos and source_logical integers,
    ///   data_after and data_before JSON, all NOT NULL.
    [[nodiscard]] virtual std::string dlq_ddl(const qualified_name& schema,
                                              std::string_view table) const = 0;
    /// The insert of one row into the DLQ table as introspected; :p1..:p5 = dlq_name,
    /// source_nanos, source_logical, data_after, data_before.
    [[nodiscard]] virtual std::string dlq_insert_sql(const table_info& dlq) const = 0;
    /// True when `e`, a failure of this dialect's session writing one row, is bad data in the
    /// row itself (NOT NULL, CHECK, a value too long or out of range, a bad number or date): what
    /// --fatalRowPolicy dlq diverts. Not unique or foreign keys, not rights, syntax or schema.
    [[nodiscard]] virtual bool row_data_error(const error& e) const = 0;

    /// Reads the tables of a target schema (errc::not_found when the schema does not exist).
    [[nodiscard]] virtual result<schema_snapshot> introspect(
        target_session& session, const qualified_name& schema) const = 0;
};

}  // namespace molt::replicator
