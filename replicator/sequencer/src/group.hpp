#pragma once
// Private to the sequencer: the state of one target schema ("group") shared by ingest (HTTP
// threads) and its apply loop, and small helpers of consistent_applier's parts.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
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
    /// Late rows (at or below the resolved timestamp, never staged: initial scans at an older
    /// cursor, tables added to a changefeed) are applied by the request that brought them, one
    /// request at a time and never during a window (late_rows.cpp): per key, the newest staged
    /// version must be final while they are compared with it and written.
    bool window_running = false;
    bool late_running = false;
    std::multiset<hlc> late_waiters;  ///< the newest row of each waiting request

    std::chrono::steady_clock::time_point unverifiable_logged{};  ///< paces that warning

    /// The target's checkpoint covers late rows up to `newest`: every older version of their
    /// keys is applied (newer ones are staged).
    [[nodiscard]] bool covers(hlc newest) const { return loaded && !reload && newest <= committed; }
    /// A waiting request is covered: windows let it go first.
    [[nodiscard]] bool late_ready() const {
        return !late_waiters.empty() && covers(*late_waiters.begin());
    }

    /// Whether staging can still hold every newer version of a key than one at `t`: retiring
    /// deletes applied rows at or below committed - --retireOffset (all applied rows with 0).
    [[nodiscard]] bool verifiable(hlc t, std::chrono::nanoseconds retire_offset) const {
        const int64_t offset = retire_offset.count();
        return committed < t || (offset > 0 && t.wall() > committed.wall() - offset);
    }

    std::unique_ptr<chunk_scheduler> scheduler;  ///< the fixed pool of this schema's chunks
    std::thread thread;

    /// Staged rows the target has not applied, for --stagingMaxBacklog and the gauge: above
    /// `proposed` by their own HLC; at or below it folded into the resolved timestamp that
    /// covered them, so a checkpoint removes whole entries (a row staged twice, counted twice,
    /// goes with its entry).
    std::map<hlc, int64_t> unapplied;
    int64_t resolved_backlog = 0;  ///< rows of `unapplied` at or below `proposed`

    std::mutex count_mutex;  ///< held while the backlog of this group is first counted
    bool counted = false;    ///< by the apply loop, before its first window

    // The backlog bookkeeping; each is called with `mutex` held and returns the change of the
    // process-wide count of unapplied rows.

    /// `n` new rows staged at `t`.
    int64_t count_staged(hlc t, int64_t n) {
        if (t <= committed) {
            return 0;  // below an applied checkpoint: never read again
        }
        if (t <= proposed) {
            unapplied[proposed] += n;
            resolved_backlog += n;
        } else {
            unapplied[t] += n;
        }
        return n;
    }

    /// The newest resolved timestamp moved from `before` to `proposed`.
    void count_resolved(hlc before) {
        int64_t covered = 0;
        auto it = unapplied.upper_bound(before);
        while (it != unapplied.end() && it->first <= proposed) {
            covered += it->second;
            it = unapplied.erase(it);
        }
        if (covered > 0) {
            unapplied[proposed] += covered;
            resolved_backlog += covered;
        }
    }

    /// The target holds checkpoint `committed`.
    int64_t count_applied() {
        int64_t applied = 0;
        auto it = unapplied.begin();
        while (it != unapplied.end() && it->first <= committed) {
            applied += it->second;
            it = unapplied.erase(it);
        }
        resolved_backlog = std::max<int64_t>(0, resolved_backlog - applied);
        return -applied;
    }
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
