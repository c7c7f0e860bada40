#pragma once
// Sends transactions the way CockroachDB's v2 webhook sink does (changefeed-webhook.md §1.5-1.8,
// §3, §8):
//   - batching per webhook_sink_config Flush: a batch closes at Messages, at Bytes (checked after
//     appending), Frequency after its first message, before every resolved timestamp, and at
//     the end; all zero = one message per request;
//   - each key lives in a range on one of several nodes; every node batches its own rows with
//     its own thresholds and timer, in random order within a request (each key's kept); one
//     range may lag, holding resolved timestamps back while other keys run ahead; a restart's
//     catch-up scan goes key by key (delivery_order below);
//   - every node sends its batches with W workers of its own (changefeed.sink_io_workers), and
//     the coordinator sends resolved timestamps on its own connection; a batch starts only when
//     it is the oldest unfinished batch for every key it carries, so two batches sharing a key
//     are never in flight together and per-key order holds, while unrelated batches complete in
//     any order (a node whose workers all wait holds back no other node's batches);
//   - a failed request is retried with identical bytes, waiting Backoff·2^(k-1) capped at 30 s
//     with ±15 % jitter, Retry.Max times; after that the changefeed "restarts": everything after
//     the saved checkpoint is sent again, acknowledged rows included;
//   - a restart cancels the requests in flight at once (their connections close; the receiver
//     may still be applying them) and waits the job's restart backoff before it replays: 1 s,
//     doubling up to 10 min, ±15 %, from 1 s again after 10 min without a restart. A replayed
//     batch may thus be in flight beside its cancelled earlier copy: per-key order holds
//     within one run of the feed;
//   - the checkpoint (the job's high-water mark) is saved every min_checkpoint_frequency: the
//     time below which every row was acknowledged, whether or not a resolved timestamp for it
//     was ever delivered. A restart replays from it, so rows between the receiver's last
//     resolved timestamp and the checkpoint are never sent again (a receiver that answered 2xx
//     before its data was durable loses them, as with CockroachDB);
//   - resolved T is the checkpoint just saved, sent only once the resolved interval has passed
//     since the last one (so no more often than max(resolved, min_checkpoint_frequency)), never
//     decreasing; every row with updated <= T has been acknowledged; one resolved request is in
//     flight at a time, so a newer one never overtakes an older one, and one due meanwhile
//     replaces any still waiting.
// Faults, each a probability: duplicate redelivery of an acknowledged batch (sent again right
// away, keys still held); replay from the checkpoint (a restart); a late duplicate of a batch
// already covered by a resolved timestamp; duplicate resolved messages; a transaction split
// across requests; a connection dropped mid-request; a request sent whole and then abandoned
// (a client timeout: the connection closes without the answer, and the same bytes go out again
// at once while the first copy may still be applying); a checkpoint saved whose resolved
// timestamp is never delivered (the job restarts first). With `at_least_once`, each fault whose
// rate is above 0 also fires at its first opportunity, so tests can count on every one.

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "molt/common/hlc.hpp"
#include "molt/emulator/generator.hpp"
#include "molt/proto/sink_config.hpp"

