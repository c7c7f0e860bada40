#pragma once
// Snapshots of target schemas, introspected on first use, refreshed when older than the refresh
// period or after invalidate() (schema errors). Readers get a shared immutable snapshot.
//
// Thread-safe; one introspection at a time per schema.

#include <chrono>
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
    /// Forces the next get() to introspect again.
    void invalidate(const qualified_name& schema);

private:
    struct entry {
        std::shared_ptr<const schema_snapshot> snapshot;
        std::chrono::steady_clock::time_point loaded;
        std::mutex load_mutex;
    };

    const target_dialect& dialect_;
    session_pool& pool_;
    std::chrono::nanoseconds refresh_;
    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<entry>> entries_;
};

}  // namespace molt::replicator
