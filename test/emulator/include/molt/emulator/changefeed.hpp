#pragma once
// A changefeed job of the CockroachDB stand-in: CREATE CHANGEFEED's options, the watched tables,
// the initial scan, and the feed from the cluster's history into the simulator's sender
// (changefeed-webhook.md §1-§3, §6):
//   - messages per source transaction, one per key (its final version), all with the
//     transaction's HLC; a primary-key change is a delete of the old key and an insert of the
//     new one; `before` (diff) from REPLICA IDENTITY FULL, which CREATE sets for diff feeds;
//   - initial_scan: every row of one REPEATABLE READ snapshot at one HLC, then the transactions
//     that snapshot did not see; 'only' ends the job once the scan is acknowledged;
//   - cursor: the transactions after it (not before the stand-in started: GC threshold);
//   - resolved timestamps from the capture's frontier, sent by the sender after every earlier
//     row was acknowledged;
//   - PAUSE stops the sender; RESUME starts a new one from its saved checkpoint (the
//     high-water mark), replaying what came after it (as CockroachDB does); CANCEL stops for
//     good.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "molt/common/compression.hpp"
#include "molt/common/hlc.hpp"
#include "molt/common/result.hpp"
#include "molt/emulator/capture.hpp"
#include "molt/emulator/crdb_sql.hpp"
#include "molt/emulator/generator.hpp"
#include "molt/emulator/pg_client.hpp"
#include "molt/emulator/sender.hpp"
#include "molt/proto/encoder.hpp"
#include "molt/proto/sink_config.hpp"

namespace molt::emulator {

struct table_info {
    std::string database, schema, name;
    std::vector<std::pair<std::string, std::string>> columns;  ///< name, format_type
    std::vector<std::string> primary_key;                      ///< in key order
    std::string topic;
    char replica_identity = 'd';  ///< pg_class.relreplident: d(efault), f(ull), n(othing), i(ndex)
    /// The column families this target sends, each as its own stream with topic
    /// "<topic>.<family>" and only that family's columns in `after` (split_column_families, or
    /// TABLE t FAMILY f); empty: whole rows under `topic`.
    std::vector<crdb::column_family> families;
    uint32_t oid = 0;  ///< the backend table's (schema changes are watched by it)
};

/// The topics a target sends: its own, or one per family.
[[nodiscard]] std::vector<std::string> target_topics(const table_info& t);

/// Reads a table's columns and primary key from the catalog. Errors are CockroachDB's words.
[[nodiscard]] result<table_info> describe_table(pg_client& db, const std::string& database,
                                                const std::string& schema, const std::string& name);

enum class initial_scan_mode { yes, no, only };
/// schema_change_policy: re-send every row of the table at the change (CockroachDB's default),
/// send nothing more than the new columns, or fail the feed once what came before is resolved.
enum class schema_change_policy { backfill, nobackfill, stop };
/// schema_change_events: which changes count — ADD COLUMN with a non-NULL default or a computed
/// value and DROP COLUMN (default), or any column added or dropped (column_changes).
enum class schema_change_events { default_events, column_changes };

/// Whether CockroachDB backfills a table (or a 'stop' feed stops) for this change of its columns.
[[nodiscard]] bool backfills(const schema_change& change, schema_change_events events);

struct changefeed_options {
    proto::message_options message;
    bool full_table_name = false;
    bool split_column_families = false;  ///< every family of every table its own stream
    bool resolved = false;
    std::chrono::nanoseconds resolved_interval{0};
    std::chrono::nanoseconds checkpoint_interval = std::chrono::seconds(30);
    initial_scan_mode initial_scan = initial_scan_mode::yes;
    std::optional<hlc> cursor;
    proto::webhook_sink_config sink_config;
    /// Zero: unset, so none (CockroachDB v23.2 to v26.1; the documented 3 s came in 2026).
    std::chrono::nanoseconds client_timeout{0};
    std::string auth_header;
    compression::codec compression = compression::codec::identity;
    schema_change_policy on_schema_change = schema_change_policy::backfill;
    schema_change_events schema_events = schema_change_events::default_events;
};

/// CREATE CHANGEFEED ... WITH options (names lower-case); errors as CockroachDB words them.
[[nodiscard]] result<changefeed_options> parse_changefeed_options(
    const std::vector<std::pair<std::string, std::optional<std::string>>>& options);

/// The messages of one source transaction for a feed on `tables`: one per key (per family of a
/// target with families: an insert or a delete sends every family, an update those whose
/// columns changed), in the order keys were first changed. An error for a value that does not
/// encode or a change without its key (the feed then fails: nothing is skipped silently).
/// `mvcc`: the rows' commit time when it is not `updated` (a scan's rows).
[[nodiscard]] result<std::vector<change>> feed_changes(const source_txn& txn,
                                                       const std::vector<table_info>& tables,
                                                       const changefeed_options& options,
                                                       hlc updated,
                                                       std::optional<hlc> mvcc = std::nullopt);

/// A scan's rows: per table of a feed (same index), by primary-key text (scan_key).
using scan_rows = std::vector<std::map<std::string, std::vector<column_value>>>;

/// The primary-key text of a row of `t` (its key columns' text forms); nullopt when one is
/// missing.
[[nodiscard]] std::optional<std::string> scan_key(const table_info& t,
                                                  const std::vector<column_value>& row);

/// Rewinds a snapshot's `rows` of `tables` to before `undo` (transactions the snapshot saw,
/// oldest first) by undoing their changes, newest first: an insert is removed, an update and a
/// delete put the old row back, which needs the whole old row (REPLICA IDENTITY FULL when the
/// change was made). An error names a change that cannot be undone (a TRUNCATE, a change
/// without its old row). Restored rows take the table's column order and types.
[[nodiscard]] result<void> rewind_rows(scan_rows& rows, const std::vector<table_info>& tables,
                                       const std::vector<std::shared_ptr<const source_txn>>& undo);

/// CREATE CHANGEFEED's description for its targets (as written) and the rest of the statement
/// (" INTO '...' WITH OPTIONS (...)", secrets redacted).
[[nodiscard]] std::string changefeed_description(const std::vector<std::string>& targets,
                                                 const std::string& tail);

/// One row of SHOW CHANGEFEED JOBS.
struct job_status {
    int64_t id = 0;
    std::string description, user, status, running_status, error, sink_uri, topics;
    std::vector<std::string> full_table_names;
    int64_t created = 0, started = 0, modified = 0;
    std::optional<int64_t> finished;  ///< unix ns
    hlc high_water;
};

class changefeed_job {
public:
    struct setup {
        int64_t id = 0;
        std::vector<std::string> targets;  ///< the tables as the statement named them
        std::string description_tail;      ///< after the targets, secrets already redacted
        std::string sink_uri;              ///< secrets already redacted
        std::string user;
        std::vector<table_info> tables;
        changefeed_options options;
        transport_factory connect;
        size_t workers = 2;
        fault_rates faults;
        restart_backoff_settings restart;
        delivery_order order;
        std::string conninfo;  ///< the backend, for the initial scan
        /// The cluster's closed timestamp settings now (they may change while the job runs);
        /// unset: none.
        std::function<closed_timestamp_settings()> closed_timestamp;
    };
    changefeed_job(setup s, capture& history, hlc_clock& clock);
    ~changefeed_job();
    changefeed_job(const changefeed_job&) = delete;
    changefeed_job& operator=(const changefeed_job&) = delete;

