#include "molt/replicator/sequencer/chunk_applier.hpp"

#include <map>
#include <random>

#include <fmt/format.h>

#include "molt/common/log.hpp"
#include "molt/proto/decoder.hpp"
#include "molt/replicator/sequencer/target_progress.hpp"
#include "molt/replicator/target/apply_plan.hpp"
#include "molt/replicator/target/ordered_apply.hpp"

namespace molt::replicator {

using clock_type = std::chrono::steady_clock;

chunk_applier::chunk_applier(const target_dialect& dialect, session_pool& pool,
                             schema_cache& schemas, chunk_metrics metrics, chunk_options options)
    : dialect_(dialect), pool_(pool), schemas_(schemas), metrics_(metrics), options_(options) {}

namespace {

// Begins the chunk's target transaction with its progress row: the row first tells an earlier
// attempt that committed (acknowledgement lost) from one that did not, before anything is
// written. True: go on; false: committed before (rolled back now).
result<bool> begin_chunk(target_session& db, const chunk_target& target, const chunk& c) {
    if (auto begun = db.begin(); !begun) {
        return begun.error();
    }
    auto fresh = record_progress(db, target.progress, c.first, c.last);
    if (!fresh) {
        db.rollback();
        return fresh.error().with_context("recording progress in " + target.progress.table);
    }
    if (!*fresh) {
        db.rollback();
    }
    return fresh;
}

}  // namespace

result<std::optional<proto::batch>> chunk_applier::transform(
    const chunk_target& target, const proto::batch& rows, std::vector<refused_row>& refused) const {
    const bool divert = options_.fatal != nullptr && options_.fatal->diverts();
    refused.clear();
    auto changed =
        options_.transform(target.schema, *target.snapshot, rows, divert ? &refused : nullptr);
    if (!changed) {
        // Retried with backoff until the script accepts the rows, never applied unchanged: a
        // stall (error-level logs at least once a minute, apply_stalled), not a conflict.
        return error{changed.error().code(), changed.error().message(), retry_class::none};
    }
    return changed;
}

result<std::optional<proto::batch>> chunk_applier::split_custom(const chunk_target& target,
                                                                proto::batch& rows) const {
    if (options_.writer == nullptr) {
        return std::optional<proto::batch>();
    }
    auto parts = options_.writer->split(target.schema, *target.snapshot, rows);
    if (!parts) {
        return error{parts.error().code(), parts.error().message(), retry_class::none};
    }
    if (!*parts) {
        return std::optional<proto::batch>();
    }
    rows = std::move((*parts)->built_in);
    return std::optional<proto::batch>(std::move((*parts)->custom));
}

result<void> chunk_applier::write_custom(target_session& db, const chunk_target& target,
                                         const proto::batch& custom,
                                         clock_type::time_point deadline) const {
    auto done = options_.writer->write(db, target.schema, *target.snapshot, custom, deadline);
    if (!done) {
        db.rollback();
    }
    return done;
}

struct chunk_applier::retry_state {
    retry_state(const chunk_options& options, uint64_t sequence, const std::string& label)
        : jitter(static_cast<uint32_t>(sequence * 7919 + 17)),
          backoff(options.first_backoff),
          stalled(options.fatal, label) {}
    std::mt19937 jitter;
    std::chrono::milliseconds backoff;
    stall_mark stalled;
    stall_log_pacer pacer;
};

result<void> chunk_applier::apply(const chunk& c, chunk_target target,
                                  const chunk_hooks& hooks) const {
    if (c.large) {
        return apply_large(c, target, hooks);
    }
    auto decoded = proto::decode_ndjson(c.body);
    if (!decoded) {
        return decoded.error().with_context("staged mutations cannot be decoded");
    }
    retry_state state(options_, c.sequence, target.label);
    bool transformed = !options_.transform;
    bool split = options_.writer == nullptr;
    std::optional<proto::batch> custom;  // the rows the userscript writes itself
    // Rows the userscript's handlers refused (--fatalRowPolicy dlq), in `staged`: the chunk's
    // rows as they were staged, kept for the DLQ.
    std::vector<refused_row> script_refused;
    std::optional<proto::batch> staged;
    // How the chunk is written, escalated by unique key and foreign key conflicts (never
    // relaxed for a later attempt of this chunk): the folded plan with upserts first; the folded
    // plan with deletes first (a unique value a deleted row frees for another row of the chunk),
    // unless it deletes rows other tables reference (a cascade could take the children of a
    // child whose move elsewhere comes later in the plan); source transaction by source
    // transaction, first without savepoints (a child moved off a parent deleted in the chunk,
    // whose unique value a new row takes: neither folded order writes that), then with them
    // (target/apply/ordered_apply.hpp).
    enum class approach { folded, folded_deletes_first, transactions, source_order };
    approach how = approach::folded;
    bool reordered = false;  // `how` escalated by a conflict (not by bad data)
    auto deletes_first_safe = [&] {
        auto plan = plan_batch(*target.snapshot, *decoded, dialect_, options_.flush_size,
                               statement_order::deletes_first);
        return plan && !deletes_referenced_rows(*target.snapshot, *plan);
    };
    bool waited_for_earlier = false;
    bool wait_first = false;  // for earlier chunks, without a session (see not_yet below)
    std::vector<dead_letter> letters;
    std::vector<dead_letter> script_letters;  // script_refused, written in this attempt
    for (int attempt = 1;; ++attempt) {
        if (wait_first) {
            wait_first = false;
            hooks.wait_for_earlier(c.sequence);
        }
        if (hooks.stopping()) {
            return error{errc::cancelled, "stopping"};
        }
        const auto start = clock_type::now();
        std::optional<error> refused;  // by the userscript: retried like a failed attempt
        if (!transformed) {
            auto changed = transform(target, *decoded, script_refused);
            if (changed && !*changed && !script_refused.empty()) {
                script_refused.clear();
                changed = error{errc::internal, "the userscript refused rows it left unchanged"};
            }
            if (changed) {
                if (*changed) {
                    if (!script_refused.empty()) {
                        staged = std::move(*decoded);
                    }
                    *decoded = std::move(**changed);
                }
                transformed = true;
            } else {
                refused = changed.error();
            }
        }
        if (transformed && !split) {
            auto parts = split_custom(target, *decoded);
            if (parts) {
                custom = std::move(*parts);
                split = true;
            } else {
                refused = parts.error();
            }
        }
        auto plan = refused ? result<apply_plan>(*refused)
                            : plan_batch(*target.snapshot, *decoded, dialect_, options_.flush_size,
                                         how == approach::folded_deletes_first
                                             ? statement_order::deletes_first
                                             : statement_order::upserts_first);
        error failure{errc::internal, ""};
        auto ready = options_.fatal != nullptr && plan ? options_.fatal->ready(*target.snapshot)
                                                       : result<void>(ok());
        if (!plan) {
            failure = plan.error();
        } else if (!ready) {
            failure = ready.error();  // --fatalRowPolicy dlq without its table: stall
        } else {
            auto session = pool_.acquire(start + options_.apply_timeout);
            if (!session) {
                failure = session.error();
            } else {
                target_session& db = **session;
                chunk_scheduler::turn turn = chunk_scheduler::turn::yours;
                // True: applied now; false: an earlier attempt had committed it.
                auto attempt_once = [&]() -> result<bool> {
                    if (auto fresh = begin_chunk(db, target, c); !fresh || !*fresh) {
                        return fresh;
                    }
                    script_letters.clear();
                    for (const refused_row& r : script_refused) {
                        if (auto done = options_.fatal->divert(db, *target.snapshot, *staged, r,
                                                               script_letters);
                            !done) {
                            db.rollback();
                            return done.error();
                        }
                    }
                    if (how == approach::transactions) {
                        auto done = apply_transactions_in_order(db, *target.snapshot, *decoded,
                                                                dialect_, options_.flush_size);
                        if (!done) {
                            return done.error();
                        }
                    } else if (how == approach::source_order) {
                        auto done = apply_in_source_order(db, *target.snapshot, *decoded, dialect_,
                                                          options_.flush_size, options_.fatal);
                        if (!done) {
                            return done.error();
                        }
                        letters = std::move(done->dead_letters);
                        log::info()
                            .str("schema", target.label)
                            .str("first", c.first.to_string())
                            .str("last", c.last.to_string())
                            .unum("transactions", done->transactions)
                            .unum("row_by_row", done->row_by_row)
                            .unum("reinserted", done->reinserted)
                            .unum("dead_lettered", letters.size())
                            .msg(
                                "a unique key conflict or a refused row in the folded chunk: "
                                "applied it source transaction by source transaction");
                    } else if (auto done = execute_statements(db, *plan); !done) {
                        return done.error();
                    }
                    if (custom) {
                        if (auto done =
                                write_custom(db, target, *custom, start + options_.apply_timeout);
                            !done) {
                            return done.error();
                        }
                    }
                    switch (hooks.wait_turn(c.sequence)) {
                    case chunk_scheduler::turn::yours: break;
                    case chunk_scheduler::turn::not_yet:
                        db.rollback();
                        turn = chunk_scheduler::turn::not_yet;
                        return error{errc::cancelled, "waiting for earlier chunks"};
                    case chunk_scheduler::turn::abandoned:
                        db.rollback();
                        turn = chunk_scheduler::turn::abandoned;
                        return error{errc::cancelled, "stopping"};
                    }
                    if (auto done = db.commit(); !done) {
                        return done.error();
                    }
                    return true;
                };
                auto done = attempt_once();
                if (done) {
                    hooks.committed(c.first, c.last);
                    if (*done && options_.fatal != nullptr) {
                        options_.fatal->report(target.label, script_letters);
                        options_.fatal->report(target.label, letters);
                    }
                    if (*done) {
                        metrics_.apply.applied(target.label, *plan, metrics::seconds_since(start));
                        if (reordered && how != approach::folded) {
                            metrics_.reordered
                                .with({target.label,
                                       how == approach::folded_deletes_first ? "deletes_first"
                                       : how == approach::transactions       ? "transactions"
                                                                             : "source_order"})
                                .add();
                        }
                    } else {
                        log::info()
                            .str("schema", target.label)
                            .str("first", c.first.to_string())
                            .str("last", c.last.to_string())
                            .num("attempt", attempt)
                            .msg(
                                "the target had committed this transaction although its commit "
                                "failed (acknowledgement lost); not applied again");
                    }
                    for (const table_counts& t : plan->tables) {
                        metrics_.applied.with({target.label, t.table->name}).add(t.received);
                    }
                    if (custom) {
                        for (const table_counts& t : custom_counts(*target.snapshot, *custom)) {
                            metrics_.applied.with({target.label, t.table->name}).add(t.received);
                        }
                    }
                    return ok();
                }
                if (turn == chunk_scheduler::turn::abandoned) {
                    return done.error();
                }
                if (turn == chunk_scheduler::turn::not_yet) {
                    // An earlier chunk may wait for a lock or a pooled session this one held:
                    // wait without either (the lease ends with this iteration).
                    wait_first = true;
                    --attempt;
                    continue;
                }
                failure = done.error();
                if (failure.retry() == retry_class::reconnect ||
                    failure.code() == errc::unavailable) {
                    session->mark_broken();
                }
            }
        }
        const retry_class why = failure.retry();
        metrics_.apply.retried(target.label, why);
        if (why == retry_class::fatal && how != approach::source_order) {
            how = approach::source_order;  // bad data: row by row finds (or diverts) the row
            continue;
        }
        if ((why == retry_class::unique || why == retry_class::defer) &&
            how != approach::source_order) {
            // Cheapest first: a whole chunk in a few statements per table beats a savepoint per
            // source transaction by far. Chunks run at once when their primary keys are
            // disjoint, but the parent a foreign key needs, or a unique value, can be a row an
            // earlier chunk of the window writes or frees: after a foreign-key failure, or when
            // the folded orders failed, wait for every earlier chunk, then start again from the
            // folded plan. What still fails is the order inside this chunk (on MySQL, an upsert
            // that takes a unique value from a row that still has children).
            reordered = true;
            const bool deletes_first_next = how == approach::folded &&
                                            !(why == retry_class::defer && !waited_for_earlier) &&
                                            deletes_first_safe();
            if (how == approach::transactions) {
                how = approach::source_order;
            } else if (deletes_first_next) {
                how = approach::folded_deletes_first;
            } else if (!waited_for_earlier) {
                waited_for_earlier = true;
                hooks.wait_for_earlier(c.sequence);
                how = approach::folded;
            } else {
                how = approach::transactions;
            }
            continue;
        }
        if (how == approach::source_order && !waited_for_earlier &&
            (why == retry_class::unique || why == retry_class::fatal)) {
            // Rows an earlier chunk of the window changes: wait for those first.
            waited_for_earlier = true;
            hooks.wait_for_earlier(c.sequence);
            continue;
        }
        if (!back_off(c, target, hooks, failure, attempt, state)) {
            return error{errc::cancelled, "stopping"};
        }
    }
}

namespace {

// The in-memory fallback of a large chunk holds its messages once more than the decoder allows
// for one body; beyond this it stays page by page (and stalls loudly on what only memory can fix).
constexpr size_t in_memory_limit = 48u << 20;

}  // namespace

result<std::optional<chunk>> chunk_applier::load_large(const chunk& c,
                                                       const chunk_hooks& hooks) const {
    chunk whole;
    whole.sequence = c.sequence;
    whole.first = c.first;
    whole.last = c.last;
    bool too_large = false;
    auto read = hooks.read_large(c.first, false, [&](std::string body) -> result<void> {
        if (hooks.stopping()) {
            return error{errc::cancelled, "stopping"};
        }
        if (whole.body.size() + body.size() > in_memory_limit) {
            too_large = true;
            return error{errc::limit_exceeded, "too large to hold"};
        }
        whole.body += body;
        return ok();
    });
    if (too_large) {
        return std::optional<chunk>();
    }
    if (!read) {
        return read.error();
    }
    return std::optional<chunk>(std::move(whole));
}

result<chunk_applier::planned_page> chunk_applier::plan_page(std::string body,
                                                             const chunk_target& target,
                                                             const chunk_hooks& hooks) const {
    if (hooks.stopping()) {
        return error{errc::cancelled, "stopping"};
    }
    auto decoded = proto::decode_ndjson(std::move(body));
    if (!decoded) {
        return decoded.error().with_context("staged mutations cannot be decoded");
    }
    if (options_.transform) {
        std::vector<refused_row> refused;
        auto changed = transform(target, *decoded, refused);
        if (!changed) {
            return changed.error();
        }
        if (!refused.empty()) {
            // The dead-letter queue is written by the general path, with the chunk in memory.
            return error{errc::invalid_argument, refused.front().why, retry_class::fatal};
        }
        if (*changed) {
            *decoded = std::move(**changed);
        }
    }
    auto custom = split_custom(target, *decoded);
    if (!custom) {
        return custom.error();
    }
    auto plan = plan_batch(*target.snapshot, *decoded, dialect_, options_.flush_size,
                           statement_order::upserts_first);
    if (!plan) {
        return plan.error();
    }
    return planned_page{std::move(decoded).value(), std::move(plan).value(),
                        std::move(custom).value()};
}

result<bool> chunk_applier::deletes_referenced_rows_large(const chunk& c,
                                                          const chunk_target& target,
                                                          const chunk_hooks& hooks) const {
    bool referenced = false;
    auto read = hooks.read_large(c.first, false, [&](std::string body) -> result<void> {
        auto page = plan_page(std::move(body), target, hooks);
        if (!page) {
            return page.error();
        }
        referenced = referenced || deletes_referenced_rows(*target.snapshot, page->plan);
        return ok();
    });
    if (!read) {
        return read.error();
    }
    return referenced;
}

result<void> chunk_applier::apply_large(const chunk& c, const chunk_target& large_target,
                                        const chunk_hooks& hooks) const {
    chunk_target target = large_target;
    retry_state state(options_, c.sequence, target.label);
    bool deletes_first = false;
    bool referenced_deletes = false;  // known: it deletes rows other tables reference
    bool too_large = false;           // known: its messages do not fit in memory
    for (int attempt = 1;; ++attempt) {
        if (hooks.stopping()) {
            return error{errc::cancelled, "stopping"};
        }
        const auto start = clock_type::now();
        // Per table: received and upserted rows from the upsert pass, deleted from the other.
        std::map<const table_info*, table_counts> counts;
        bool rolled_back = false;
        auto page_of = [&](target_session& db, bool deletes) {
            return [&, deletes](std::string body) -> result<void> {
                auto page = plan_page(std::move(body), target, hooks);
                if (!page) {
                    return page.error();
                }
                apply_plan& plan = page->plan;
                // This pass's statements only.
                const auto kind =
                    deletes ? planned_statement::kind::erase : planned_statement::kind::upsert;
                std::erase_if(plan.statements,
                              [kind](const planned_statement& st) { return st.type != kind; });
                for (const table_counts& t : plan.tables) {
                    table_counts& total = counts[t.table];
                    total.table = t.table;
                    if (deletes) {
                        total.deletes += t.deletes;
                    } else {
                        total.received += t.received;
                        total.upserts += t.upserts;
                    }
                }
                auto done = execute_statements(db, plan);
                if (done && !deletes && page->custom) {
                    // Once per page, in the upserts' pass: every row of the page.
                    done = write_custom(db, target, *page->custom, start + options_.apply_timeout);
                    for (const table_counts& t : custom_counts(*target.snapshot, *page->custom)) {
                        counts[t.table].table = t.table;
                        counts[t.table].received += t.received;
                    }
                }
                rolled_back = !done;  // both roll back what failed
                return done;
            };
        };
        error failure{errc::internal, ""};
        // The attempt's session goes back to the pool before the fallback below takes one.
        if (auto ready = options_.fatal != nullptr ? options_.fatal->ready(*target.snapshot)
                                                   : result<void>(ok());
            !ready) {
            failure = ready.error();  // --fatalRowPolicy dlq without its table: stall
        } else if (auto session = pool_.acquire(start + options_.apply_timeout); !session) {
            failure = session.error();
        } else {
            target_session& db = **session;
            auto attempt_once = [&]() -> result<bool> {
                if (auto fresh = begin_chunk(db, target, c); !fresh || !*fresh) {
                    return fresh;
                }
                for (const bool deletes : {deletes_first, !deletes_first}) {
                    // Upserts parents first; deletes children first.
                    if (auto done = hooks.read_large(c.first, deletes, page_of(db, deletes));
                        !done) {
                        if (!rolled_back) {
                            db.rollback();
                        }
                        return done.error().with_context(fmt::format(
                            "source transaction {} (more rows than --scanSize, applied page by "
                            "page)",
                            c.first.to_string()));
                    }
                }
                // It runs alone: every earlier chunk of the window has finished (yours at once);
                // abandoned when stopping.
                if (hooks.wait_turn(c.sequence) != chunk_scheduler::turn::yours) {
                    db.rollback();
                    return error{errc::cancelled, "stopping"};
                }
                if (auto done = db.commit(); !done) {
                    return done.error();
                }
                return true;
            };
            auto done = attempt_once();
            if (done) {
                hooks.committed(c.first, c.last);
                apply_plan summary;
                size_t rows = 0;
                for (auto& [table, t] : counts) {
                    summary.tables.push_back(t);
                    rows += t.received;
                    metrics_.applied.with({target.label, table->name}).add(t.received);
                }
                if (*done) {
                    metrics_.apply.applied(target.label, summary, metrics::seconds_since(start));
                    metrics_.large.with({target.label}).add();
                    log::info()
                        .str("schema", target.label)
                        .str("transaction", c.first.to_string())
                        .unum("mutations", rows)
                        .dbl("seconds", metrics::seconds_since(start))
                        .msg(
                            "applied a large source transaction page by page, in one target "
                            "transaction");
                }
                return ok();
            }
            failure = done.error();
            if (failure.code() == errc::cancelled && hooks.stopping()) {
                return failure;
            }
            if (failure.retry() == retry_class::reconnect || failure.code() == errc::unavailable) {
                session->mark_broken();
            }
        }
        const retry_class why = failure.retry();
        metrics_.apply.retried(target.label, why);
        if ((why == retry_class::unique || why == retry_class::defer) && !deletes_first &&
            !referenced_deletes) {
            // A value, or a parent, a deleted row frees: deletes first, unless a delete could
            // cascade into a child the upserts move elsewhere (apply_plan.hpp).
            auto referenced = deletes_referenced_rows_large(c, target, hooks);
            if (!referenced) {
                log::warn()
                    .str("schema", target.label)
                    .str("transaction", c.first.to_string())
                    .err(referenced.error())
                    .msg("could not read a large source transaction's deletes");
            } else if (!*referenced) {
                deletes_first = true;
                continue;
            } else {
                referenced_deletes = true;
            }
        }
        if (why == retry_class::unique || why == retry_class::defer || why == retry_class::fatal) {
            // What only the rows in source order can resolve or name (ordered_apply.hpp,
            // fatal_rows.hpp): the general path, with every row in memory, when they fit.
            auto whole = too_large ? result<std::optional<chunk>>(std::optional<chunk>())
                                   : load_large(c, hooks);
            too_large = whole && !*whole;
            if (whole && *whole) {
                log::warn()
                    .str("schema", target.label)
                    .str("transaction", c.first.to_string())
                    .err(failure)
                    .msg(
                        "a large source transaction cannot be applied page by page; applying "
                        "it with all its rows in memory");
                return apply(**whole, target, hooks);
            }
            if (!whole) {
                log::warn()
                    .str("schema", target.label)
                    .str("transaction", c.first.to_string())
                    .err(whole.error())
                    .msg("could not read a large source transaction into memory");
            }
        }
        if (!back_off(c, target, hooks, failure, attempt, state)) {
            return error{errc::cancelled, "stopping"};
        }
    }
}

bool chunk_applier::back_off(const chunk& c, chunk_target& target, const chunk_hooks& hooks,
                             const error& failure, int attempt, retry_state& state) const {
    const retry_class why = failure.retry();
    if (why == retry_class::defer) {
        // In source order still: wait for every earlier chunk, then back off.
        hooks.wait_for_earlier(c.sequence);
    } else if (why == retry_class::schema || why == retry_class::fatal ||
               failure.code() == errc::invalid_argument || failure.code() == errc::not_found) {
        // Also after a refusal (bad data; rows refused before any SQL, such as a column the
        // target lacks): what an operator changes to resolve it is seen.
        schemas_.invalidate(target.schema);
        if (auto fresh = schemas_.get(target.schema, clock_type::now() + options_.apply_timeout)) {
            target.snapshot = *fresh;
        }
    }
    const bool stalled =
        why == retry_class::fatal || why == retry_class::none || why == retry_class::unique;
    if (stalled) {
        metrics_.errors.with({target.label, std::string(to_string(why))}).add();
        state.stalled.set();
    }
    // A refusal: at error level at least once a minute while it lasts.
    if (stalled ? state.pacer.due(attempt, clock_type::now()) : (attempt & (attempt - 1)) == 0) {
        auto event = stalled ? log::error() : log::warn();
        event.str("schema", target.label)
            .str("first", c.first.to_string())
            .str("last", c.last.to_string())
            .num("attempt", attempt)
            .str("reason", std::string(to_string(why)))
            .err(failure);
        if (why == retry_class::fatal && options_.fatal != nullptr) {
            event.str("remedy", std::string(options_.fatal->remedy()));
        }
        event.msg("a target transaction failed; retrying (the window waits for it)");
    }
    std::uniform_int_distribution<int64_t> spread(state.backoff.count() / 2, state.backoff.count());
    if (!hooks.sleep(std::chrono::milliseconds(spread(state.jitter)))) {
        return false;
    }
    state.backoff = std::min(state.backoff * 2, options_.max_backoff);
    return true;
}

}  // namespace molt::replicator
