// The apply loop of one target schema: the target's progress, resolved windows cut into chunks,
// the checkpoint, retiring (replicator/README.md, "Consistent mode", apply).
#include <algorithm>

#include <fmt/format.h>

#include "molt/common/log.hpp"
#include "molt/replicator/sequencer/target_progress.hpp"

#include "group.hpp"

namespace molt::replicator {

namespace {

// Bodies stay well below what the decoder takes in one piece (proto::decode_limits, 64 MiB):
// a chunk closes after chunk_bytes of messages (whole source transactions), a source
// transaction above large_bytes is applied page by page, and a page holds about page_bytes.
constexpr size_t chunk_bytes = 16u << 20;
constexpr size_t large_bytes = 32u << 20;
constexpr size_t page_bytes = 16u << 20;

}  // namespace
namespace {

constexpr size_t retire_batch = 10000;

// Runs one step of the loop; an exception (none is expected) fails the step, which is retried,
// instead of ending the process.
template <typename Fn>
result<void> guarded(std::string_view step, Fn&& fn) {
    try {
        return fn();
    } catch (const std::exception& e) {
        log::error().str("step", step).err(e.what()).msg("unexpected exception in the apply loop");
        return error{errc::internal, fmt::format("unexpected exception: {}", e.what())};
    }
}

}  // namespace

bool consistent_applier::sleep_for(group& g, std::chrono::nanoseconds d) {
    std::unique_lock<std::mutex> lock(g.mutex);
    g.wake.wait_for(lock, d, [this] { return stopping_.load(); });
    return !stopping_;
}

void consistent_applier::publish(group& g) {
    hlc committed;
    hlc proposed;
    {
        const std::lock_guard<std::mutex> lock(g.mutex);
        committed = g.committed;
        proposed = g.proposed;
    }
    committed_time_.with({g.label}).set(wall_seconds(committed));
    proposed_time_.with({g.label}).set(wall_seconds(proposed));
    target_lag_.with({g.label}).set(age_seconds(committed));
    source_lag_.with({g.label}).set(age_seconds(proposed));
    pending_.get().set(static_cast<double>(std::max<int64_t>(0, backlog_.load())));
}

result<void> consistent_applier::load_progress(group& g) {
    auto progress =
        read_progress(target_pool_, g.progress, sequencer_clock::now() + options_.apply_timeout);
    if (!progress) {
        return progress.error();
    }
    const hlc base = progress->committed;
    const size_t open_ranges = progress->applied.size();
    hlc staged_marker;
    bool reloaded = false;
    {
        const std::lock_guard<std::mutex> lock(g.mutex);
        staged_marker = g.committed;
        reloaded = g.loaded;
        g.committed = base;
        // A checkpoint whose commit was not heard may hold: its rows are applied.
        backlog_ += g.count_applied();
        g.ranges = std::move(progress->applied);
        g.loaded = true;
        g.reload = false;
    }
    g.wake.notify_all();  // ingest and late rows wait for the target's progress
    if (reloaded) {
        log::debug()
            .str("schema", g.label)
            .str("committed", base.to_string())
            .unum("ranges", open_ranges)
            .msg("re-read the target's progress before retrying the window");
        return ok();
    }
    if (base < staged_marker) {
        log::warn()
            .str("schema", g.label)
            .str("target", base.to_string())
            .str("staging", staged_marker.to_string())
            .msg(
                "staging records a newer committed checkpoint than the target holds (was the "
                "target restored?); applying from the target's");
    }
    log::info()
        .str("schema", g.label)
        .str("committed", base.to_string())
        .unum("ranges", open_ranges)
        .msg("resuming from the target's committed checkpoint");
    return ok();
}

void consistent_applier::run(group& g) {
    log::info().msg(fmt::format("{}: initial mode is Consistent", g.name));
    auto backoff = options_.first_backoff;
    int failures = 0;
    auto failed = [&](const error& e, std::string_view what) {
        ++failures;
        // Every failure at first, then with less noise while it lasts.
        if ((failures & (failures - 1)) == 0) {
            log::warn()
                .str("schema", g.label)
                .num("attempt", failures)
                .err(e)
                .msg(fmt::format("{}; retrying", what));
        }
        sleep_for(g, backoff);
        backoff = std::min(backoff * 2, options_.max_backoff);
    };
    while (!stopping_) {
        bool loaded = false;
        {
            const std::lock_guard<std::mutex> lock(g.mutex);
            loaded = g.loaded && !g.reload;
        }
        if (!loaded) {
            if (auto done = guarded("progress", [&] { return load_progress(g); }); !done) {
                failed(done.error(), "cannot read the target's progress");
                continue;
            }
        }
        publish(g);
        hlc target;
        {
            std::unique_lock<std::mutex> lock(g.mutex);
            g.wake.wait_for(lock, options_.flush_period,
                            [&] { return stopping_.load() || g.committed < g.proposed; });
            if (stopping_ || !(g.committed < g.proposed)) {
                continue;
            }
            target = g.proposed;
        }
        {
            // Late rows the checkpoint covers go first (late_rows.cpp); none during a window.
            std::unique_lock<std::mutex> lock(g.mutex);
            g.wake.wait(lock,
                        [&] { return stopping_.load() || !(g.late_running || g.late_ready()); });
            if (stopping_) {
                continue;
            }
            g.window_running = true;
        }
        auto done = guarded("window", [&] { return apply_window(g, target); });
        if (done) {
            // Retiring too runs with no late request beside it (late_rows.cpp checks newer
            // versions in staging, which retiring deletes).
            (void)guarded("retire", [&] {
                retire(g);
                return ok();
            });
        }
        {
            const std::lock_guard<std::mutex> lock(g.mutex);
            g.window_running = false;
            g.reload = g.reload || !done;
        }
        g.wake.notify_all();
        if (!done) {
            if (!stopping_) {
                apply_errors_.with({g.label, std::string(to_string(done.error().retry()))}).add();
                failed(done.error(), "applying a resolved window failed");
            }
            continue;
        }
        failures = 0;
        backoff = options_.first_backoff;
        publish(g);
    }
}

result<void> consistent_applier::read_large(const std::vector<window_table>& parents_first, hlc at,
                                            bool children_first, const chunk_hooks::page_fn& page) {
    auto read_table = [&](const window_table& t) -> result<void> {
        std::string after_key;  // staged keys are never empty
        for (;;) {
            auto rows = staging_.read(t.stage_table, at, after_key, at, options_.scan_size);
            if (!rows) {
                return rows.error();
            }
            bool full = rows->size() >= options_.scan_size;
            // At most about page_bytes of messages (at least one row): a decodable body.
            size_t keep = 0;
            for (size_t bytes = 0; keep < rows->size(); ++keep) {
                const size_t next = (*rows)[keep].message.size() + 1;
                if (keep > 0 && bytes + next > page_bytes) {
                    break;
                }
                bytes += next;
            }
            full = full || keep < rows->size();
            // A key's column families stay together: a full page ends before the last key's
            // messages (unless they are all it holds), which the next page starts with.
            if (full) {
                auto base = [](const std::string& key) {
                    return std::string_view(key).substr(0, key.find('\t'));
                };
                const std::string_view last = base((*rows)[keep - 1].key);
                size_t cut = keep;
                while (cut > 0 && base((*rows)[cut - 1].key) == last) {
                    --cut;
                }
                // Unless they are all the page holds (then the rest follow on the next page).
                keep = cut > 0 ? cut : keep;
            }
            if (keep == 0) {
                return ok();
            }
            std::string body;
            for (size_t i = 0; i < keep; ++i) {
                body += (*rows)[i].message;
                body += '\n';
            }
            after_key = (*rows)[keep - 1].key;
            if (auto done = page(std::move(body)); !done) {
                return done;
            }
            if (!full) {
                return ok();
            }
        }
    };
    if (children_first) {
        for (auto t = parents_first.rbegin(); t != parents_first.rend(); ++t) {
            if (auto done = read_table(*t); !done) {
                return done;
            }
        }
        return ok();
    }
    for (const window_table& t : parents_first) {
        if (auto done = read_table(t); !done) {
            return done;
        }
    }
    return ok();
}

int64_t consistent_applier::window_rows() const {
    // Enough for every thread of the pool to run a few chunks; a whole page at least.
    return static_cast<int64_t>(std::max(
        options_.scan_size, 4 * options_.flush_size * std::max<size_t>(1, options_.parallelism)));
}

result<void> consistent_applier::apply_window(group& g, hlc resolved) {
    const auto deadline = sequencer_clock::now() + options_.apply_timeout;
    auto snapshot = schemas_.get(g.schema, deadline);
    if (!snapshot) {
        return snapshot.error();
    }
    // The backlog an earlier process left, counted here so ingest never waits for it; a
    // failure only delays the count (it is for the --stagingMaxBacklog bound and a gauge).
    if (auto counted = count_backlog(g, **snapshot); !counted) {
        log::warn()
            .str("schema", g.label)
            .err(counted.error())
            .msg("could not count the staged backlog yet; retrying with the next window");
    }
    hlc committed;
    applied_ranges done_ranges;
    {
        const std::lock_guard<std::mutex> lock(g.mutex);
        committed = g.committed;
        done_ranges = g.ranges;
        // A backlog spanning several resolved timestamps: a window of about window_rows(), never
        // ending below a transaction a retried window already committed (its checkpoint clears
        // those ranges).
        hlc applied;
        for (const auto& range : done_ranges) {
            applied = std::max(applied, range.second);
        }
        resolved = window_end(g.unapplied, committed, resolved, window_rows(), applied);
    }
    std::vector<window_table> tables;
    std::vector<std::string> stage_tables;
    for (const table_info& t : (*snapshot)->tables) {
        if (is_progress_table(t)) {
            continue;
        }
        std::string st = staging_store::stage_table(g.schema, t.name);
        auto present = staging_.exists(st);
        if (!present) {
            return present.error();
        }
        if (*present) {
            stage_tables.push_back(st);
            tables.push_back({std::move(st), (*snapshot)->order_of(t)});
        }
    }
    // A source transaction of more rows than a page is applied page by page (chunk::large).
    std::vector<window_table> parents_first = tables;
    std::sort(parents_first.begin(), parents_first.end(),
              [](const window_table& a, const window_table& b) { return a.position < b.position; });
    window_reader reader(
        [this](const std::string& table, hlc after, const std::string& after_key, hlc upto,
               size_t limit) { return staging_.read(table, after, after_key, upto, limit); },
        std::move(tables), committed, resolved, options_.scan_size, std::move(done_ranges),
        options_.scan_size, large_bytes);

    const chunk_target target{g.schema, g.label, g.progress, *snapshot};
    const chunk_hooks hooks{
        [this, &g](std::chrono::nanoseconds d) { return sleep_for(g, d); },
        [this] { return stopping_.load(); },
        [&g](uint64_t sequence) { g.scheduler->wait_for_earlier(sequence); },
        [this, &g](uint64_t sequence) {
            // Long enough for an earlier chunk to commit, short enough to break a wait on a
            // lock this chunk holds (its statements stop at --applyTimeout).
            const auto limit = std::max<std::chrono::nanoseconds>(options_.apply_timeout / 2,
                                                                  std::chrono::milliseconds(100));
            return g.scheduler->wait_turn(sequence, limit);
        },
        [&g](hlc first, hlc last) {
            // Exact bookkeeping: a retried window skips this range.
            const std::lock_guard<std::mutex> lock(g.mutex);
            g.ranges.emplace_back(first, last);
        },
        [this, &parents_first](hlc at, bool children_first, const chunk_hooks::page_fn& page)
            -> result<void> { return read_large(parents_first, at, children_first, page); },
    };
    g.scheduler->begin([&](const chunk& c) { return chunks_.apply(c, target, hooks); });

    chunk next;
    result<void> outcome = ok();
    // Running chunks use `target` and `hooks` above: whatever happens here, drain before they go.
    try {
        for (;;) {
            if (stopping_) {
                outcome = error{errc::cancelled, "stopping"};
                break;
            }
            auto tx = reader.next();
            if (!tx) {
                outcome = tx.error();
                break;
            }
            if (!*tx) {
                break;
            }
            source_transaction& t = **tx;
            if (t.large) {
                // Alone, between the chunks before it and those after.
                if (next.rows > 0) {
                    if (auto r = g.scheduler->submit(std::exchange(next, chunk{})); !r) {
                        outcome = r.error();
                        break;
                    }
                }
                chunk large;
                large.first = t.time;
                large.last = t.time;
                large.large = true;
                if (auto r = g.scheduler->submit(std::move(large)); !r) {
                    outcome = r.error();
                    break;
                }
                continue;
            }
            for (window_row& row : t.rows) {
                next.keys.emplace(row.position, std::string(row_key(row.key)));
                next.body += row.message;
                next.body += '\n';
                ++next.rows;
            }
            if (next.first.is_zero()) {
                next.first = t.time;
            }
            next.last = t.time;
            if (next.rows >= options_.flush_size || next.body.size() >= chunk_bytes) {
                if (auto r = g.scheduler->submit(std::exchange(next, chunk{})); !r) {
                    outcome = r.error();
                    break;
                }
            }
        }
        if (outcome && next.rows > 0) {
            outcome = g.scheduler->submit(std::exchange(next, chunk{}));
        }
    } catch (const std::exception& e) {
        outcome = error{errc::internal, fmt::format("unexpected exception: {}", e.what())};
    }
    auto drained = g.scheduler->drain();
    if (!outcome) {
        return outcome;
    }
    if (!drained) {
        return drained;
    }
    if (auto done = complete_window(g, resolved); !done) {
        return done;
    }
    {
        const std::lock_guard<std::mutex> lock(g.mutex);
        g.stage_tables = std::move(stage_tables);
    }
    log::debug()
        .str("schema", g.label)
        .str("resolved", resolved.to_string())
        .unum("mutations", reader.rows_read())
        .unum("transactions", g.scheduler->submitted())
        .msg("applied a resolved window");
    return ok();
}

result<void> consistent_applier::complete_window(group& g, hlc resolved) {
    if (auto done = write_checkpoint(target_pool_, g.progress, resolved,
                                     sequencer_clock::now() + options_.apply_timeout);
        !done) {
        return done;
    }
    {
        const std::lock_guard<std::mutex> lock(g.mutex);
        g.committed = resolved;
        g.ranges.clear();
        backlog_ += g.count_applied();
    }
    if (auto marked = staging_.mark_committed(g.name, resolved); !marked) {
        // The target is the authority; staging's mark is for operators and retiring.
        log::warn()
            .str("schema", g.label)
            .err(marked.error())
            .msg("could not mark the checkpoint applied in staging");
    }
    committed_time_.with({g.label}).set(wall_seconds(resolved));
    return ok();
}

void consistent_applier::retire(group& g) {
    hlc committed;
    hlc retired;
    std::vector<std::string> tables;
    {
        const std::lock_guard<std::mutex> lock(g.mutex);
        committed = g.committed;
        retired = g.retired;
        tables = g.stage_tables;
    }
    const int64_t offset = options_.retire_offset.count();
    if (committed.wall() <= offset) {
        return;
    }
    const hlc upto = offset == 0 ? committed : hlc(committed.wall() - offset, 0);
    if (upto <= retired) {
        return;
    }
    uint64_t total = 0;
    for (const std::string& st : tables) {
        for (;;) {
            auto n = staging_.retire(st, upto, retire_batch);
            if (!n) {
                log::warn().str("table", st).err(n.error()).msg("retiring staged rows failed");
                return;
            }
            total += *n;
            if (*n < retire_batch || stopping_) {
                break;
            }
        }
    }
    if (auto done = staging_.retire_checkpoints(g.name, upto); !done) {
        log::warn().str("schema", g.label).err(done.error()).msg("retiring checkpoints failed");
        return;
    }
    retired_.with({g.label}).add(total);
    const std::lock_guard<std::mutex> lock(g.mutex);
    g.retired = upto;
}

}  // namespace molt::replicator