namespace molt::emulator {

struct send_outcome {
    int status = 0;  ///< HTTP status; 0 for a network or TLS failure
    std::string error;
};

/// How a request goes out.
enum class send_mode {
    whole,        ///< written whole, the answer read
    drop_midway,  ///< headers and half the body written, then the connection closed
    abandon,      ///< written whole, then the connection closed without reading the answer (a
                  ///< client timeout: the receiver may still be applying it)
};

/// One connection to the receiver; used by one worker thread at a time.
class transport {
public:
    virtual ~transport() = default;
    /// POSTs a body.
    virtual send_outcome post(const std::string& body, send_mode mode) = 0;
    /// From any thread: the transport is done (a cancelled context in Go). The exchange under
    /// way ends at once and its connection closes; it and every later post() fail with status
    /// 0 ("context canceled").
    virtual void cancel() = 0;
    /// Between requests, on the worker's thread: closes a connection idle for the idle timeout
    /// (Go's IdleConnTimeout; CockroachDB's sink closes idle connections after a minute).
    /// Returns when to look again; nothing while no connection is open.
    virtual std::optional<std::chrono::steady_clock::time_point> close_if_idle(
        std::chrono::steady_clock::time_point /*now*/) {
        return std::nullopt;
    }
};
using transport_factory = std::function<std::unique_ptr<transport>()>;

/// The changefeed job's restart backoff (changefeedccl's getRetry, cluster settings
/// changefeed.max_retry_backoff and changefeed.retry_backoff_reset): the first restart waits
/// `initial`, each next one twice as long up to `max` (10 min; v25.4 and v26.1 lowered it to 30 s),
/// with ±15 % jitter; a restart more than `reset_after` after the previous one waits `initial`
/// again. Not emulated: resetting when the high-water mark advanced (PR #164933, behind a setting
/// that is off by default where it was backported).
struct restart_backoff_settings {
    std::chrono::nanoseconds initial = std::chrono::seconds(1);
    std::chrono::nanoseconds max = std::chrono::minutes(10);
    std::chrono::nanoseconds reset_after = std::chrono::minutes(10);
};

class restart_backoff {
public:
    explicit restart_backoff(restart_backoff_settings settings) : settings_(settings) {}
    /// How long the restart asked for at `now` waits.
    std::chrono::nanoseconds next(std::chrono::steady_clock::time_point now, std::mt19937_64& rng);

private:
    restart_backoff_settings settings_;
    std::chrono::nanoseconds current_{0};  // before jitter; 0: none yet
    std::chrono::steady_clock::time_point last_;
};

/// Delivery order across keys: CockroachDB gives none across keys, tables or transactions
/// (changefeed-webhook.md §3.3); per-key order always holds.
struct delivery_order {
    /// Each key lives in one of `ranges` ranges (by a hash of the key), each range on one of
    /// `nodes` nodes (range % nodes). Every node batches its own rows with its own Flush
    /// thresholds and Frequency timer, so one transaction's rows go out in several requests and
    /// a later transaction's rows can land before an earlier one's.
    size_t nodes = 3;
    /// The messages of a request in random order, each key's kept (rows of several ranges
    /// interleave in a node's buffer).
    bool shuffle = true;
    /// Range 0 delivers every row this much after it was written (a lagging range): it holds
    /// every resolved timestamp back while the other keys run ahead. 0: none.
    std::chrono::nanoseconds lagging_range{0};
    /// A restart's catch-up scan sends what it replays key by key (each key's versions oldest
    /// first), not in HLC order.
    bool key_order_replay = true;
};
inline constexpr size_t ranges = 16;
/// The range a key lives in (0 to ranges - 1).
[[nodiscard]] size_t range_of(uint64_t key_hash);

/// CockroachDB's closed timestamps (kv.closed_timestamp.target_duration, 3 s by default, and
/// kv.rangefeed.closed_timestamp_refresh_interval, 3 s): a range's rangefeed resolves time only
/// up to `target` behind the wall clock, published every `refresh`, so the changefeed's
/// frontier, and every resolved timestamp and checkpoint with it, trails the rows by `target`
/// to `target + refresh`. The closing resolved timestamp of finish() waits for it too. A target
/// of 0 resolves rows as soon as they are acknowledged (tests of other things).
struct closed_timestamp_settings {
    std::chrono::nanoseconds target{0};
    std::chrono::nanoseconds refresh{0};
};

struct sink_settings {
    proto::webhook_sink_config config;
    closed_timestamp_settings closed_timestamp;
    std::chrono::nanoseconds resolved_interval = std::chrono::seconds(1);
    std::chrono::nanoseconds checkpoint_interval = std::chrono::seconds(1);
    size_t workers = 4;                 ///< per node
    size_t max_unacknowledged = 50000;  ///< add() waits above this many unacknowledged rows
    bool resolved = true;               ///< WITH resolved
    restart_backoff_settings restart;
    delivery_order order;
};

struct fault_rates {
    double duplicate = 0;           ///< per acknowledged batch
    double replay = 0;              ///< per resolved emission
    double late_duplicate = 0;      ///< per resolved emission
    double duplicate_resolved = 0;  ///< per resolved emission
    double split_transaction = 0;   ///< per transaction of 2+ rows
    double drop_connection = 0;     ///< per request
    double lost_resolved = 0;       ///< per resolved emission: restart before it is delivered
    double abandon = 0;             ///< per request: sent whole, closed unanswered, sent again
    /// Each fault with a rate above 0 fires at its first opportunity (then at its rate): the
    /// first acknowledged batch and resolved timestamp, the first transaction of 2+ rows, the
    /// first request, the first resolved emission (a lost resolved timestamp, which then is not
    /// sent; else a replay; a late duplicate at the first with an acknowledged batch below it).
    /// What timing may never offer is made up in finish(): a replay and a lost resolved
    /// timestamp before the end, a late duplicate after the closing resolved timestamp.
    bool at_least_once = false;
};

/// What CockroachDB does routinely, as fault rates (`--fault-profile realistic`, the base of the
/// crash and soak tests): a response lost now and then (duplicates), restarts from the
/// checkpoint (node restarts, rebalancing; some after the checkpoint was saved and before its
/// resolved timestamp went out), a resolved timestamp sent again after a restart, transactions
/// whose rows go out in several requests, client timeouts that leave a stale copy applying,
/// cut connections. Late duplicates are not in it: CockroachDB sends no row at or below a
/// resolved timestamp it delivered except for the scans of issue 18, point 1. With it go a
/// lagging range (1 s) and deletes of keys the receiver never saw (a row inserted and deleted in
/// one transaction is sent as a delete).
[[nodiscard]] constexpr fault_rates realistic_faults() {
    fault_rates f;
    f.duplicate = 0.02;
    f.replay = 0.01;
    f.duplicate_resolved = 0.02;
    f.split_transaction = 0.05;
    f.drop_connection = 0.005;
    f.lost_resolved = 0.01;
    f.abandon = 0.005;
    return f;
}
inline constexpr double realistic_phantom_delete_rate = 0.01;
inline constexpr std::chrono::seconds realistic_lagging_range{1};

struct sender_stats {
    uint64_t rows_sent = 0;  ///< messages in requests, duplicates and replays included
    uint64_t rows_acknowledged = 0;
    uint64_t requests = 0;
    uint64_t retries = 0;
    uint64_t resolved_sent = 0;
    uint64_t restarts = 0;  ///< replays from the checkpoint (faults and exhausted retries)
    uint64_t duplicates = 0, late_duplicates = 0, duplicate_resolved = 0;
    uint64_t split_transactions = 0, dropped_connections = 0, lost_resolved = 0;
    uint64_t abandoned = 0;         ///< requests sent whole, then closed unanswered (fault)
    uint64_t cancelled = 0;         ///< requests in flight when a restart cancelled them
    std::vector<double> latencies;  ///< seconds per successful request
    /// Message text still held for replays; what a resolved timestamp covers is freed.
    uint64_t text_bytes_held = 0;
};

class sender {
public:
    sender(sink_settings settings, fault_rates faults, transport_factory connect, uint64_t seed);
    ~sender();
    sender(const sender&) = delete;
    sender& operator=(const sender&) = delete;

