#pragma once

#include <atomic>
// Immediate mode: each request is planned (apply_plan.hpp) and written to the target in one
// transaction before the request is acknowledged. Retryable failures (serialization, deadlock,
// lost connection) retry the whole transaction with capped exponential backoff until
// --applyTimeout; unsatisfied foreign keys and schema changes answer "unavailable" (503) so the
// changefeed redelivers; bad data answers 400. Thread-safe: requests run concurrently, each on
// its own session.
//
// Immediate mode is eventually consistent: a changefeed replay may briefly re-apply older
// versions of a row, and there is no ordering between concurrent requests.

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "molt/common/metrics.hpp"
#include "molt/replicator/core/acceptor.hpp"
#include "molt/replicator/core/target.hpp"
#include "molt/replicator/target/apply_metrics.hpp"
#include "molt/replicator/target/apply_plan.hpp"
#include "molt/replicator/target/fatal_rows.hpp"
#include "molt/replicator/target/schema_cache.hpp"
#include "molt/replicator/target/session_pool.hpp"
#include "molt/replicator/target/table_writer.hpp"

namespace molt::replicator {

struct apply_options {
    size_t rows_per_statement = 1000;                                   ///< --flushSize
    std::chrono::nanoseconds apply_timeout = std::chrono::seconds(30);  ///< --applyTimeout
    std::chrono::milliseconds first_backoff{10};
    std::chrono::milliseconds max_backoff{1000};
    fatal_row_options fatal;  ///< --fatalRowPolicy, --dlqTableName
    /// Immediate mode: how many requests may wait (retrying, until their deadline) for a parent
    /// row another request brings, after a foreign-key failure; beyond, 503 at once. Keep it
    /// below --parallelism, so that requests bringing parents still find a worker.
    size_t max_deferred_waits = 0;
    /// Tables a userscript writes itself (onWrite, apply); null: none.
    const table_writer* writer = nullptr;
};

class immediate_applier final : public mutation_acceptor {
public:
    immediate_applier(const target_dialect& dialect, session_pool& pool, schema_cache& schemas,
                      metrics::registry& metrics, apply_options options);

    result<accept_stats> accept_rows(const qualified_name& schema, const proto::batch& rows,
                                     const request_context& context = {}) override;
    result<void> accept_resolved(const qualified_name& schema, hlc resolved) override;

private:
    /// `stale` says why the attempt must not commit (its deadline passed, its client left);
    /// it is asked before each step and last right before COMMIT.
    using stale_check = std::function<std::optional<error>()>;
    /// The rows a userscript writes itself (options_.writer), written last in the transaction.
    struct custom_rows {
        const qualified_name& schema;
        const schema_snapshot& snapshot;
        const proto::batch* rows = nullptr;  ///< null: none
        std::chrono::steady_clock::time_point deadline;
    };
    result<void> run_transaction(target_session& session, const apply_plan& plan,
                                 const custom_rows& custom, const stale_check& stale);
    result<void> run_in_source_order(target_session& session, const schema_snapshot& snapshot,
                                     const proto::batch& rows, const custom_rows& custom,
                                     std::vector<dead_letter>& letters, const stale_check& stale);
    /// custom.rows through options_.writer (rolled back on failure).
    result<void> write_custom(target_session& session, const custom_rows& custom);

    /// Once per schema: immediate mode cannot keep foreign keys under CockroachDB's order.
    void warn_foreign_keys(const std::string& schema);

    const target_dialect& dialect_;
    session_pool& pool_;
    schema_cache& schemas_;
    apply_options options_;
    metrics::family<metrics::counter>& received_;
    metrics::family<metrics::counter>& succeeded_;
    metrics::family<metrics::counter>& failed_;
    apply_metrics applied_;
    metrics::family<metrics::gauge>& resolved_;
    fatal_rows fatal_;
    std::atomic<size_t> deferred_waits_{0};  // requests waiting for a parent row
    std::mutex warned_mutex_;
    std::set<std::string> warned_foreign_keys_;  // schemas told immediate mode and FKs clash
};

}  // namespace molt::replicator
