#pragma once
// Runs the target transactions ("chunks") of a resolved window on a fixed pool of threads. A
// chunk starts only when its key set is disjoint from that of every chunk submitted before it
// and not finished yet, so two transactions that touch one row never race; disjoint ones run at
// once, up to the pool's size (a large chunk, whose keys are not known, runs alone). They commit in
// order (wait_turn), so the target only ever holds a state the source had: the end of its last
// committed chunk.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "molt/common/hlc.hpp"
#include "molt/common/result.hpp"

namespace molt::replicator {

/// One target transaction of a window: whole source transactions, in HLC order.
struct chunk {
    uint64_t sequence = 0;  ///< set by submit(): the order of the window
    hlc first;              ///< the first source transaction's HLC
    hlc last;               ///< the last one's
    size_t rows = 0;
    std::set<std::pair<size_t, std::string>> keys;  ///< (table position, row key)
    /// Its rows as NDJSON v2 messages, in HLC order (each message carries its HLC, which is
    /// what tells the source transactions apart: ordered_apply.hpp).
    std::string body;
    /// One source transaction too large to hold (window_reader's large limit): no body or keys;
    /// its rows are read from staging page by page while it applies. It runs alone: after every
    /// earlier chunk has finished, and before any later one starts.
    bool large = false;
};

class chunk_scheduler {
public:
    using work = std::function<result<void>(const chunk&)>;

    /// Starts `threads` worker threads (at least one).
    explicit chunk_scheduler(size_t threads);
    ~chunk_scheduler();
    chunk_scheduler(const chunk_scheduler&) = delete;
    chunk_scheduler& operator=(const chunk_scheduler&) = delete;

    /// Starts a window whose chunks run `fn`. No chunk may be pending.
    void begin(work fn);
    /// Waits until the chunk may start (a free thread, no key shared with an earlier unfinished
    /// chunk), then starts it. Fails without starting it when an earlier chunk of the window
    /// failed or the scheduler was interrupted.
    [[nodiscard]] result<void> submit(chunk c);
    /// Waits for every submitted chunk to finish; the first failure of the window, if any.
    [[nodiscard]] result<void> drain();
    /// Inside a chunk: waits until every chunk submitted before `sequence` has finished (or the
    /// scheduler is interrupted).
    void wait_for_earlier(uint64_t sequence);
    /// Wakes every wait for good (stopping): submit() fails, waits return.
    void interrupt();

    enum class turn {
        yours,      ///< every earlier chunk has committed: commit now
        not_yet,    ///< still waiting after `limit`: roll back (free the locks), then try again
        abandoned,  ///< stopping, or an earlier chunk gave up: roll back, do not commit
    };
    /// Inside a chunk, before its COMMIT: waits up to `limit` for every earlier chunk of the
    /// window to finish.
    [[nodiscard]] turn wait_turn(uint64_t sequence, std::chrono::nanoseconds limit);

    /// Chunks submitted since the last begin().
    [[nodiscard]] uint64_t submitted() const;

private:
    void worker();
    [[nodiscard]] bool overlaps_running(const chunk& c) const;

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    work fn_;
    std::map<uint64_t, std::unique_ptr<chunk>> unfinished_;  ///< queued or running
    std::deque<chunk*> queue_;                               ///< submitted, not picked up yet
    std::optional<error> failure_;
    uint64_t next_sequence_ = 0;
    uint64_t window_start_ = 0;
    bool interrupted_ = false;
    bool shutting_down_ = false;
    size_t size_;
    std::vector<std::thread> threads_;
};

}  // namespace molt::replicator
