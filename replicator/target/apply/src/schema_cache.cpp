#include "molt/replicator/target/schema_cache.hpp"

#include "molt/common/log.hpp"

namespace molt::replicator {

schema_cache::schema_cache(const target_dialect& dialect, session_pool& pool,
                           std::chrono::nanoseconds refresh_period)
    : dialect_(dialect), pool_(pool), refresh_(refresh_period) {}

result<std::shared_ptr<const schema_snapshot>> schema_cache::get(
    const qualified_name& schema, std::chrono::steady_clock::time_point deadline) {
    std::shared_ptr<entry> e;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        auto& slot = entries_[ident_key(schema.to_string())];
        if (!slot) {
            slot = std::make_shared<entry>();
        }
        e = slot;
    }
    const std::lock_guard<std::mutex> load_lock(e->load_mutex);
    const auto now = std::chrono::steady_clock::now();
    if (e->snapshot && now - e->loaded < refresh_) {
        return e->snapshot;
    }
    auto session = pool_.acquire(deadline);
    if (!session) {
        return std::move(session).error();
    }
    auto snapshot = dialect_.introspect(**session, schema);
    if (!snapshot) {
        if (snapshot.error().retry() == retry_class::reconnect) {
            session->mark_broken();
        }
        // A previous snapshot keeps serving while the target is briefly unreachable.
        if (e->snapshot && snapshot.error().code() == errc::unavailable) {
            log::warn()
                .str("schema", schema.to_string())
                .err(snapshot.error())
                .msg("could not refresh the target schema; using the previous one");
            return e->snapshot;
        }
        return std::move(snapshot).error();
    }
    log::debug()
        .str("schema", schema.to_string())
        .num("tables", static_cast<int64_t>(snapshot->tables.size()))
        .msg("target schema loaded");
    e->snapshot = std::make_shared<const schema_snapshot>(std::move(snapshot).value());
    e->loaded = now;
    return e->snapshot;
}

void schema_cache::invalidate(const qualified_name& schema) {
    std::shared_ptr<entry> e;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        const auto it = entries_.find(ident_key(schema.to_string()));
        if (it == entries_.end()) {
            return;
        }
        e = it->second;
    }
    // Not under mutex_: a slow introspection of this schema must not stall the others.
    const std::lock_guard<std::mutex> load_lock(e->load_mutex);
    e->loaded = {};
}

}  // namespace molt::replicator
