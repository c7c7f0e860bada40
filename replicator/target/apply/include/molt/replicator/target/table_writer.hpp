#pragma once
// Tables whose rows something other than the built-in statements writes: a userscript's onWrite
// (replicator@v2) or apply (replicator@v1) handler (replicator/README.md, "Userscripts"). Every
// applier asks split() for each batch it writes; the rows it hands back as `custom` are left out
// of the plan and given to write() on the same session, inside the same target transaction,
// after the batch's other rows, before COMMIT. Nothing commits unless write() succeeds.

#include <chrono>
#include <optional>
#include <vector>

#include "molt/common/ident.hpp"
#include "molt/common/result.hpp"
#include "molt/proto/batch.hpp"
#include "molt/replicator/core/schema.hpp"
#include "molt/replicator/core/target.hpp"
#include "molt/replicator/target/apply_plan.hpp"

namespace molt::replicator {

struct split_rows {
    proto::batch built_in;  ///< for the plan, as usual
    proto::batch custom;    ///< for table_writer::write
};

class table_writer {
public:
    virtual ~table_writer() = default;
    /// nullopt (the usual answer, and a cheap one) when the built-in statements write every row
    /// of `rows`.
    [[nodiscard]] virtual result<std::optional<split_rows>> split(
        const qualified_name& schema, const schema_snapshot& target,
        const proto::batch& rows) const = 0;
    /// Writes `rows` (split's custom half) on `db`, in the transaction the caller began; no
    /// statement starts after `deadline`. On failure the caller rolls back. Errors carry the
    /// retry class of the statement that ended the write when the target's, else
    /// retry_class::none (the script refused the rows).
    [[nodiscard]] virtual result<void> write(
        target_session& db, const qualified_name& schema, const schema_snapshot& target,
        const proto::batch& rows, std::chrono::steady_clock::time_point deadline) const = 0;
};

/// Per table of `rows` (a split's custom half), its mutations as received, for the metrics the
/// plan's table_counts feed (received, applied, failed): the script writes them as they came,
/// unfolded. Topics that name no table of `target` are left out.
[[nodiscard]] std::vector<table_counts> custom_counts(const schema_snapshot& target,
                                                      const proto::batch& rows);

}  // namespace molt::replicator
