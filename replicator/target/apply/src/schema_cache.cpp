#include "molt/replicator/target/schema_cache.hpp"

#include <fmt/format.h>

#include "molt/common/log.hpp"

namespace molt::replicator {

schema_cache::schema_cache(const target_dialect& dialect, session_pool& pool,
                           std::chrono::nanoseconds refresh_period)
    : dialect_(dialect), pool_(pool), refresh_(refresh_period) {}

std::shared_ptr<schema_cache::entry> schema_cache::entry_of(const qualified_name& schema) {
    const std::lock_guard<std::mutex> lock(mutex_);
    // The URL's exact spelling: /db/Public and /db/public may be two schemas.
    auto& slot = entries_[schema.to_string()];
    if (!slot) {
        slot = std::make_shared<entry>();
    }
    return slot;
}

result<std::shared_ptr<const schema_snapshot>> schema_cache::get(
    const qualified_name& schema, std::chrono::steady_clock::time_point deadline) {
    const std::shared_ptr<entry> e = entry_of(schema);
    std::unique_lock<std::mutex> lock(e->mutex);
    for (;;) {
        const bool current = e->snapshot && e->snapshot_generation == e->generation;
        if (current && std::chrono::steady_clock::now() - e->loaded < refresh_) {
            return e->snapshot;
        }
        if (!e->loading) {
            break;
        }
        if (current) {
            return e->snapshot;  // only old: it serves while another reader refreshes it
        }
        if (!e->done.wait_until(lock, deadline, [&] { return !e->loading; })) {
            return error{errc::timeout,
                         fmt::format("timed out waiting for the tables of {} to be read from the "
                                     "target (another request is reading them)",
                                     schema.to_string())};
        }
    }
    e->loading = true;
    const uint64_t generation = e->generation;
    const std::shared_ptr<const schema_snapshot> previous = e->snapshot;
    lock.unlock();

    // The target's round trips, with no lock held (an exception is an error here, so that
    // `loading` is always cleared).
    auto loaded = [&]() -> result<schema_snapshot> {
        try {
            auto session = pool_.acquire(deadline);
            if (!session) {
                return std::move(session).error();
            }
            auto snapshot = dialect_.introspect(**session, schema);
            if (!snapshot && snapshot.error().retry() == retry_class::reconnect) {
                session->mark_broken();
            }
            if (snapshot && decorator_) {
                decorator_(*snapshot);
            }
            return snapshot;
        } catch (const std::exception& ex) {
            return error{errc::internal, fmt::format("reading the tables of {}: {}",
                                                     schema.to_string(), ex.what())};
        }
    }();

    lock.lock();
    e->loading = false;
    e->done.notify_all();
    if (!loaded) {
        // A previous snapshot keeps serving while the target is briefly unreachable.
        if (previous && loaded.error().code() == errc::unavailable) {
            log::warn()
                .str("schema", schema.to_string())
                .err(loaded.error())
                .msg("could not refresh the target schema; using the previous one");
            return previous;
        }
        return std::move(loaded).error();
    }
    log::debug()
        .str("schema", schema.to_string())
        .num("tables", static_cast<int64_t>(loaded->tables.size()))
        .msg("target schema loaded");
    auto fresh = std::make_shared<const schema_snapshot>(std::move(loaded).value());
    if (generation >= e->snapshot_generation) {
        e->snapshot = fresh;
        e->snapshot_generation = generation;
        e->loaded = std::chrono::steady_clock::now();
    }
    return fresh;
}

void schema_cache::invalidate(const qualified_name& schema) {
    const std::shared_ptr<entry> e = entry_of(schema);
    const std::lock_guard<std::mutex> lock(e->mutex);
    ++e->generation;
}

}  // namespace molt::replicator
