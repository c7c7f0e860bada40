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

#include "molt/common/ident.hpp"
#include "molt/common/metrics.hpp"
#include "molt/common/result.hpp"
#include "molt/proto/batch.hpp"
#include "molt/replicator/core/schema.hpp"

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
    /// Whether configureTargetSchema named `schema` (ignoring ASCII case).
    [[nodiscard]] bool handles_schema(const qualified_name& schema) const;
    /// Whether configureTargetTables named a table that can be in `schema`.
    [[nodiscard]] bool handles_tables(const qualified_name& schema) const;

    /// Runs the handlers of `which` on `rows` bound for `schema`, and returns the rows they
    /// produce (filtered, changed, routed to other tables of `target`). Errors:
    /// errc::invalid_argument for an exception or a wrong result in a handler (the message names
    /// the script, the handler, the table and the row's key), errc::unavailable when a call ran
    /// out of time or heap, or when `deadline` passed before the script's thread took the rows.
    [[nodiscard]] result<proto::batch> run(
        const qualified_name& schema, const schema_snapshot& target, const proto::batch& rows,
        unsigned which,
        std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt) const;

    struct engine;

private:
    explicit userscript(std::unique_ptr<engine> e);
    std::unique_ptr<engine> engine_;
};

}  // namespace molt::replicator::script
