#pragma once
// A userscript (--userscript FILE.ts): TypeScript or JavaScript that filters, transforms and
// routes rows with the replicator@v2 API (../shared/spec/userscripts.md; replicator/README.md,
// "Userscripts"). The script runs in an embedded SpiderMonkey on one thread of its own: every
// call is queued to it, as the original runs every call under one lock.
//
// A script has the ECMAScript standard library, `console` and the API; no file, network,
// process or timer access. Each handler call has a time limit, the engine a heap limit.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "molt/common/ident.hpp"
#include "molt/common/metrics.hpp"
#include "molt/common/result.hpp"
#include "molt/proto/batch.hpp"
#include "molt/replicator/core/schema.hpp"
#include "molt/replicator/core/target.hpp"
#include "molt/replicator/target/fatal_rows.hpp"

namespace molt::replicator::script {

struct limits {
    /// The longest one handler call (and the script's loading) may run.
    std::chrono::milliseconds call_timeout{10'000};
    /// The engine's heap: allocations beyond it fail the call.
    size_t heap_bytes = size_t{512} << 20;
};

/// Which handlers a run calls: the schema-level ones (configureTargetSchema: before staging, in
/// the request) and the table-level ones (configureTargetTables: at apply time).
enum phases : unsigned { schema_phase = 1, table_phase = 2 };

/// What a userscript's onWrite (replicator@v1: apply) asks of the target transaction.
struct write_request {
    enum class kind { query, exec, write };
    kind type = kind::exec;
    std::string sql;    ///< query, exec: as the script wrote it (placeholders $1 or ?)
    sql_params params;  ///< query, exec
    std::string body;   ///< write: row operations as a webhook body, for the built-in write
};

/// Runs those requests on the session that holds the target transaction (script_writer.cpp).
class write_host {
public:
    virtual ~write_host() = default;
    /// A query's rows; nothing for exec and write.
    [[nodiscard]] virtual result<std::vector<sql_row>> run(const write_request& request) = 0;
    /// After a request failed and the handler went on anyway: whether the transaction can
    /// still commit (a PostgreSQL transaction is aborted by any error not rolled back to a
    /// savepoint, and its COMMIT would silently roll back).
    [[nodiscard]] virtual result<void> usable() = 0;
};

/// The TypeScript declarations of the API served (replicator@v2.d.ts), and an example script:
/// what `replicator userscript` prints.
[[nodiscard]] std::string_view api_declarations() noexcept;
[[nodiscard]] std::string_view example_script() noexcept;

class userscript {
public:
    /// Loads `file` (its folder becomes the root of the script's imports) and runs it once to
    /// record its configuration. Errors (esbuild missing, syntax errors, exceptions, a bad
    /// configuration call, the time or heap limit) name the file, line and column where known.
    /// With `registry`, the script's metrics are kept there (replicator/README.md, "Metrics").
    [[nodiscard]] static result<std::unique_ptr<userscript>> load(
        const std::filesystem::path& file, const limits& limits,
        metrics::registry* registry = nullptr);
    ~userscript();
    userscript(const userscript&) = delete;
    userscript& operator=(const userscript&) = delete;

    /// The file as given on the command line, for messages.
    [[nodiscard]] const std::string& name() const noexcept;
    /// What setOptions (replicator@v1) set while the script loaded: flag names of replicator
    /// start and their values, in the order set (unchecked: the caller knows the flags).
    [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& options() const noexcept;
    /// Sets what replicator@v1 configureTable asks of the built-in writer (rowLimit, extras,
    /// exprs, cas, deadlines, merge; apply_plan.hpp) on the tables of `target` it names; a
    /// column the table lacks (or generated; or exprs, cas, deadlines or merge on Oracle) sets
    /// the table's options_error, naming the script's call. A merge's dlq results go to
    /// `dlq_table` (--dlqTableName) in the target schema.
    void configure(schema_snapshot& target, molt::dialect dialect,
                   const std::string& dlq_table = "replicator_dlq") const;
    /// Whether configureTargetSchema named `schema` (ignoring ASCII case).
    [[nodiscard]] bool handles_schema(const qualified_name& schema) const;
    /// Whether configureTargetTables named a table that can be in `schema`.
    [[nodiscard]] bool handles_tables(const qualified_name& schema) const;
    /// Whether a table of `schema` has an onWrite (replicator@v1: apply) handler; `table`
    /// names the table (empty: any table).
    [[nodiscard]] bool writes(const qualified_name& schema, std::string_view table = {}) const;

    /// Runs the handlers of `which` on `rows` bound for `schema`, and returns the rows they
    /// produce (filtered, changed, routed to other tables of `target`). Errors:
    /// errc::invalid_argument for an exception or a wrong result in a handler (the message names
    /// the script, the handler, the table and the row's key), errc::unavailable when a call ran
    /// out of time or heap, or when `deadline` passed before the script's thread took the rows.
    /// With `refused` (table-level handlers only), a row whose handler throws or returns what
    /// cannot be a row is left out and listed there instead (its group and index in `rows`, and
    /// the message the error would have had); the time and heap limits still fail the run.
    [[nodiscard]] result<proto::batch> run(
        const qualified_name& schema, const schema_snapshot& target, const proto::batch& rows,
        unsigned which,
        std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt,
        std::vector<refused_row>* refused = nullptr) const;

    /// Calls the onWrite (apply) handlers of `rows`' tables, one table after the other, each
    /// with the table's rows as row operations; what they ask of the transaction runs through
    /// `host` on the applier's thread (the script's thread never waits for the database).
    /// `dialect` quotes the names getTX() reports. Errors: errc::invalid_argument
    /// (retry_class::none) when a handler throws or its promise rejects or never settles,
    /// naming the script, handler and table (with the retry class of a statement's failure
    /// it passed on); a statement's own error when it ends the transaction (serialization,
    /// deadlock, lost connection, the deadline: retried); errc::timeout (retry_class::none)
    /// for the time and heap limits, and for rows that waited for the script past `deadline`.
    [[nodiscard]] result<void> write(const qualified_name& schema, const schema_snapshot& target,
                                     molt::dialect dialect, const proto::batch& rows,
                                     write_host& host,
                                     std::chrono::steady_clock::time_point deadline) const;

    struct engine;

private:
    explicit userscript(std::unique_ptr<engine> e);
    std::unique_ptr<engine> engine_;
};

}  // namespace molt::replicator::script
