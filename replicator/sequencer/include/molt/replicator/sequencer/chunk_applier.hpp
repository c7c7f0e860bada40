#pragma once
// Applies one chunk of a resolved window (replicator/README.md, "Consistent mode", step 4) in
// one target transaction, retrying until it commits or the replicator stops:
//   - the chunk's range goes into the target's progress table first, idempotently, so an attempt
//     whose COMMIT acknowledgement was lost is recognised and not applied again;
//   - then its rows, folded per key, upserts parents first, then deletes children first; after
//     a unique key or foreign key conflict, in other orders, cheapest first: the folded rows
//     deletes first (a value a deleted row frees for another row of the chunk); both folded
//     orders again once every earlier chunk has committed; source transaction by source
//     transaction without savepoints, then with them (target/apply/ordered_apply.hpp);
//   - it commits only when every earlier chunk of the window has (chunk_scheduler::wait_turn):
//     waiting too long, or asked to stop, it rolls back instead, so the target never holds a
//     state the source did not have;
//   - a foreign-key failure waits for the window's earlier chunks, then retries; a schema failure
//     refreshes the snapshot; every other failure retries with jittered backoff (logged, with
//     less noise as it lasts; a refusal at error level at least once a minute, counted in
//     apply_stalled while it lasts);
//   - bad data (retry_class::fatal) applies the chunk row by row to name the row, or to divert
//     it to the dead-letter queue with --fatalRowPolicy dlq (target/apply/fatal_rows.hpp);
//   - a large chunk (one source transaction of more rows than --scanSize, e.g. a schema-change
//     backfill) is read from staging and written page by page inside its one transaction, so
//     memory holds a page, not the table (apply_large).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "molt/common/hlc.hpp"
#include "molt/common/ident.hpp"
#include "molt/common/metrics.hpp"
#include "molt/common/result.hpp"
#include "molt/proto/batch.hpp"
#include "molt/replicator/core/target.hpp"
#include "molt/replicator/sequencer/chunk_scheduler.hpp"
#include "molt/replicator/target/apply_metrics.hpp"
#include "molt/replicator/target/apply_plan.hpp"
#include "molt/replicator/target/fatal_rows.hpp"
#include "molt/replicator/target/schema_cache.hpp"
#include "molt/replicator/target/session_pool.hpp"
#include "molt/replicator/target/table_writer.hpp"

namespace molt::replicator {

/// Changes staged rows before they are applied: the userscript's table-level handlers
/// (replicator/README.md, "Userscripts"); nullopt when it leaves the schema's rows alone. An
/// error leaves the rows unapplied: the chunk retries with backoff, logged, until the script
/// accepts them. With `refused` (--fatalRowPolicy dlq), a row a handler refuses is left out and
/// listed there, for the chunk to write to the dead-letter queue.
using row_transform = std::function<result<std::optional<proto::batch>>(
    const qualified_name& schema, const schema_snapshot& target, const proto::batch& rows,
    std::vector<refused_row>* refused)>;

struct chunk_options {
    size_t flush_size = 1000;                                           ///< rows per statement
    std::chrono::nanoseconds apply_timeout = std::chrono::seconds(30);  ///< per attempt
    std::chrono::milliseconds first_backoff{50};
    std::chrono::milliseconds max_backoff{5000};
    /// Rows the target refuses (--fatalRowPolicy): the DLQ, apply_stalled; null: stall.
    const fatal_rows* fatal = nullptr;
    row_transform transform;  ///< empty: rows are applied as staged
    /// Tables a userscript writes itself (after the transform); null: none.
    const table_writer* writer = nullptr;
};

/// The counters a chunk moves.
struct chunk_metrics {
    apply_metrics& apply;
    metrics::family<metrics::counter>& applied;    ///< {schema, table}
    metrics::family<metrics::counter>& errors;     ///< {schema, reason}
    metrics::family<metrics::counter>& reordered;  ///< {schema, order}: not the folded order
    metrics::family<metrics::counter>& large;      ///< {schema}: applied page by page
};

/// The target schema a window applies to.
struct chunk_target {
    qualified_name schema;
    std::string label;  ///< for logs and metrics
    progress_statements progress;
    std::shared_ptr<const schema_snapshot> snapshot;
};

/// What a chunk needs of its window and of the replicator's lifecycle.
struct chunk_hooks {
    /// Sleeps up to `d`; false when the replicator is stopping.
    std::function<bool(std::chrono::nanoseconds d)> sleep;
    /// True once the replicator is stopping.
    std::function<bool()> stopping;
    /// Waits until every earlier chunk of the window has finished.
    std::function<void(uint64_t sequence)> wait_for_earlier;
    /// Before COMMIT: waits (up to a limit) until every earlier chunk has committed.
    std::function<chunk_scheduler::turn(uint64_t sequence)> wait_turn;
    /// The chunk's range is committed on the target (by this attempt or an earlier one).
    std::function<void(hlc first, hlc last)> committed;
    /// A large chunk's staged rows at HLC `at`: `page` is called with one page at a time (NDJSON
    /// v2 messages of one table; a key's column families on one page when the staging's key
    /// order keeps them together and they do not fill a page themselves), tables parents first,
    /// or children first; the first error ends it.
    using page_fn = std::function<result<void>(std::string body)>;
    std::function<result<void>(hlc at, bool children_first, const page_fn& page)> read_large;
};

class chunk_applier {
public:
    chunk_applier(const target_dialect& dialect, session_pool& pool, schema_cache& schemas,
                  chunk_metrics metrics, chunk_options options);

