// Ingest, on the HTTP worker threads: staging a request's rows, recording resolved timestamps,
// and the backlog bound (replicator/README.md, "Consistent mode", ingest).
#include <map>
#include <vector>

#include <fmt/format.h>

#include "molt/common/log.hpp"
#include "molt/proto/encoder.hpp"
#include "molt/replicator/target/apply_plan.hpp"

#include "group.hpp"

namespace molt::replicator {

result<std::shared_ptr<consistent_applier::group>> consistent_applier::group_for_request(
    const qualified_name& schema, const result<std::shared_ptr<const schema_snapshot>>& known) {
    if (!known && known.error().code() == errc::not_found) {
        return known.error();  // an unknown target schema gets no pipeline (404)
    }
    // One group per target schema, named as the catalog spells it, whatever the URL's case.
    if (known) {
        return group_for((*known)->schema);
    }
    // The target is down: an existing group (the snapshot it had) serves.
    if (auto found = find_group(schema)) {
        return found;
    }
    return error{errc::unavailable,
                 fmt::format("the target's tables are not known yet: {}", known.error().message())};
}

result<accept_stats> consistent_applier::accept_rows(const qualified_name& schema,
                                                     const proto::batch& rows,
                                                     const request_context& context) {
    // Staging is idempotent: an attempt whose client has gone does no harm, so only the
    // deadline (counted from the request's arrival) is taken from the context.
    const auto start = sequencer_clock::now();
    const auto deadline = context.arrived + options_.request_timeout;
    // The target's tables name the staging tables and refuse unknown schemas and topics (404).
    // While the target is down, the last snapshot serves, so staging goes on.
    auto fresh = schemas_.get(schema, deadline);
    auto found = group_for_request(schema, fresh);
    if (!found) {
        return found.error();
    }
    group& g = **found;

    std::shared_ptr<const schema_snapshot> snapshot;
    bool first_lookup = true;
    auto lookup = [&]() -> result<void> {
        if (!first_lookup) {
            fresh = schemas_.get(schema, deadline);
        }
        first_lookup = false;
        if (fresh) {
            snapshot = *fresh;
            const std::lock_guard<std::mutex> lock(g.mutex);
            g.snapshot = snapshot;
            return ok();
        }
        if (fresh.error().code() == errc::not_found) {
            return fresh.error();
        }
        const std::lock_guard<std::mutex> lock(g.mutex);
        if (g.snapshot == nullptr) {
            return error{errc::unavailable, fmt::format("the target's tables are not known yet: {}",
                                                        fresh.error().message())};
        }
        snapshot = g.snapshot;
        return ok();
    };
    if (auto looked = lookup(); !looked) {
        return looked.error();
    }
    std::vector<const table_info*> tables;
    for (int pass = 0; pass < 2; ++pass) {
        tables.clear();
        for (const proto::table_mutations& t : rows.tables()) {
            const table_info* table = resolve_topic(*snapshot, t.topic);
            if (table == nullptr || is_progress_table(*table)) {
                break;
            }
            tables.push_back(table);
        }
        if (tables.size() == rows.tables().size() || pass == 1) {
            break;
        }
        // A table may have been created since the last introspection: look once more.
        schemas_.invalidate(schema);
        if (auto looked = lookup(); !looked) {
            return looked.error();
        }
    }
    if (tables.size() != rows.tables().size()) {
        return error{errc::not_found,
                     fmt::format("unknown table \"{}\" in target schema {}",
                                 log::sanitize(rows.tables()[tables.size()].topic), g.label)};
    }

    // Rows at or below the target's committed checkpoint are never read by a window again, so
    // they are told from new rows only once the target's progress is known (at start).
    hlc late_bound;
    hlc proposed;
    int64_t waiting = 0;
    {
        std::unique_lock<std::mutex> lock(g.mutex);
        if (!g.wake.wait_until(lock, deadline, [&] { return g.loaded || stopping_.load(); }) ||
            stopping_) {
            return error{errc::unavailable,
                         fmt::format("the target's progress in {} is not read yet; the changefeed "
                                     "will retry",
                                     g.label)};
        }
        proposed = g.proposed;
        late_bound = std::max(g.proposed, g.committed);
        waiting = g.resolved_backlog;
    }
    // Only rows a resolved timestamp covers count: the target can apply them without more
    // input. Rows above it are never refused for the bound, since the changefeed cannot
    // resolve them before they are acknowledged (initial scans, large transactions).
    if (options_.max_backlog > 0 && waiting >= static_cast<int64_t>(options_.max_backlog)) {
        backlog_refused_.with({g.label}).add();
        return error{errc::unavailable,
                     fmt::format("{} resolved mutations of {} wait for the target, the most "
                                 "staging holds (--stagingMaxBacklog {}); the changefeed will "
                                 "retry",
                                 waiting, g.label, options_.max_backlog)};
    }
    std::vector<staging_store::table_rows> to_stage;
    std::vector<staging_store::table_rows> late;
    std::map<std::string, size_t> stage_index;
    std::map<std::string, size_t> late_index;
    accept_stats stats;
    for (size_t i = 0; i < tables.size(); ++i) {
        const proto::table_mutations& group_rows = rows.tables()[i];
        const table_info& t = *tables[i];
        const std::string st = staging_store::stage_table(g.schema, t.name);
        for (const proto::mutation& m : group_rows.mutations) {
            staged_mutation sm;
            sm.updated = m.updated;
            sm.key = staged_key(t, group_rows.topic, m.key);
            // As sent: a "before" (WITH diff) is kept for a userscript's merge and the DLQ.
            proto::message_options options;
            options.diff = m.has_before;
            options.mvcc_timestamp = m.mvcc_timestamp.has_value();
            sm.message = proto::encode_message(proto::to_message(group_rows.topic, m), options);
            sm.deletion = m.deleted;
            // At or below the newest resolved timestamp received: a redelivery, or a row
            // staging never had (late_rows.cpp).
            const bool is_late = !late_bound.is_zero() && m.updated <= late_bound;
            auto& index = is_late ? late_index : stage_index;
            auto& list = is_late ? late : to_stage;
            auto [it, inserted] = index.try_emplace(st, list.size());
            if (inserted) {
                list.push_back({st, {}});
            }
            list[it->second].rows.push_back(std::move(sm));
            if (!is_late) {
                ++(m.deleted ? stats.deletes : stats.upserts);
            }
        }
    }

    // Late rows are duplicates of rows staged already, unless staging never had them: then a
    // changefeed re-created with an initial scan at an older cursor, or a table added to it,
    // sends them, and they are applied below. Rows old enough to have been retired cannot be
    // told from duplicates of retired rows: dropped, counted, and reported.
    std::vector<staging_store::table_rows> unseen;
    size_t duplicates = 0;
    size_t unverifiable = 0;
    for (const staging_store::table_rows& t : late) {
        auto compared = staging_.compare_late(t.stage_table, t.rows);
        if (!compared) {
            return staging_error(compared.error().with_context("comparing late rows with staging"));
        }
        if (!compared->differing.empty()) {
            violations_.with({g.label, "late_duplicate_differs"}).add(compared->differing.size());
            const staged_mutation& first = *compared->differing.front();
            log::error()
                .str("target", g.label)
                .str("table", t.stage_table)
                .str("key", log::sanitize(row_key(first.key)))
                .str("updated", first.updated.to_string())
                .unum("rows", compared->differing.size())
                .msg(
                    "changefeed protocol violation: a late duplicate differs from the mutation "
                    "staged for the same timestamp and key; the staged one stays applied");
        }
        staging_store::table_rows missing{t.stage_table, {}};
        {
            // Retiring may have advanced meanwhile: rows it deleted look missing.
            const std::lock_guard<std::mutex> lock(g.mutex);
            for (const staged_mutation* m : compared->missing) {
                if (g.verifiable(m->updated, options_.retire_offset)) {
                    missing.rows.push_back(*m);
                } else {
                    ++unverifiable;
                }
            }
        }
        duplicates += t.rows.size() - compared->missing.size();
        if (!missing.rows.empty()) {
            unseen.push_back(std::move(missing));
        }
    }
    late_.with({g.label}).add(duplicates);
    count_unverifiable(g, unverifiable);

    if (!to_stage.empty()) {
        auto outcome = staging_.stage(to_stage, proposed);
        if (!outcome) {
            return staging_error(outcome.error());
        }
        {
            const std::lock_guard<std::mutex> lock(g.mutex);
            for (const auto& [at, n] : outcome->staged_at) {
                backlog_ += g.count_staged(at, static_cast<int64_t>(n));
            }
        }
        pending_.get().set(static_cast<double>(backlog_.load()));
        const double elapsed = metrics::seconds_since(start);
        stage_duration_.with({g.label}).observe(elapsed);
        staged_.with({g.label}).add(outcome->staged);
        duplicates_.with({g.label}).add(outcome->duplicates);
        log::debug()
            .str("target", g.label)
            .unum("count", outcome->staged)
            .unum("duplicates", outcome->duplicates)
            .dbl("duration_ms", elapsed * 1e3)
            .msg("staged mutations");
        if (!outcome->after_resolved.empty()) {
            violations_.with({g.label, "after_resolved"}).add(outcome->after_resolved.size());
            log::error()
                .str("target", g.label)
                .str("resolved", proposed.to_string())
                .unum("rows", outcome->after_resolved.size())
                .str("first", outcome->after_resolved.front())
                .msg(
                    "changefeed protocol violation: new rows at or below a resolved timestamp "
                    "already received; they are applied only if their window has not been");
        }
    }

    if (duplicates > 0) {
        log::debug()
            .str("target", g.label)
            .unum("count", duplicates)
            .str("resolved", proposed.to_string())
            .msg("dropped late duplicates at or below the newest resolved timestamp");
    }
    if (!unseen.empty()) {
        if (auto applied = apply_late(g, std::move(unseen), deadline); !applied) {
            return applied.error();
        }
    }
    return stats;
}

result<void> consistent_applier::accept_resolved(const qualified_name& schema, hlc resolved) {
    // An unknown target schema gets no pipeline (a target that is down does not say "unknown").
    auto found = group_for_request(
        schema, schemas_.get(schema, sequencer_clock::now() + options_.request_timeout));
    if (!found) {
        return found.error();
    }
    group& g = **found;
    hlc latest;
    auto outcome = staging_.record_resolved(g.name, resolved, &latest);
    if (!outcome) {
        return staging_error(outcome.error());
    }
    switch (*outcome) {
    case resolved_outcome::recorded: {
        {
            const std::lock_guard<std::mutex> lock(g.mutex);
            const hlc before = g.proposed;
            g.proposed = std::max(g.proposed, resolved);
            g.count_resolved(before);
        }
        g.wake.notify_all();
        proposed_time_.with({g.label}).set(wall_seconds(resolved));
        source_lag_.with({g.label}).set(age_seconds(resolved));
        log::trace()
            .str("schema", g.label)
            .str("resolved", resolved.to_string())
            .msg("resolved timestamp");
        return ok();
    }
    case resolved_outcome::repeated: return ok();
    case resolved_outcome::backwards:
        // A changefeed that restarts resumes from its persisted high-water mark and sends
        // resolved timestamps older than ones it sent before. An older one says nothing new
        // (everything up to the newest is promised already), so it is acknowledged: refusing it
        // would only make the changefeed retry and restart again. Its rows at or below the
        // newest resolved timestamp are late (duplicates, or applied as late rows); the rest are
        // staged as usual.
        backwards_.with({g.label}).add();
        log::debug()
            .str("group", g.name)
            .str("proposed", resolved.to_string())
            .str("latest", latest.to_string())
            .msg("resolved timestamp older than the newest one; acknowledged and ignored");
        return ok();
    }
    return ok();
}

result<void> consistent_applier::count_backlog(group& g, const schema_snapshot& snapshot) {
    const std::lock_guard<std::mutex> counting(g.count_mutex);
    if (g.counted) {
        return ok();
    }
    // What earlier processes left: rows up to the newest resolved timestamp they recorded (rows
    // this process stages are counted as they come; above that timestamp, only new ones are).
    hlc from;
    hlc upto;
    {
        const std::lock_guard<std::mutex> lock(g.mutex);
        from = g.committed;
        upto = g.proposed_at_start;
    }
    // Counted per span between resolved timestamps they recorded (at most 32 spans), so that a
    // large backlog is applied in several windows, each moving the checkpoint (window_end).
    std::vector<hlc> ends;
    if (from < upto) {
        auto recorded = staging_.resolved_between(g.name, from, upto, 32);
        if (!recorded) {
            return staging_error(recorded.error());
        }
        ends = std::move(*recorded);
        if (ends.empty() || ends.back() < upto) {
            ends.push_back(upto);
        }
    }
    std::vector<std::pair<hlc, int64_t>> spans;
    hlc after = from;
    for (const hlc end : ends) {
        int64_t rows = 0;
        for (const table_info& t : snapshot.tables) {
            auto n =
                staging_.count_between(staging_store::stage_table(g.schema, t.name), after, end);
            if (!n) {
                return staging_error(n.error());
            }
            rows += static_cast<int64_t>(*n);
        }
        spans.emplace_back(end, rows);
        after = end;
    }
    {
        const std::lock_guard<std::mutex> lock(g.mutex);
        for (const auto& [end, rows] : spans) {
            if (rows > 0 && g.committed < end) {
                g.unapplied[end] += rows;
                g.resolved_backlog += rows;
                backlog_ += rows;
            }
        }
    }
    g.counted = true;
    return ok();
}

}  // namespace molt::replicator
