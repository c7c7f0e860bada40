#pragma once
// Snapshots of target schemas, introspected on first use, refreshed when older than the refresh
// period or after invalidate() (schema errors). Readers get a shared immutable snapshot.
//
// Thread-safe; one introspection at a time per schema, and no lock is held while it waits on
// the target: other readers get the last snapshot (when it is only old, not invalidated) or wait
// for the introspection until their own deadline.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "molt/common/ident.hpp"
#include "molt/common/result.hpp"
#include "molt/replicator/core/target.hpp"
#include "molt/replicator/target/session_pool.hpp"

namespace molt::replicator {

class schema_cache {
public:
    schema_cache(const target_dialect& dialect, session_pool& pool,
                 std::chrono::nanoseconds refresh_period);

    /// The schema's snapshot; errc::not_found when the target has no such schema.
    [[nodiscard]] result<std::shared_ptr<const schema_snapshot>> get(
        const qualified_name& schema, std::chrono::steady_clock::time_point deadline);
    /// Applied to every snapshot as it is read, before anyone sees it (a userscript's table
    /// options: userscript::configure). Set before the first get().
    void decorate(std::function<void(schema_snapshot&)> decorator) {
        decorator_ = std::move(decorator);
    }
    /// Forces the next get() to introspect again: from now on only an introspection started
    /// after this call serves.
    void invalidate(const qualified_name& schema);

private:
    struct entry {
        std::mutex mutex;
        std::condition_variable done;  ///< an introspection ended
        bool loading = false;
        uint64_t generation = 0;  ///< invalidate() calls
        std::shared_ptr<const schema_snapshot> snapshot;
        uint64_t snapshot_generation = 0;  ///< `generation` when its introspection started
        std::chrono::steady_clock::time_point loaded;
    };
    [[nodiscard]] std::shared_ptr<entry> entry_of(const qualified_name& schema);

    const target_dialect& dialect_;
    session_pool& pool_;
    std::chrono::nanoseconds refresh_;
    std::function<void(schema_snapshot&)> decorator_;
    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<entry>> entries_;
};

}  // namespace molt::replicator
