#pragma once
// Private to the sequencer: the state of one target schema ("group") shared by ingest (HTTP
// threads) and its apply loop, and small helpers of consistent_applier's parts.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "molt/common/error.hpp"
#include "molt/common/hlc.hpp"
#include "molt/common/ident.hpp"
#include "molt/replicator/core/schema.hpp"
#include "molt/replicator/sequencer/chunk_scheduler.hpp"
#include "molt/replicator/sequencer/consistent_applier.hpp"
#include "molt/replicator/sequencer/window_reader.hpp"

namespace molt::replicator {

using sequencer_clock = std::chrono::steady_clock;

struct consistent_applier::group {
    qualified_name schema;
    std::string name;  ///< the checkpoint group
    std::string label;
    progress_statements progress;

    std::mutex mutex;
    std::condition_variable wake;
    hlc proposed;           ///< newest resolved timestamp recorded
    hlc proposed_at_start;  ///< the newest when this process first saw the group
    hlc committed;  ///< newest the target holds (a lower bound until the progress is loaded)
    /// Committed chunks of the window in progress: loaded from the target, then each one added
    /// as soon as it commits, so a retried window skips exactly those.
    applied_ranges ranges;
    bool loaded = false;
    /// A window failed: re-read the target's progress before the next one (a commit whose
    /// outcome was not heard, e.g. the checkpoint's, may have happened).
    bool reload = false;
    std::shared_ptr<const schema_snapshot> snapshot;  ///< last known, for a target outage
    std::vector<std::string> stage_tables;            ///< of the last window, for retiring
    hlc retired;
    std::unique_ptr<chunk_scheduler> scheduler;  ///< the fixed pool of this schema's chunks
    std::thread thread;

    std::mutex count_mutex;  ///< held while the backlog of this group is first counted
    bool counted = false;    ///< by the apply loop, before its first window
};

inline double wall_seconds(hlc t) {
    return static_cast<double>(t.wall()) / 1e9;
}

inline double age_seconds(hlc t) {
    const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    return t.is_zero() ? 0.0 : static_cast<double>(now - t.wall()) / 1e9;
}

/// Staging failures: retryable ones make the changefeed come back later (503).
inline error staging_error(const error& e) {
    const retry_class why = e.retry();
    if (why == retry_class::retry_now || why == retry_class::reconnect ||
        e.code() == errc::unavailable || e.code() == errc::timeout) {
        return error{errc::unavailable, "staging unavailable: " + e.message(), why};
    }
    return e;
}

inline bool is_progress_table(const table_info& t) {
    return t.name == progress_table_name;
}

}  // namespace molt::replicator
