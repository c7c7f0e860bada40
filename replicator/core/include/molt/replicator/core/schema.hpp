#pragma once
// What the replicator knows about a target schema: its tables, their columns and primary keys,
// and the foreign-key order (parents before children). Built by a dialect's introspection.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "molt/common/ident.hpp"
#include "molt/common/result.hpp"

namespace molt::replicator {

struct column_info {
    std::string name;        ///< as the catalog spells it
    std::string sql_type;    ///< full type as the dialect writes it in a cast ("numeric(10,2)")
    std::string type_name;   ///< base type, lower case ("numeric", "timestamp with time zone")
    bool array = false;      ///< PostgreSQL array of type_name
    bool generated = false;  ///< computed or generated: accepted in payloads, never written
    std::optional<std::string> default_expr;
    int pk_position = -1;  ///< position in the primary key, or -1
    /// A userscript's SQL for the value (replicator@v1 configureTable exprs), each `$0` standing
    /// for the value sent; empty: the value itself. Without `$0` the column is written by every
    /// upsert (apply_plan.hpp).
    std::string expr;
};

/// How many times the built-in writer binds a column's value: once, or once per `$0` of its
/// expression (none for an expression without one).
[[nodiscard]] size_t value_params(const column_info& c) noexcept;
/// Whether `expr` has the value's mark `$0` (not `$01`) at `i`.
[[nodiscard]] bool value_mark_at(std::string_view expr, size_t i) noexcept;

struct table_info;

/// A row a conditional upsert did not write because the target's row won the cas comparison,
/// for a userscript's merge (replicator@v1 configureTable merge). The documents are JSON
/// objects named by the table's columns, with every number as a string (as a script sees rows).
struct merge_conflict {
    std::string key;       ///< the row's key as the changefeed sent it (JSON)
    std::string before;    ///< the row before the change (changefeed "before"), or "null"
    std::string proposed;  ///< the row the batch would have written
    std::string target;    ///< the target's row
};

/// What a merge made of a conflict.
struct merge_resolution {
    enum class kind { apply, dlq, drop };
    kind type = kind::drop;
    /// apply: the row to write instead (a JSON object); dlq: the dead-letter queue's name.
    std::string value;
};

/// A userscript's merge (apply_plan.cpp runs it for the conflicts of a table's upserts).
class row_merger {
public:
    virtual ~row_merger() = default;
    /// One resolution per conflict, in order. Errors name the script, the table and the key.
    [[nodiscard]] virtual result<std::vector<merge_resolution>> resolve(
        const qualified_name& schema, const table_info& t,
        const std::vector<merge_conflict>& conflicts) const = 0;
    /// The dead-letter queue table (--dlqTableName) that a dlq resolution writes to.
    [[nodiscard]] virtual const std::string& dlq_table() const noexcept = 0;
};

struct table_info {
    std::string name;                  ///< the table's own name
    qualified_name qualified;          ///< schema-qualified name used in SQL
    std::vector<column_info> columns;  ///< primary key columns first (in key order), then the rest
    size_t pk_count = 0;
    std::vector<std::string> parents;  ///< tables this one references (foreign keys)
    // What a userscript asks of the built-in writer for this table (replicator@v1
    // configureTable; apply_plan.hpp):
    size_t row_limit = 0;  ///< rowLimit: the most rows per statement (0: --flushSize)
    int extras = -1;       ///< extras: the JSON column that takes the properties without a column
    /// cas: an upsert writes a row only when the target has none with its key or when these
    /// columns (in this order) compare greater than the target row's; the others are dropped.
    std::vector<size_t> cas;
    /// deadlines: an upsert writes a row only when each of these columns is later than now()
    /// less the duration (microseconds); the others are dropped.
    std::vector<std::pair<size_t, int64_t>> deadlines;
    /// merge (with cas): the rows the cas comparison does not write go to it, with the target's
    /// rows; its resolutions are written, sent to the dead-letter queue, or dropped.
    std::shared_ptr<const row_merger> merger;
    /// A configuration the table cannot take (a column it does not have): every write of the
    /// table fails with it.
    std::string options_error;

    /// Whether upserts are conditional (cas or deadlines).
    [[nodiscard]] bool conditional() const noexcept { return !cas.empty() || !deadlines.empty(); }
    /// The column named `name` (ASCII case-insensitive), or nullptr.
    [[nodiscard]] const column_info* find_column(std::string_view column) const;
    [[nodiscard]] int column_index(std::string_view column) const;
    /// Builds the lookup index; call after filling columns.
    void index_columns();

private:
    std::unordered_map<std::string, int> by_key_;
};

/// Moves the primary key columns to the front in key order (others keep catalog order) and
/// sets pk_count. Introspection calls it for every table.
void order_primary_key_first(table_info& t);

struct schema_snapshot {
    qualified_name
        schema;  ///< {database, schema} or {database}, as the target's catalog spells them
    std::vector<table_info> tables;  ///< parents before children

    /// The table named `name` (ASCII case-insensitive), or nullptr.
    [[nodiscard]] const table_info* find_table(std::string_view name) const;
    /// Position in the parent-first order.
    [[nodiscard]] size_t order_of(const table_info& t) const noexcept;
    /// Whether a table of this schema references `t` by foreign key (deleting a row of `t` may
    /// cascade, set null, or be refused).
    [[nodiscard]] bool referenced(const table_info& t) const;
    /// Sorts tables parents first (cycles keep their catalog order) and builds the indexes.
    void finish();

private:
    std::unordered_map<std::string, size_t> by_key_;
};

}  // namespace molt::replicator