    /// Starts the feed (the initial scan runs in the job's thread).
    void start();
    /// PAUSE JOB / RESUME JOB / CANCEL JOB; errors as CockroachDB words them.
    result<void> pause();
    /// One ADD or DROP of ALTER CHANGEFEED, its tables described (ADD) or named (DROP).
    struct target_change {
        bool add = true;
        bool initial_scan = false;  ///< ADD ... WITH initial_scan
        std::string name;           ///< as the statement wrote it, for errors
        table_info table;           ///< ADD: described; DROP: schema and name
    };
    /// ALTER CHANGEFEED on a paused job: the changes in order; tables added with an initial
    /// scan are scanned as of the high-water mark when the job resumes (their rows carry it),
    /// then every table continues from there. Errors as CockroachDB words them.
    result<void> alter(const std::vector<target_change>& changes);
    result<void> resume();
    result<void> cancel();

    [[nodiscard]] job_status status() const;
    /// CREATE CHANGEFEED's options (ALTER changes only the targets).
    [[nodiscard]] const changefeed_options& options() const noexcept { return setup_.options; }
    /// What the job's senders did so far (every pause and resume included).
    [[nodiscard]] sender_stats stats() const;

private:
    void run();
    void stop_feed();  // joins the thread, keeps the checkpoint
    result<void> scan();
    struct scanned {
        transaction txn;
        std::string snapshot;  // pg_current_snapshot()
        hlc at;                // the snapshot's HLC
    };
    /// Every row of `tables` in one snapshot, as of `as_of` (rewound through the history) or of
    /// the snapshot; the rows carry that HLC.
    result<scanned> scan_tables(const std::vector<table_info>& tables, std::optional<hlc> as_of);
    void set_status(std::string status);
    sender_stats stats_locked() const;

    // The job's thread (run) reads setup_, scan_, snapshot_, added_scan_* and checkpoint_
    // without the mutex: alter() writes them only while the job is paused, after pause() has
    // joined that thread, and stop_feed() writes checkpoint_ after joining it.
    setup setup_;
    capture& history_;
    hlc_clock& clock_;
    hlc start_after_;  // changes strictly after this (statement time or cursor)
    std::optional<transaction> scan_;
    std::vector<table_info> added_scan_tables_;  // ALTER ... ADD ... WITH initial_scan
    std::optional<transaction> added_scan_;      // their scan, until the checkpoint passes it
    std::optional<std::string> snapshot_;        // pg_current_snapshot() of the scan
    hlc checkpoint_;                             // resolved timestamp acknowledged before a pause
    sender_stats stopped_stats_;                 // of senders stopped before

    mutable std::mutex mutex_;
    job_status status_;
    std::unique_ptr<sender> sender_;
    bool stop_ = false;
    std::thread thread_;
};

/// Whether a transaction is visible in a pg_current_snapshot() text ("xmin:xmax:xip,...").
[[nodiscard]] bool visible_in_snapshot(std::string_view snapshot, uint32_t xid);

}  // namespace molt::emulator
