#pragma once
// The transactionally consistent mode (the default).
//
// Ingest (HTTP threads): a request's rows are staged durably (staging_store) before the 200;
// rows at or below the committed checkpoint are late duplicates, dropped and counted (a content
// mismatch with what was staged is logged as a changefeed protocol violation). A resolved
// timestamp is recorded when it is not older than the newest one; an older one (a changefeed
// that restarted from its high-water mark re-sends them) is acknowledged, counted and ignored.
// Above --stagingMaxBacklog unapplied rows, requests get 503.
//
// Apply (one pipeline thread per target schema): for the window (committed C, resolved R] it
// reads the staged rows of every table merged by HLC, cuts them into target transactions of
// about --flushSize mutations that never split one HLC (one of more than --scanSize rows, such
// as a schema-change backfill, is read and written page by page inside its one transaction,
// alone), folds each per key and writes upserts
// parents first, then deletes children first. Up to --parallelism transactions run at once, only
// when their key sets are disjoint. Each transaction first records its HLC range in the target's
// _replicator_progress table (idempotently: a range already there means an earlier attempt
// committed, e.g. one whose COMMIT acknowledgement was lost, and the transaction is rolled back
// unapplied), so a crash or a retry never re-applies or half-applies it. Committed ranges are
// remembered as they commit, and the progress table is re-read after a failed window, so a
// retried window skips exactly what is applied. When every range of the window is in, one
// transaction folds them into the new committed checkpoint R, which staging then records too.
// Applied staged rows are retired after --retireOffset.
//
// Parts (replicator/README.md, "Consistent mode"): ingest.cpp (staging a request, resolved
// timestamps, the backlog), apply_loop.cpp (per schema: progress, windows, checkpoints,
// retiring), window_reader (the merge by HLC), chunk_scheduler (the fixed pool, disjoint keys),
// chunk_applier (one target transaction and its retries), target_progress (the progress table).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "molt/common/metrics.hpp"
#include "molt/replicator/core/acceptor.hpp"
#include "molt/replicator/core/target.hpp"
#include "molt/replicator/sequencer/chunk_applier.hpp"
#include "molt/replicator/sequencer/window_reader.hpp"
#include "molt/replicator/staging/staging_store.hpp"
#include "molt/replicator/target/apply_metrics.hpp"
#include "molt/replicator/target/schema_cache.hpp"
#include "molt/replicator/target/session_pool.hpp"

namespace molt::replicator {

struct consistent_options {
    size_t flush_size = 1000;                                         ///< --flushSize
    size_t parallelism = 16;                                          ///< --parallelism
    size_t scan_size = 10000;                                         ///< --scanSize
    std::chrono::nanoseconds flush_period = std::chrono::seconds(1);  ///< --flushPeriod
    std::chrono::nanoseconds retire_offset = std::chrono::hours(24);  ///< --retireOffset
    uint64_t max_backlog = 0;  ///< --stagingMaxBacklog (0: no bound)
    /// --allowBackwardsCheckpoint: accepted; older resolved timestamps are always acknowledged.
    bool allow_backwards_checkpoint = false;
    std::chrono::nanoseconds request_timeout = std::chrono::seconds(30);  ///< per request
    std::chrono::nanoseconds apply_timeout = std::chrono::seconds(30);    ///< --applyTimeout
    std::chrono::milliseconds first_backoff{50};
    std::chrono::milliseconds max_backoff{5000};
    fatal_row_options fatal;  ///< --fatalRowPolicy, --dlqTableName
    row_transform transform;  ///< --userscript's table-level handlers (empty: none)
    /// --userscript's onWrite/apply tables (table_writer.hpp); null: none.
    const table_writer* writer = nullptr;
};

/// The name of the progress table the consistent mode keeps in each target schema.
inline constexpr std::string_view progress_table_name = "_replicator_progress";

class consistent_applier final : public mutation_acceptor {
public:
    consistent_applier(const target_dialect& dialect, session_pool& target_pool,
                       schema_cache& schemas, staging_store& staging, metrics::registry& metrics,
                       consistent_options options);
    ~consistent_applier() override;
    consistent_applier(const consistent_applier&) = delete;
    consistent_applier& operator=(const consistent_applier&) = delete;

    /// Starts the pipelines of target schemas with resolved timestamps not applied yet.
    [[nodiscard]] result<void> start();
    /// Stops every pipeline (a window in progress stops between transactions).
    void stop();

