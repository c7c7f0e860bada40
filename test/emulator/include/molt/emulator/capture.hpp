#pragma once
// What the CockroachDB stand-in knows of its backend's history: every committed transaction
// since the stand-in started, read through PostgreSQL logical decoding (wal2json, format
// version 2) on one temporary slot (dropped by PostgreSQL when the stand-in's session ends),
// each stamped with an HLC from one cluster clock.
//
// The clock makes the CockroachDB guarantees hold by construction:
//   - every HLC it hands out (transactions, cluster_logical_timestamp(), the frontier) is above
//     every earlier one, so a transaction committed after a cursor was read gets a later HLC;
//   - a transaction's HLC is its commit time, or just above the clock's last value when that is
//     later (decoding runs behind commits);
//   - the frontier is a clock value read before a synchronously committed marker: once a poll
//     has read past the marker, every transaction with an HLC at or below it is in the history.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "molt/common/hlc.hpp"
#include "molt/common/result.hpp"

namespace molt::emulator {

/// Nanoseconds since the Unix epoch, now.
[[nodiscard]] int64_t wall_clock_nanos();

/// The cluster's hybrid logical clock: strictly increasing, never behind the wall clock.
class hlc_clock {
public:
    /// Above every value handed out before, and at least the wall clock.
    [[nodiscard]] hlc now();
    /// Above every value handed out before, and at least `wall_nanos`.
    [[nodiscard]] hlc at_least(int64_t wall_nanos);

private:
    std::mutex mutex_;
    hlc last_;
};

struct column_value {
    std::string name;
    std::string type;                 ///< as format_type writes it ("bigint", "numeric(10,2)")
    std::optional<std::string> text;  ///< PostgreSQL's text form; nullopt is NULL
};

struct row_change {
    std::string schema, table;
    char op = 'I';                       ///< 'I', 'U', 'D', or 'T' (TRUNCATE)
    std::vector<column_value> columns;   ///< the new row (I, U)
    std::vector<column_value> identity;  ///< the old key, or the old row with REPLICA IDENTITY FULL
};

/// A column as the catalog has it.
struct column_def {
    std::string name;
    std::string type;          ///< format_type
    bool has_default = false;  ///< a non-NULL DEFAULT, or a generated (computed) column
};

/// A watched table's columns changed: one added, dropped or retyped (ALTER TABLE).
struct schema_change {
    uint32_t oid = 0;
    std::vector<column_def> before, after;  ///< in column order
};

struct source_txn {
    hlc updated;
    uint32_t xid = 0;  ///< 0: not a PostgreSQL transaction (a schema change the stand-in saw)
    std::vector<row_change> changes;
    std::vector<schema_change> schema_changes;
};

/// Folds wal2json format-version 2 actions (one JSON object per call) into transactions.
class wal2json_reader {
public:
    /// A completed transaction with row changes when `action` is its commit.
    result<std::optional<source_txn>> add(std::string_view action);
    /// The commit time (ns since the epoch) of the transaction add() last returned.
    [[nodiscard]] int64_t commit_nanos() const noexcept { return commit_nanos_; }

private:
    std::optional<source_txn> open_;
    int64_t commit_nanos_ = 0;
};

class pg_client;
/// Sets a session's text forms to what CockroachDB encodes from: UTC, ISO dates, postgres
/// intervals, shortest floats, hex bytea.
result<void> use_changefeed_text_forms(pg_client& session);

class capture {
public:
    /// Transactions older than `gc_ttl` are dropped from the history (CockroachDB's
    /// gc.ttlseconds); feeds that still need them fail as CockroachDB's do.
    capture(std::string conninfo, hlc_clock& clock,
            std::chrono::nanoseconds gc_ttl = std::chrono::hours(4),
            std::chrono::milliseconds poll = std::chrono::milliseconds(20));
    ~capture();
    capture(const capture&) = delete;
    capture& operator=(const capture&) = delete;

    /// Creates the slot and starts decoding.
    result<void> start();
    void stop();

    /// Nothing at or before this is known: the start, or the newest transaction dropped by GC
    /// (CockroachDB's GC threshold, for cursors).
    [[nodiscard]] hlc gc_threshold() const;
    /// Every transaction with an HLC at or below this is in the history.
    [[nodiscard]] hlc frontier() const;
    /// An HLC above every transaction committed before the call, as CockroachDB's statement
    /// time is (cluster_logical_timestamp(), a changefeed's start): waits for a poll whose
    /// marker comes after the call, so those transactions have their HLCs, then reads the
    /// clock (after 10 s at most: a capture that never started or stopped).
    [[nodiscard]] hlc settled_now();
    /// The decoder's failure, once it has stopped on one.
    [[nodiscard]] std::optional<std::string> failure() const;

    struct news {
        std::vector<std::shared_ptr<const source_txn>> txns;  ///< from the index asked for on
        hlc frontier;            ///< every transaction at or below it is in `txns` or before them
        bool collected = false;  ///< some asked for were dropped by GC (txns is empty)
    };
    /// Transactions from index `from` on (possibly none) and the frontier, read together, after
    /// waiting up to `wait` for new ones or a frontier beyond `seen`. Indices count every
    /// transaction since the start, dropped ones included.
    [[nodiscard]] news since(size_t from, hlc seen, std::chrono::milliseconds wait) const;
    /// The index of the first transaction with an HLC above `h`.
    [[nodiscard]] size_t first_after(hlc h) const;

    /// Watches a table's columns: once the stand-in sees them changed in the catalog (it looks
    /// with every poll of the history), the history gets a transaction of its own with the
    /// columns after the change, at an HLC above every transaction decoded before it was seen
    /// (CockroachDB's schema-change timestamp, where backfills happen). PostgreSQL's DDL is not in
    /// its logical decoding: the catalog is read before the poll's marker, so every transaction
    /// committed before the change is decoded first (some committed just after it may be too,
    /// with the new columns, below the change: the backfill sends them again above it).
    /// `known`: the columns as the caller read them, until the stand-in has looked itself.
    void watch_columns(uint32_t oid, std::vector<column_def> known);
    /// A watched table's column names as last seen (empty for a table not watched).
    [[nodiscard]] std::vector<std::string> column_names(uint32_t oid) const;

    /// A changefeed job's protected timestamp (CockroachDB keeps one at each job's checkpoint,
    /// running or paused): nothing above the oldest protected HLC is dropped, however old.
    void protect(int64_t job, hlc at);
    void release(int64_t job);

private:
    void run();
    result<void> poll_once(bool& more);
    /// The watched tables' columns now.
    result<std::map<uint32_t, std::vector<column_def>>> read_columns();
    /// Those of `now` that differ from what the last look saw (which `now` then becomes).
    std::vector<schema_change> changed_columns(std::map<uint32_t, std::vector<column_def>> now);

    std::string conninfo_;
    hlc_clock& clock_;
    std::chrono::nanoseconds gc_ttl_;
    std::chrono::milliseconds poll_;
    std::string slot_;

    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::deque<std::shared_ptr<const source_txn>> history_;
    size_t collected_ = 0;  // transactions dropped from the front of history_
    hlc gc_threshold_, frontier_;
    std::map<int64_t, hlc> protected_;                     // per job
    std::map<uint32_t, std::vector<column_def>> watched_;  // by oid: the columns last seen
    std::optional<std::string> failure_;
    bool stopping_ = false;

    struct session;
    std::unique_ptr<session> session_;
    std::thread thread_;
};

}  // namespace molt::emulator
