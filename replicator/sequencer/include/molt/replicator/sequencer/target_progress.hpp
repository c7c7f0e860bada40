#pragma once
// The consistent mode's record of what the target holds, kept in the target schema itself
// (replicator/README.md, "Consistent mode"; the SQL is the dialect's progress_statements):
//
//   _replicator_progress (first_nanos, first_logical, last_nanos, last_logical, applied_at)
//
// The row with first = 0 is the committed checkpoint C: every staged HLC up to last is applied.
// Other rows are the chunks of the window in progress: every staged HLC from first to last,
// except those of other rows, is applied. Because the rows are written in the same target
// transactions as the data, the target is the authority after any crash.

#include <chrono>

#include "molt/common/hlc.hpp"
#include "molt/common/result.hpp"
#include "molt/replicator/core/target.hpp"
#include "molt/replicator/sequencer/window_reader.hpp"
#include "molt/replicator/target/session_pool.hpp"

namespace molt::replicator {

struct target_progress {
    hlc committed;           ///< the committed checkpoint (zero when none)
    applied_ranges applied;  ///< chunks of the window in progress
};

/// Creates the progress table if missing and reads it.
[[nodiscard]] result<target_progress> read_progress(session_pool& pool,
                                                    const progress_statements& sql,
                                                    std::chrono::steady_clock::time_point deadline);

/// Replaces every progress row with the committed checkpoint `resolved`, in one transaction.
[[nodiscard]] result<void> write_checkpoint(session_pool& pool, const progress_statements& sql,
                                            hlc resolved,
                                            std::chrono::steady_clock::time_point deadline);

/// Records a chunk's range in the open transaction `db`, idempotently: true when this inserted
/// the row, false when it was there already (that chunk committed before, e.g. an attempt whose
/// COMMIT acknowledgement was lost).
[[nodiscard]] result<bool> record_progress(target_session& db, const progress_statements& sql,
                                           hlc first, hlc last);

/// The four parameters of a progress row.
[[nodiscard]] sql_params range_params(hlc first, hlc last);

}  // namespace molt::replicator
