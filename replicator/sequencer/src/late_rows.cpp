// Late rows: at or below the newest resolved timestamp, never staged (replicator/README.md,
// "Consistent mode", late rows). A changefeed re-created with `cursor` and an initial scan, or a
// table added with ALTER CHANGEFEED ... WITH initial_scan, sends every scanned row at the scan's
// HLC, which the receiver has already resolved. They are not duplicates: the request that
// brought them applies them, in its own target transaction, once the committed checkpoint
// covers them (every older version of their keys is on the target), skipping each key whose
// staged version is as new or newer (that one is applied, or will be), and then stages them so
// a redelivery is a duplicate. One such request at a time per target schema, never during a
// window: the newest staged version of a key cannot change between the comparison and the write.
#include <algorithm>

#include <fmt/format.h>

#include "molt/common/log.hpp"
#include "molt/proto/decoder.hpp"
#include "molt/replicator/target/apply_plan.hpp"
#include "molt/replicator/target/table_writer.hpp"

#include "group.hpp"

namespace molt::replicator {

result<void> consistent_applier::apply_late(group& g, std::vector<staging_store::table_rows> rows,
                                            std::chrono::steady_clock::time_point deadline) {
    hlc newest;
    size_t total = 0;
    for (const staging_store::table_rows& t : rows) {
        for (const staged_mutation& m : t.rows) {
            newest = std::max(newest, m.updated);
            ++total;
        }
    }
    {
        std::unique_lock<std::mutex> lock(g.mutex);
        const auto waiting = g.late_waiters.insert(newest);
        const bool turn = g.wake.wait_until(lock, deadline, [&] {
            return stopping_.load() || (g.covers(newest) && !g.window_running && !g.late_running);
        });
        g.late_waiters.erase(waiting);
        if (stopping_ || !turn) {
            g.wake.notify_all();  // the apply loop may have let this request go first
            return error{errc::unavailable,
                         fmt::format("{} rows at or below the resolved timestamp that staging "
                                     "never had (newest {}) wait for the target to hold the "
                                     "checkpoint {} ({}); the changefeed will retry",
                                     total, newest.to_string(), g.label,
                                     stopping_ ? "stopping" : "not yet")};
        }
        g.late_running = true;
    }
    // Whatever happens below (an exception included), the turn ends and the loop is woken.
    struct turn_end {
        group& g;
        ~turn_end() {
            {
                const std::lock_guard<std::mutex> lock(g.mutex);
                g.late_running = false;
            }
            g.wake.notify_all();
        }
    } end{g};
    try {
        return apply_late_rows(g, rows, deadline);
    } catch (const std::exception& e) {
        log::error()
            .str("schema", g.label)
            .err(e.what())
            .msg("unexpected exception applying late rows");
        return error{errc::internal, fmt::format("unexpected exception: {}", e.what())};
    }
}

void consistent_applier::count_unverifiable(group& g, size_t n) {
    if (n == 0) {
        return;
    }
    late_unverifiable_.with({g.label}).add(n);
    const auto now = sequencer_clock::now();
    {
        const std::lock_guard<std::mutex> lock(g.mutex);
        if (now - g.unverifiable_logged < std::chrono::seconds(10)) {
            return;
        }
        g.unverifiable_logged = now;
    }
    log::warn()
        .str("schema", g.label)
        .unum("rows", n)
        .str("retireOffset", fmt::format("{}s", options_.retire_offset.count() / 1000000000))
        .msg(
            "dropped rows below the committed checkpoint that staging does not have and that "
            "are older than --retireOffset: duplicates of retired rows, or rows of a scan at an "
            "older cursor that can no longer be checked against newer versions (re-create such "
            "a changefeed with a cursor younger than --retireOffset); counted in "
            "stage_late_unverifiable_mutations_total");
}

result<void> consistent_applier::apply_late_rows(group& g,
                                                 const std::vector<staging_store::table_rows>& rows,
                                                 std::chrono::steady_clock::time_point until) {
    const auto start = sequencer_clock::now();
    const auto deadline = std::min(until, start + options_.apply_timeout);
    auto snapshot = schemas_.get(g.schema, deadline);
    if (!snapshot) {
        return error{errc::unavailable, snapshot.error().message(), snapshot.error().retry()};
    }
    std::vector<staging_store::table_rows> kept;
    std::vector<const staged_mutation*> ordered;
    size_t superseded = 0;
    size_t unverifiable = 0;
    for (const staging_store::table_rows& t : rows) {
        // Retiring ran (under the gate) since ingest checked: rows it can no longer vouch for.
        std::vector<staged_mutation> checkable;
        {
            const std::lock_guard<std::mutex> lock(g.mutex);
            for (const staged_mutation& m : t.rows) {
                if (g.verifiable(m.updated, options_.retire_offset)) {
                    checkable.push_back(m);
                } else {
                    ++unverifiable;
                }
            }
        }
        auto newest = staging_.newest_versions(t.stage_table, checkable);
        if (!newest) {
            return staging_error(newest.error());
        }
        staging_store::table_rows keep{t.stage_table, {}};
        for (const staged_mutation& m : checkable) {
            const auto it = newest->find(m.key);
            if (it != newest->end() && m.updated <= it->second) {
                ++superseded;
                continue;
            }
            keep.rows.push_back(m);
        }
        if (!keep.rows.empty()) {
            kept.push_back(std::move(keep));
        }
    }
    late_superseded_.with({g.label}).add(superseded);
    count_unverifiable(g, unverifiable);
    if (kept.empty()) {
        return ok();
    }
    for (const staging_store::table_rows& t : kept) {
        for (const staged_mutation& m : t.rows) {
            ordered.push_back(&m);
        }
    }
    // In HLC order, so the plan folds several versions of a key to the newest.
    std::stable_sort(
        ordered.begin(), ordered.end(),
        [](const staged_mutation* a, const staged_mutation* b) { return a->updated < b->updated; });
    std::string body;
    for (const staged_mutation* m : ordered) {
        body += m->message;
        body += '\n';
    }
    auto decoded = proto::decode_ndjson(std::move(body));
    if (!decoded) {
        return decoded.error().with_context("late rows cannot be decoded");
    }
    if (options_.transform) {
        // No dead-letter queue here: a row the script refuses fails the request (400), as in
        // immediate mode.
        auto changed = options_.transform(g.schema, **snapshot, *decoded, nullptr);
        if (!changed) {
            return changed.error();
        }
        if (*changed) {
            *decoded = std::move(**changed);
        }
    }
    std::optional<proto::batch> custom;  // rows the userscript writes itself
    if (options_.writer != nullptr) {
        auto parts = options_.writer->split(g.schema, **snapshot, *decoded);
        if (!parts) {
            return parts.error();
        }
        if (*parts) {
            *decoded = std::move((*parts)->built_in);
            custom = std::move((*parts)->custom);
        }
    }
    auto plan = plan_batch(**snapshot, *decoded, dialect_, options_.flush_size,
                           statement_order::upserts_first);
    if (!plan) {
        return plan.error();
    }
    auto session = target_pool_.acquire(deadline);
    if (!session) {
        return error{errc::unavailable, session.error().message(), session.error().retry()};
    }
    target_session& db = **session;
    auto written = [&]() -> result<void> {
        if (auto begun = db.begin(); !begun) {
            return begun.error();
        }
        if (auto done = execute_statements(db, *plan); !done) {
            db.rollback();
            return done.error();
        }
        if (custom) {
            if (auto done = options_.writer->write(db, g.schema, **snapshot, *custom, deadline);
                !done) {
                db.rollback();
                return done.error();
            }
        }
        return db.commit();
    }();
    if (!written) {
        const error& e = written.error();
        if (e.retry() == retry_class::reconnect || e.code() == errc::unavailable) {
            session->mark_broken();
        }
        apply_metrics_.retried(g.label, e.retry());
        if (e.retry() == retry_class::fatal) {
            // The changefeed retries the request: a stall, named in its error and our log.
            log::error()
                .str("schema", g.label)
                .unum("rows", ordered.size())
                .err(e)
                .msg("the target refused rows at or below the resolved timestamp");
            return error{errc::invalid_argument,
                         fmt::format("the target refused rows at or below the resolved "
                                     "timestamp: {}",
                                     e.message())};
        }
        return error{
            errc::unavailable,
            fmt::format("applying rows at or below the resolved timestamp: {}", e.message()),
            e.retry()};
    }
    apply_metrics_.applied(g.label, *plan, metrics::seconds_since(start));
    for (const table_counts& t : plan->tables) {
        applied_.with({g.label, t.table->name}).add(t.received);
    }
    if (custom) {
        for (const table_counts& t : custom_counts(**snapshot, *custom)) {
            applied_.with({g.label, t.table->name}).add(t.received);
        }
    }
    // Staged after the target holds them: a redelivery is then a duplicate. A failure here
    // (the changefeed retries) writes the same rows again, which changes nothing.
    if (auto staged = staging_.stage(kept, hlc()); !staged) {
        return staging_error(staged.error());
    }
    late_applied_.with({g.label}).add(ordered.size());
    log::info()
        .str("schema", g.label)
        .unum("applied", ordered.size())
        .unum("superseded", superseded)
        .str("newest", ordered.back()->updated.to_string())
        .msg(
            "applied rows at or below the resolved timestamp that staging never had (an initial "
            "scan at an older cursor, or a table added to the changefeed); keys with a newer "
            "staged version kept it");
    return ok();
}

}  // namespace molt::replicator
