#include "molt/replicator/target/immediate_applier.hpp"

#include <functional>
#include <optional>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "molt/common/duration.hpp"
#include "molt/common/log.hpp"
#include "molt/replicator/target/apply_plan.hpp"
#include "molt/replicator/target/ordered_apply.hpp"

namespace molt::replicator {
namespace {

using clock_type = std::chrono::steady_clock;
using immediate_applier_stale_check = std::function<std::optional<error>()>;

}  // namespace

immediate_applier::immediate_applier(const target_dialect& dialect, session_pool& pool,
                                     schema_cache& schemas, metrics::registry& metrics,
                                     apply_options options)
    : dialect_(dialect),
      pool_(pool),
      schemas_(schemas),
      options_(options),
      received_(metrics.counter("mutations_received_count", "Mutations received, per table",
                                {"schema", "table"})),
      succeeded_(metrics.counter("mutations_success_count",
                                 "Mutations written to the target, per table",
                                 {"schema", "table"})),
      failed_(metrics.counter("mutations_error_count", "Mutations whose request failed, per table",
                              {"schema", "table"})),
      applied_(metrics),
      resolved_(metrics.gauge("resolved_timestamp_seconds",
                              "The latest resolved timestamp received, per schema", {"schema"})),
      fatal_(dialect, metrics, options.fatal) {}

namespace {

// Rolls back instead of committing when the attempt has become stale.
result<void> commit_unless_stale(target_session& session,
                                 const immediate_applier_stale_check& stale) {
    if (auto why = stale(); why) {
        session.rollback();
        return *why;
    }
    return session.commit();
}

}  // namespace

result<void> immediate_applier::write_custom(target_session& session, const custom_rows& custom) {
    if (custom.rows == nullptr) {
        return ok();
    }
    auto done = options_.writer->write(session, custom.schema, custom.snapshot, *custom.rows,
                                       custom.deadline);
    if (!done) {
        session.rollback();
    }
    return done;
}

result<void> immediate_applier::run_transaction(target_session& session, const apply_plan& plan,
                                                const custom_rows& custom,
                                                const stale_check& stale) {
    if (auto why = stale(); why) {
        return *why;
    }
    if (auto begun = session.begin(); !begun) {
        return begun;
    }
    if (auto done = execute_statements(session, plan); !done) {
        return done;
    }
    if (auto done = write_custom(session, custom); !done) {
        return done;
    }
    return commit_unless_stale(session, stale);
}

result<void> immediate_applier::run_in_source_order(
    target_session& session, const schema_snapshot& snapshot, const proto::batch& rows,
    const custom_rows& custom, std::vector<dead_letter>& letters, const stale_check& stale) {
    if (auto why = stale(); why) {
        return *why;
    }
    if (auto begun = session.begin(); !begun) {
        return begun;
    }
    auto done = apply_in_source_order(session, snapshot, rows, dialect_,
                                      options_.rows_per_statement, &fatal_);
    if (!done) {
        return done.error();
    }
    if (auto written = write_custom(session, custom); !written) {
        return written;
    }
    if (auto committed = commit_unless_stale(session, stale); !committed) {
        return committed;
    }
    letters = std::move(done->dead_letters);
    return ok();
}

result<accept_stats> immediate_applier::accept_rows(const qualified_name& schema,
                                                    const proto::batch& rows,
                                                    const request_context& context) {
    const auto start = clock_type::now();
    // From the request's arrival: time in the queue counts. Keep --applyTimeout below the
    // changefeed's webhook_client_timeout, so that an attempt never commits after the
    // changefeed gave up on it and sent the rows again (maybe newer versions by then).
    const auto deadline = context.arrived + options_.apply_timeout;
    const std::string schema_label = schema.to_string();
    bool went_stale = false;
    const stale_check stale = [&]() -> std::optional<error> {
        went_stale = true;
        if (context.gone()) {
            return error{errc::cancelled,
                         "the client closed the connection before the answer (the changefeed "
                         "timed out and will send the rows again); rolled back, not applied"};
        }
        if (clock_type::now() >= deadline) {
            return error{errc::timeout,
                         fmt::format("the request's deadline ({} after it arrived: --applyTimeout, "
                                     "--httpResponseTimeout) passed before COMMIT; rolled back, "
                                     "not applied",
                                     format_duration(options_.apply_timeout))};
        }
        went_stale = false;
        return std::nullopt;
    };

    auto snapshot = schemas_.get(schema, deadline);
    if (!snapshot) {
        return std::move(snapshot).error();
    }
    // The rows of tables a userscript writes itself leave the plan (table_writer.hpp).
    std::optional<split_rows> split;
    auto plan_rows = [&]() -> result<apply_plan> {
        split.reset();
        if (options_.writer != nullptr) {
            auto parts = options_.writer->split(schema, **snapshot, rows);
            if (!parts) {
                return std::move(parts).error();
            }
            split = std::move(*parts);
        }
        return plan_batch_deletes_first_if_safe(**snapshot, split ? split->built_in : rows,
                                                dialect_, options_.rows_per_statement);
    };
    auto plan = plan_rows();
    if (!plan && plan.error().code() == errc::not_found) {
        // A table may have been created since the last introspection: look once more.
        schemas_.invalidate(schema);
        snapshot = schemas_.get(schema, deadline);
        if (!snapshot) {
            return std::move(snapshot).error();
        }
        plan = plan_rows();
    }
    if (!plan) {
        return std::move(plan).error();
    }
    const proto::batch& built_in = split ? split->built_in : rows;
    const custom_rows custom{schema, **snapshot, split ? &split->custom : nullptr, deadline};
    if (auto ready = fatal_.ready(**snapshot); !ready) {
        // --fatalRowPolicy dlq without its table: nothing is applied until it exists (503).
        schemas_.invalidate(schema);
        log::error().str("schema", schema_label).err(ready.error()).msg("not applying");
        return error{errc::unavailable, ready.error().message(), retry_class::schema};
    }
    // Per table: the plan's, and the rows the userscript writes (as received).
    std::vector<table_counts> counts = plan->tables;
    if (split) {
        for (const table_counts& t : custom_counts(**snapshot, split->custom)) {
            counts.push_back(t);
        }
    }
    for (const table_counts& t : counts) {
        received_.with({schema_label, t.table->name}).add(t.received);
    }
    auto count_failure = [&] {
        for (const table_counts& t : counts) {
            failed_.with({schema_label, t.table->name}).add(t.received);
        }
    };

    auto backoff = options_.first_backoff;
    // After a unique key conflict in the folded plan: source transaction by source transaction
    // (ordered_apply.hpp), still in one target transaction.
    bool in_source_order = false;
    std::vector<dead_letter> letters;
    // A request that waits for a parent row holds one of max_deferred_waits slots until it ends.
    struct deferred_slot {
        std::atomic<size_t>& waits;
        bool held = false;
        bool take(size_t max) {
            size_t n = waits.load();
            while (!held && n < max) {
                held = waits.compare_exchange_weak(n, n + 1);
            }
            return held;
        }
        ~deferred_slot() {
            if (held) {
                --waits;
            }
        }
    } deferred{deferred_waits_};
    std::chrono::milliseconds pause{0};  // before the next attempt, holding no session
    for (int attempt = 1;; ++attempt) {
        if (pause.count() > 0) {
            std::this_thread::sleep_for(pause);
            pause = std::chrono::milliseconds(0);
        }
        auto session = pool_.acquire(deadline);
        if (!session) {
            count_failure();
            return std::move(session).error();
        }
        // No statement starts past the deadline (each one ends by its own limit).
        struct deadline_scope {
            target_session& s;
            ~deadline_scope() { s.set_deadline(std::nullopt); }
        } scope{**session};
        (*session)->set_deadline(deadline);
        auto done = in_source_order ? run_in_source_order(**session, **snapshot, built_in, custom,
                                                          letters, stale)
                                    : run_transaction(**session, *plan, custom, stale);
        if (done) {
            break;
        }
        const error& e = done.error();
        if (went_stale) {
            count_failure();
            log::warn()
                .str("schema", schema_label)
                .num("attempt", attempt)
                .err(e)
                .msg("not applying a request");
            return e;
        }
        const retry_class why = e.retry();
        if (why == retry_class::reconnect) {
            session->mark_broken();
        }
        if ((why == retry_class::unique || why == retry_class::fatal) && !in_source_order) {
            // Unique keys: another row order; bad data: row by row, to find the row (and divert
            // it with --fatalRowPolicy dlq).
            in_source_order = true;
            log::debug()
                .str("schema", schema_label)
                .err(e)
                .msg("the folded batch failed; applying it in source order");
            continue;
        }
        // A child before its parent (the changefeed gives no order across keys; the parent may
        // be in a request that is on its way, or lagging seconds behind): wait for it here,
        // within the deadline, rather than answer 503 and have the changefeed back off or
        // restart while the parent lands.
        if (why == retry_class::defer) {
            warn_foreign_keys(schema_label);
        }
        const bool waits_for_parent =
            why == retry_class::defer && deferred.take(options_.max_deferred_waits);
        const bool retryable =
            why == retry_class::retry_now || why == retry_class::reconnect || waits_for_parent;
        if (retryable && clock_type::now() + backoff < deadline) {
            applied_.retried(schema_label, why);
            log::debug()
                .str("schema", schema_label)
                .num("attempt", attempt)
                .err(e)
                .msg(waits_for_parent ? "waiting for a parent row"
                                      : "retrying the target transaction");
            // Seeded once per thread: a random_device opened per request took 0.8 % of the
            // replicator's CPU (bench, immediate mode, perf).
            thread_local std::mt19937 jitter(std::random_device{}());
            std::uniform_int_distribution<int64_t> spread(backoff.count() / 2, backoff.count());
            pause = std::chrono::milliseconds(spread(jitter));
            backoff = std::min(backoff * 2, options_.max_backoff);
            continue;
        }
        count_failure();
        switch (why) {
        case retry_class::retry_now:
        case retry_class::reconnect:
            return error{
                errc::unavailable,
                fmt::format("target unavailable after {} attempts: {}", attempt, e.message()), why};
        case retry_class::defer:
            return error{
                errc::unavailable,
                fmt::format("a foreign key is not satisfied yet (its parent row has not "
                            "arrived{}); the changefeed will redeliver: {}",
                            deferred.held ? " before the request's deadline" : "", e.message()),
                why};
        case retry_class::schema:
            schemas_.invalidate(schema);
            return error{errc::unavailable,
                         fmt::format("the target schema changed; it is read again on the next "
                                     "delivery: {}",
                                     e.message()),
                         why};
        case retry_class::fatal:
        case retry_class::unique:
        case retry_class::none: {
            auto event = log::error();
            event.str("schema", schema_label).err(e);
            if (why == retry_class::fatal) {
                event.str("remedy", std::string(fatal_.remedy()));
            }
            event.msg("the target refused the request (400); the changefeed retries it");
        }
            // A userscript's time or heap limit (errc::timeout): 503, as in its row handlers.
            return error{e.code() == errc::unavailable || e.code() == errc::timeout
                             ? errc::unavailable
                             : errc::invalid_argument,
                         fmt::format("the target refused the batch: {}", e.message()), why};
        }
    }

    accept_stats stats;
    fatal_.report(schema_label, letters);
    applied_.applied(schema_label, *plan, metrics::seconds_since(start));
    for (const table_counts& t : counts) {
        succeeded_.with({schema_label, t.table->name}).add(t.received);
        stats.upserts += t.upserts;
        stats.deletes += t.deletes;
    }
    return stats;
}

void immediate_applier::warn_foreign_keys(const std::string& schema) {
    {
        const std::lock_guard<std::mutex> lock(warned_mutex_);
        if (!warned_foreign_keys_.insert(schema).second) {
            return;
        }
    }
    log::warn()
        .str("schema", schema)
        .msg(
            "a foreign key is not satisfied yet (a child row before its parent, or a parent's "
            "delete before its children's). Immediate mode waits for the missing row until the "
            "request's deadline, but the changefeed holds back every later request sharing a "
            "key with a waiting one, which may be the one bringing that row; it then retries "
            "and restarts, possibly again and again. For foreign keys between replicated "
            "tables, use the consistent mode (no --immediate), or --skipForeignKeyChecks");
}

result<void> immediate_applier::accept_resolved(const qualified_name& schema, hlc resolved) {
    // Immediate mode has nothing to hold back: a resolved timestamp only reports progress.
    resolved_.with({schema.to_string()}).set(static_cast<double>(resolved.wall()) / 1e9);
    log::trace()
        .str("schema", schema.to_string())
        .str("resolved", resolved.to_string())
        .msg("resolved timestamp");
    return ok();
}

}  // namespace molt::replicator
