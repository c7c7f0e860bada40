#pragma once
// Source transactions for a workload: each is 1..N row changes (possibly across tables) that
// share one HLC; HLCs strictly increase; parents are written before children so foreign keys
// hold, and deleting a parent deletes its children in the same transaction. Every value is
// made as PostgreSQL text and encoded by proto exactly as CockroachDB's v2 webhook sink would.
//
// The generator keeps the expected state and an event log, so a validator can ask for the
// state as of any HLC.
//
// UNIQUE columns (column_spec::unique) never hold one value in two rows at a transaction
// boundary. Three ways a value moves between rows, each with its own rate:
//   reuse  a value freed by a delete is taken by another row in a later transaction
//   move   in one transaction, a row's value y becomes a new z while a new row takes y
//   swap   in one transaction, two rows exchange their values x and y

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "molt/common/dialect.hpp"
#include "molt/common/hlc.hpp"
#include "molt/emulator/spec.hpp"

namespace molt::emulator {

/// A random value of the column's type as PostgreSQL prints it; nullopt is NULL.
/// `portable` keeps to values MySQL can store too (finite floats, TIMESTAMP range).
[[nodiscard]] std::optional<std::string> random_value(const column_spec& c, std::mt19937_64& rng,
                                                      bool portable);

struct generator_options {
    size_t keys = 1000;    ///< keyspace per table
    int64_t key_base = 1;  ///< first key value (large values test INT8 beyond 2^53)
    int insert_weight = 50, update_weight = 35, delete_weight = 15;
    size_t min_rows = 1, max_rows = 4;  ///< row changes per transaction
    double null_rate = 0.1;
    double phantom_delete_rate = 0;  ///< fault: deletes of keys never inserted
    /// The first transaction has 2+ rows (when max_rows allows) and, with phantom deletes on,
    /// one: every fault then has its first opportunity at once (fault_rates::at_least_once).
    bool at_least_once = false;
    bool portable = true;
    bool rich_values = false;  ///< the `rich` profile's values (rich_values.hpp)
    /// Per value a UNIQUE column is given: a value freed by a delete in an earlier transaction.
    double unique_reuse_rate = 0;
    double unique_move_rate = 0;  ///< per transaction: a move (see above)
    double unique_swap_rate = 0;  ///< per transaction: a swap
    uint64_t seed = 1;
    int64_t start_wall = 0;  ///< first HLC wall time (0: now)
    /// HLCs from the wall clock, as a cluster's (each transaction's at least the wall time when
    /// it is generated, and above the one before, unless it shares that one's: below); false:
    /// synthetic, 1 to 50 µs apart whatever the wall clock does, so a seed gives the same HLCs
    /// every run.
    bool wall_clock = false;
    /// Per transaction: it shares the HLC of the one before (CockroachDB gives transactions that
    /// touch no common key the same timestamp now and then). Only when their keys are disjoint
    /// and it moves no UNIQUE value (those would conflict on the unique index in CockroachDB).
    double shared_hlc_rate = 0;
};

using row_values = std::vector<std::optional<std::string>>;  ///< PostgreSQL text per column

struct change {
    size_t table = 0;
    std::string pk;                 ///< primary key values joined by ','
    std::optional<row_values> row;  ///< nullopt: a delete
    std::string message;            ///< the encoded changefeed message
    uint64_t key_hash = 0;          ///< of the table and key, for per-key ordering
};

/// The hash a sender orders batches by: of the table (topic) and the key's text.
[[nodiscard]] uint64_t key_hash(std::string_view table, std::string_view key);

/// How often each way of moving a UNIQUE value happened.
struct unique_counts {
    uint64_t reuses = 0, moves = 0, swaps = 0;
};

struct transaction {
    hlc updated;
    std::vector<change> changes;
};

class generator {
public:
    generator(workload_spec spec, generator_options options);

    [[nodiscard]] transaction next();

    [[nodiscard]] const workload_spec& spec() const noexcept { return spec_; }
    /// Rows per table by primary key: the state after every transaction at or before `as_of`.
    [[nodiscard]] std::vector<std::map<std::string, row_values>> state_at(hlc as_of) const;
    /// Rows per table after the transactions whose HLC `applied` accepts, in HLC order (the
    /// state a consistent-mode target holds when it has applied exactly those).
    [[nodiscard]] std::vector<std::map<std::string, row_values>> state_where(
        const std::function<bool(hlc)>& applied) const;
    /// The state after every generated transaction.
    [[nodiscard]] std::vector<std::map<std::string, row_values>> final_state() const;
    [[nodiscard]] hlc last() const noexcept { return last_; }
    [[nodiscard]] uint64_t phantom_deletes() const noexcept { return phantom_deletes_; }
    /// Transactions that share the HLC of the one before (generator_options::shared_hlc_rate).
    [[nodiscard]] uint64_t shared_hlcs() const noexcept { return shared_hlcs_; }
    [[nodiscard]] const unique_counts& unique_changes() const noexcept { return unique_counts_; }

private:
    struct table_state {
        std::unordered_map<std::string, row_values> rows;
        std::vector<std::string> present;  // keys, for uniform picks
        std::unordered_map<std::string, size_t> position;
    };
    // The values of one UNIQUE column: which row holds each, and those deletes freed (with the
    // transaction that freed them, oldest first).
    struct unique_column {
        size_t column = 0;
        std::unordered_map<std::string, std::string> holder;
        std::deque<std::pair<std::string, uint64_t>> freed;
    };
    struct event {
        hlc updated;
        size_t table;
        std::string pk;
        std::optional<row_values> row;
    };

    std::string pk_text(size_t table, uint64_t index) const;
    std::vector<int64_t> pk_values(size_t table, uint64_t index) const;
    row_values make_row(size_t table, uint64_t index, std::unordered_set<std::string>& touched,
                        transaction& txn, const std::string* unique_value = nullptr);
    std::string unique_value(unique_column& u, const row_values* current);
    std::optional<size_t> unique_table();
    std::optional<std::string> pick_unique_holder(size_t table, const unique_column& u,
                                                  const std::unordered_set<std::string>& touched);
    std::optional<uint64_t> free_index(size_t table, std::unordered_set<std::string>& touched);
    void move_unique(transaction& txn, std::unordered_set<std::string>& touched);
    void swap_unique(transaction& txn, std::unordered_set<std::string>& touched);
    bool roll(double rate);
    void emit(transaction& txn, size_t table, const std::string& pk, std::vector<int64_t> key,
              std::optional<row_values> row);
    void remove(size_t table, const std::string& pk);
    void store(size_t table, const std::string& pk, const row_values& row);
    std::optional<std::string> pick_present(size_t table);
    void delete_with_children(transaction& txn, size_t table, const std::string& pk,
                              std::unordered_set<std::string>& touched);
    /// Gives the transaction just generated the HLC `to` (its messages and events too).
    void restamp(transaction& txn, hlc to);

    workload_spec spec_;
    generator_options options_;
    std::mt19937_64 rng_;
    std::vector<table_state> tables_;
    std::vector<std::vector<unique_column>> unique_;  // per table
    uint64_t unique_serial_ = 0;
    unique_counts unique_counts_;
    std::vector<event> events_;
    hlc last_;
    std::unordered_set<std::string> last_touched_;  // of every transaction at last_
    uint64_t phantom_deletes_ = 0;
    uint64_t shared_hlcs_ = 0;
    uint64_t transactions_ = 0;
};

}  // namespace molt::emulator
