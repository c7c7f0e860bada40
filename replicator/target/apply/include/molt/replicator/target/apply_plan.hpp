#pragma once
// Turning a decoded request into SQL for one target schema, without touching the database:
//   1. each topic is matched to a target table (t, db.schema.t, or t.family);
//   2. mutations are folded per key in HLC order, across the topics of one table (column
//      families): a delete discards earlier upserts of the key, upserts of one key merge column
//      by column (column families, sparse rows); key columns absent from "after" (a column
//      family without them) come from "key";
//   3. columns are matched case-insensitively: an unknown column or a missing primary key column
//      is an error naming table and column; generated columns are accepted and never written;
//   4. statements (statement_order::deletes_first, immediate mode unless the batch deletes rows
//      other tables reference: plan_batch_deletes_first_if_safe): deletes children before
//      parents, then upserts parents before children. statement_order::upserts_first (consistent
//      mode, where a batch goes from one consistent source state to a later one): upserts,
//      parents first, then deletes, children first, so that a child moved to a new parent leaves
//      the old parent free to be deleted; a key deleted and written again in the batch is only
//      upserted (the changefeed sends whole rows: every family of an insert). Rows with the
//      same column set share a statement, chunked to --flushSize rows and the dialect's
//      parameter limit.
// Neither order can respect a unique secondary key whose value moves between rows of the batch
// (the plan folds per primary key and knows no row order inside a source transaction); a batch
// whose statements fail on a unique key is applied again (consistent mode: first with the other
// order, which writes a value a deleted row frees; then) through ordered_apply.hpp instead.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "molt/common/result.hpp"
#include "molt/proto/batch.hpp"
#include "molt/replicator/core/schema.hpp"
#include "molt/replicator/core/target.hpp"

namespace molt::replicator {

/// What an upsert of a table with a userscript's merge (table_info::merger) needs to resolve
/// the rows it does not write (run_statement).
struct merge_rows {
    /// target_dialect::merge_conflicts_sql for the statement's rows, with its parameters.
    std::string conflicts_sql;
    const target_dialect* dialect = nullptr;
    const schema_snapshot* schema = nullptr;  ///< the plan's (the DLQ table is looked up there)
    size_t rows_per_statement = 0;            ///< for the rows the merge writes
    struct row {
        std::string key;          ///< as the changefeed sent it (JSON)
        hlc updated;              ///< the row's latest change
        std::string proposed;     ///< the row as written, for the script (merge_conflict)
        std::string before;       ///< the row before the batch, for the script, or "null"
        std::string after_text;   ///< the row as written, as CockroachDB prints it (DLQ)
        std::string before_text;  ///< the row before, as CockroachDB prints it, or "null"
    };
    std::vector<row> rows;  ///< the statement's rows, in order
};

struct planned_statement {
    enum class kind { upsert, erase };
    kind type = kind::upsert;
    const table_info* table = nullptr;
    std::string sql;
    sql_params params;
    size_t rows = 0;
    /// The params are one array per column (target_dialect::binds_columns), not a value per
    /// parameter; the text does not depend on `rows`, so sessions run it prepared.
    bool by_column = false;
    /// With by_column: each column parameter is `rows` separate values (the dialect
    /// binds_arrays()), run by target_session::execute_array().
    bool arrays = false;
    /// With rows == 1: the row's key as the changefeed sent it (compact JSON), to name it in
    /// errors and find its mutations (fatal_rows.hpp).
    std::string_view key;
    /// An upsert of a table with a userscript's merge: what resolves its conflicts.
    std::shared_ptr<const merge_rows> merge;
};

struct table_counts {
    const table_info* table = nullptr;
    size_t received = 0;  ///< mutations in the request
    size_t upserts = 0;   ///< rows upserted after folding
    size_t deletes = 0;   ///< rows deleted after folding
};

struct apply_plan {
    std::vector<planned_statement> statements;  ///< in execution order
    std::vector<table_counts> tables;
};

/// Matches a changefeed topic to a table of the snapshot, or nullptr.
[[nodiscard]] const table_info* resolve_topic(const schema_snapshot& schema,
                                              std::string_view topic);

enum class statement_order { deletes_first, upserts_first };

/// Builds the statements of one request (with `only`: of its mutations at that HLC, one source
/// transaction). Errors: errc::not_found for an unknown table, errc::invalid_argument for
/// columns and values (naming table, column and message index).
[[nodiscard]] result<apply_plan> plan_batch(const schema_snapshot& schema, const proto::batch& rows,
                                            const target_dialect& dialect,
                                            size_t rows_per_statement,
                                            statement_order order = statement_order::deletes_first,
                                            std::optional<hlc> only = std::nullopt);

/// Whether the plan deletes rows of a table that another table references by foreign key: with
/// its deletes first, such a delete can cascade (or set null) into a child whose move to
/// another parent is among the upserts that follow, losing the child's own children.
[[nodiscard]] bool deletes_referenced_rows(const schema_snapshot& schema, const apply_plan& plan);

/// plan_batch deletes first, unless that plan deletes rows another table references: then
/// upserts first (deletes_referenced_rows). For batches written deletes first by default
/// (immediate mode, rows written one by one).
[[nodiscard]] result<apply_plan> plan_batch_deletes_first_if_safe(
    const schema_snapshot& schema, const proto::batch& rows, const target_dialect& dialect,
    size_t rows_per_statement, std::optional<hlc> only = std::nullopt);

/// The HLCs of a batch's mutations (its source transactions), ascending, each once.
[[nodiscard]] std::vector<hlc> source_transactions(const proto::batch& rows);

/// Runs one planned statement (prepared and reused when it binds by column; with parameter
/// arrays when it binds arrays). An upsert with `merge` first reads (and locks) the target rows
/// that win the cas comparison, then writes the others, then hands those conflicts to the
/// userscript's merge and writes what it resolves: a row to apply (written unconditionally),
/// a row for the dead-letter queue it names (the DLQ table, with the queue's name as
/// dlq_name), or nothing.
[[nodiscard]] result<void> run_statement(target_session& session, const planned_statement& st);

/// Runs the plan's statements in order on a session inside a transaction the caller began; on
/// a failure it rolls back and names the statement's kind and table.
[[nodiscard]] result<void> execute_statements(target_session& session, const apply_plan& plan);

}  // namespace molt::replicator