    void start();
    /// Queues a transaction (waits while too many rows are unacknowledged). `scan`: the rows of
    /// an initial scan (or of tables added with one): until every row at or below its HLC is
    /// acknowledged, no checkpoint is saved and so no resolved timestamp sent (CockroachDB's
    /// frontier is empty during an initial scan: changefeed-webhook.md §3.4).
    void add(const transaction& txn, bool scan = false);
    /// Flushes, waits until everything is acknowledged and the closed timestamp has passed
    /// `last`, then sends a resolved timestamp for `last` and waits for it. False on timeout.
    bool finish(hlc last, std::chrono::nanoseconds timeout);
    /// Ends every thread; from any thread, any number of times (concurrent calls included).
    void stop();
    /// Every row at or below `frontier` has been added, though none came lately (a source's
    /// heartbeat). add() advances the frontier to just below the transaction's HLC by itself
    /// (the next transaction may share that HLC).
    void advance(hlc frontier);
    /// The feed starts at `start` (its statement time, cursor or saved checkpoint): nothing at
    /// or below it is left to resolve, so a closed timestamp below it holds nothing back, and no
    /// resolved timestamp below it is ever sent.
    void set_start(hlc start);
    /// The cluster settings changed (SET CLUSTER SETTING): from now on.
    void set_closed_timestamp(closed_timestamp_settings closed);

    [[nodiscard]] sender_stats stats() const;
    /// The error of the newest request (in the order they were sent) that has answered
    /// ("400 Bad Request: ...", "Post \"https://...\": ..."), or "" if it succeeded.
    [[nodiscard]] std::string last_error() const;
    /// The saved checkpoint (the job's high-water mark): the time below which every row was
    /// acknowledged, as of the last save; restarts replay from it. At or above the acknowledged
    /// resolved timestamp.
    [[nodiscard]] hlc high_water() const;
    /// The latest resolved timestamp the receiver acknowledged.
    [[nodiscard]] hlc acknowledged_resolved() const;
    /// When finish() first saw every row acknowledged (before its closing resolved timestamp,
    /// which waits for the closed timestamp; a replay meanwhile is not counted); nullopt before.
    [[nodiscard]] std::optional<std::chrono::steady_clock::time_point> rows_acknowledged_at() const;

private:
    struct logged_message {
        hlc updated;
        uint64_t key_hash;
        const std::string* text;  // owned by texts_
        size_t range = 0;
        bool acknowledged = false;
    };
    struct batch {
        uint64_t seq = 0;
        std::vector<size_t> messages;  // log indices
        std::vector<uint64_t> keys;    // distinct
        std::string body;
        bool is_resolved = false;
        bool late = false;  // a late duplicate: no ordering, no acknowledgement bookkeeping
        size_t node = 0;    // whose workers send it; resolved timestamps: the coordinator's
        hlc resolved;
        size_t bytes = 0;
    };