    /// Applies `c` to `target`; an error only when stopping (errc::cancelled) or when the chunk
    /// cannot even be decoded.
    [[nodiscard]] result<void> apply(const chunk& c, chunk_target target,
                                     const chunk_hooks& hooks) const;

private:
    /// A large chunk, page by page in one target transaction: upserts parents first, then
    /// deletes children first (after a unique or foreign key conflict, deletes first, unless a
    /// delete could cascade). What only the rows in source order can resolve or name (a
    /// conflict neither order resolves, bad data: row by row, or to the DLQ) is applied by
    /// apply() with every row in memory when they fit (48 MiB); else it stalls loudly.
    result<void> apply_large(const chunk& c, const chunk_target& target,
                             const chunk_hooks& hooks) const;
    /// The chunk's rows in memory, as apply() takes them; nullopt when they do not fit.
    result<std::optional<chunk>> load_large(const chunk& c, const chunk_hooks& hooks) const;
    /// A page of a large chunk decoded and planned (the plan's keys point into `rows`); an
    /// error when stopping.
    struct planned_page {
        proto::batch rows;
        apply_plan plan;
        std::optional<proto::batch> custom;  ///< rows options_.writer writes
    };
    result<planned_page> plan_page(std::string body, const chunk_target& target,
                                   const chunk_hooks& hooks) const;
    /// options_.transform on a chunk's rows; its errors retry. With --fatalRowPolicy dlq the
    /// rows its handlers refuse are listed in `refused` (else they fail the transform).
    result<std::optional<proto::batch>> transform(const chunk_target& target,
                                                  const proto::batch& rows,
                                                  std::vector<refused_row>& refused) const;
    /// Takes the rows options_.writer writes out of `rows` (nullopt: none); its errors retry.
    result<std::optional<proto::batch>> split_custom(const chunk_target& target,
                                                     proto::batch& rows) const;
    /// `custom` through options_.writer, in db's transaction (rolled back on failure).
    result<void> write_custom(target_session& db, const chunk_target& target,
                              const proto::batch& custom,
                              std::chrono::steady_clock::time_point deadline) const;
    /// Whether the large chunk deletes rows another table references (a read of its pages).
    result<bool> deletes_referenced_rows_large(const chunk& c, const chunk_target& target,
                                               const chunk_hooks& hooks) const;
    /// After a failed attempt: counts, refreshes the schema after a schema error or a refusal,
    /// logs (a refusal at error level at least once a minute) and sleeps the jittered backoff,
    /// which it doubles; false when stopping.
    struct retry_state;
    bool back_off(const chunk& c, chunk_target& target, const chunk_hooks& hooks,
                  const error& failure, int attempt, retry_state& state) const;

    const target_dialect& dialect_;
    session_pool& pool_;
    schema_cache& schemas_;
    chunk_metrics metrics_;
    chunk_options options_;
};

}  // namespace molt::replicator