    result<accept_stats> accept_rows(const qualified_name& schema, const proto::batch& rows,
                                     const request_context& context = {}) override;
    result<void> accept_resolved(const qualified_name& schema, hlc resolved) override;

    /// The committed checkpoint of a target schema (any spelling of its name), as far as this
    /// process knows it.
    [[nodiscard]] hlc committed(const qualified_name& schema);
    /// Rows staged and not applied yet, all target schemas.
    [[nodiscard]] int64_t backlog() const noexcept { return backlog_.load(); }

private:
    struct group;

    /// The group of a target schema named as its catalog spells it (schema_snapshot::schema).
    result<std::shared_ptr<group>> group_for(const qualified_name& schema);
    /// An existing group whose schema a URL names: the same spelling first, else ignoring ASCII
    /// case (null when none), for when the target cannot say how it spells the schema.
    std::shared_ptr<group> find_group(const qualified_name& schema);
    /// The group a request for `schema` goes to, given the schema cache's answer (`known`): by
    /// the catalog's spelling; while the target is down, an existing group; else 503 (404 for
    /// an unknown schema).
    result<std::shared_ptr<group>> group_for_request(
        const qualified_name& schema, const result<std::shared_ptr<const schema_snapshot>>& known);
    void run(group& g);
    result<void> load_progress(group& g);
    result<void> count_backlog(group& g, const schema_snapshot& snapshot);
    result<void> apply_window(group& g, hlc resolved);
    /// Rows at or below the newest resolved timestamp that staging never had: applied once the
    /// committed checkpoint covers them, skipping keys whose staged version is as new or newer,
    /// then staged (late_rows.cpp). Waits for its turn until `deadline` (then unavailable).
    result<void> apply_late(group& g, std::vector<staging_store::table_rows> rows,
                            std::chrono::steady_clock::time_point deadline);
    result<void> apply_late_rows(group& g, const std::vector<staging_store::table_rows>& rows,
                                 std::chrono::steady_clock::time_point deadline);
    /// Counts (and, at most every 10 s, reports) late rows staging cannot check any more.
    void count_unverifiable(group& g, size_t n);
    /// The staged rows of one large source transaction (HLC `at`), a page (--scanSize) at a
    /// time, table by table (chunk_hooks::read_large).
    result<void> read_large(const std::vector<window_table>& parents_first, hlc at,
                            bool children_first, const chunk_hooks::page_fn& page);
    /// About how many rows a window holds when the backlog spans several resolved timestamps.
    [[nodiscard]] int64_t window_rows() const;
    result<void> complete_window(group& g, hlc resolved);
    void retire(group& g);
    bool sleep_for(group& g, std::chrono::nanoseconds d);
    void publish(group& g);

    const target_dialect& dialect_;
    session_pool& target_pool_;
    schema_cache& schemas_;
    staging_store& staging_;
    consistent_options options_;
    std::atomic<bool> stopping_{false};
    std::atomic<int64_t> backlog_{0};

    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<group>> groups_;

    metrics::family<metrics::counter>& staged_;
    metrics::family<metrics::counter>& duplicates_;
    metrics::family<metrics::counter>& late_;
    metrics::family<metrics::counter>& late_applied_;
    metrics::family<metrics::counter>& late_superseded_;
    metrics::family<metrics::counter>& late_unverifiable_;
    metrics::family<metrics::counter>& violations_;
    metrics::family<metrics::counter>& backwards_;
    apply_metrics apply_metrics_;
    metrics::family<metrics::counter>& applied_;
    metrics::family<metrics::counter>& apply_errors_;
    metrics::family<metrics::counter>& reordered_;
    metrics::family<metrics::counter>& large_;
    metrics::family<metrics::counter>& retired_;
    metrics::family<metrics::histogram>& stage_duration_;
    metrics::family<metrics::gauge>& pending_;
    metrics::family<metrics::counter>& backlog_refused_;
    metrics::family<metrics::gauge>& committed_time_;
    metrics::family<metrics::gauge>& proposed_time_;
    metrics::family<metrics::gauge>& source_lag_;
    metrics::family<metrics::gauge>& target_lag_;
    fatal_rows fatal_;
    chunk_applier chunks_;
};

}  // namespace molt::replicator