    /// Moves the rows waiting to be fed into their nodes' open batches (a lagging range's into
    /// lagging_).
    void feed_locked();
    /// Feeds the lagging range's rows that are due.
    void feed_lagging_locked(std::chrono::steady_clock::time_point now);
    void place_locked(size_t index);
    void close_open_locked();  // every node's
    void close_open_locked(size_t node);
    void enqueue_locked(batch b);
    bool runnable_locked(const batch& b) const;
    hlc frontier_locked(hlc closed) const;
    /// Every row added with an HLC at or below it may be resolved (closed_timestamp_settings).
    hlc closed_locked() const;
    /// The changefeed fails: requests in flight are cancelled and their answers ignored; the
    /// replay starts after the restart backoff.
    void request_restart_locked();
    void restart_locked();
    /// Frees the text of rows at or below the checkpoint: no replay reads them again.
    void release_checkpointed_locked();
    /// Saves the checkpoints: the job's (every row at or below the frontier is acknowledged) and
    /// each range's.
    void save_checkpoint_locked();
    /// Sends the batches of `node` (order.nodes: the coordinator, resolved timestamps only).
    void worker_loop(size_t node);
    void flusher_loop();
    enum class fault {
        duplicate,
        replay,
        late_duplicate,
        duplicate_resolved,
        split,
        drop,
        lost_resolved,
        abandon
    };
    /// Whether a fault fires at this opportunity; counts it as fired when it does.
    bool draw_locked(fault f, std::mt19937_64& rng);
    [[nodiscard]] double rate(fault f) const;
    /// at_least_once and the fault has not fired yet.
    [[nodiscard]] bool owed_locked(fault f) const;
    /// Queues a late copy of an acknowledged batch that a resolved timestamp covers; false when
    /// there is none.
    bool inject_late_locked();
    /// Sends until a 2xx (true), retries run out, a restart or stop (false).
    bool deliver(transport& t, const batch& b, uint64_t generation, std::mt19937_64& rng);

    sink_settings settings_;
    fault_rates faults_;
    transport_factory connect_;
    std::mt19937_64 rng_;

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<std::string> texts_;
    std::vector<logged_message> log_;
    std::set<size_t> txn_split_points_;  // log indices where a split fault closes a batch
    std::deque<size_t> to_feed_;         // log indices not yet in a batch, in emission order
    std::deque<std::pair<std::chrono::steady_clock::time_point, size_t>> lagging_;  // due, index
    size_t released_ = 0;  // log entries before this have had their text freed
    size_t first_unacknowledged_ = 0;
    std::vector<batch> open_;  // per node
    std::vector<std::chrono::steady_clock::time_point> open_since_;
    std::deque<batch> pending_;
    std::vector<batch> history_;  // acknowledged row batches, for late duplicates
    std::unordered_map<uint64_t, std::deque<uint64_t>> key_queues_;
    uint64_t next_seq_ = 1;
    size_t in_flight_ = 0;
    std::optional<uint64_t> resolved_in_flight_;  // its run's generation: one at a time per run
    std::vector<transport*> busy_;                // transports with a request under way
    uint64_t generation_ = 0;                     // bumped when a restart is requested
    bool restart_requested_ = false;
    std::chrono::steady_clock::time_point restart_at_;
    restart_backoff restart_backoff_;
    bool stopping_ = false;
    hlc resolved_sent_;          // latest resolved queued
    hlc resolved_acknowledged_;  // latest resolved acknowledged
    hlc checkpoint_;             // saved high-water mark: the oldest of the ranges' checkpoints
    // Per range: below it every row of the range was acknowledged (CockroachDB's span
    // checkpoints ahead of the high-water mark); a restart replays each range from its own.
    std::array<hlc, ranges> range_checkpoints_{};
    hlc source_frontier_;      // every row at or below it has been added
    hlc start_;                // set_start()
    std::optional<hlc> scan_;  // the newest initial scan's HLC (add(…, true))
    std::optional<std::chrono::steady_clock::time_point> rows_acknowledged_at_;
    std::array<bool, 8> fired_{};  // per fault: injected at least once
    std::string last_error_;
    uint64_t requests_sent_ = 0;    // attempts so far, numbering each as it is sent
    uint64_t last_outcome_of_ = 0;  // the attempt whose answer last_error_ reflects
    std::chrono::steady_clock::time_point last_resolved_emit_;
    std::chrono::steady_clock::time_point last_checkpoint_;
    sender_stats stats_;
    std::mutex join_mutex_;  // stop()'s joins, one caller at a time
    std::vector<std::thread> threads_;
};

}  // namespace molt::emulator
