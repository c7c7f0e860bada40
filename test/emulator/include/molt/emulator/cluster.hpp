#pragma once
// The state of the CockroachDB stand-in for the life of its process: the cluster clock, the
// change capture on the backend PostgreSQL, the cluster settings, the changefeed jobs and what
// it knows of each backend database's schemas (its emulated databases, crdb_names.hpp). A
// `cluster_session` per client connection answers CockroachDB-only statements (crdb_sql.hpp).

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "molt/common/conn_url.hpp"
#include "molt/common/result.hpp"
#include "molt/emulator/capture.hpp"
#include "molt/emulator/changefeed.hpp"
#include "molt/emulator/crdb_sql.hpp"
#include "molt/emulator/schema_cache.hpp"
#include "molt/emulator/sender.hpp"

namespace molt::emulator {

struct setting_def;  // a cluster setting molt or the replicator uses (cluster.cpp)

struct cluster_options {
    conn_url backend;  ///< PostgreSQL, with a role that may create logical replication slots
    fault_rates faults;
    restart_backoff_settings restart;                         ///< of every changefeed's restarts
    delivery_order order;                                     ///< of every changefeed's rows
    std::chrono::nanoseconds gc_ttl = std::chrono::hours(4);  ///< history kept (gc.ttlseconds)
};

class cluster {
public:
    explicit cluster(cluster_options options);
    ~cluster();
    cluster(const cluster&) = delete;
    cluster& operator=(const cluster&) = delete;

    /// Connects, starts the change capture and reads the backend's version.
    result<void> start();
    /// Stops every changefeed and the capture.
    void stop();

    [[nodiscard]] std::string version() const { return version_; }
    /// cluster_logical_timestamp(): above every transaction committed before the call.
    [[nodiscard]] hlc logical_timestamp() {
        return capture_ ? capture_->settled_now() : clock_.now();
    }
    [[nodiscard]] crdb::statement_result execute(const crdb::statement& s, const std::string& user,
                                                 const std::string& database);
    /// The schema names of a backend database (sessions connect to any database of the server).
    [[nodiscard]] schema_cache& schemas(const std::string& database);
    /// Remembers the column families of a table a client created (CREATE TABLE ... FAMILY),
    /// in memory for the life of the process; a CREATE TABLE without them forgets the name's.
    void note_table(const std::string& database, const crdb::created_table& t);

private:
    /// Tells the schema cache what a database statement that succeeded created or dropped.
    void note_schemas(const crdb::statement& s, const std::string& database);
    crdb::statement_result create(const crdb::create_changefeed& cf, const std::string& user,
                                  const std::string& database);
    crdb::statement_result show(const crdb::show_jobs& s);
    crdb::statement_result alter(const crdb::alter_changefeed& a, const std::string& database);
    /// Describes changefeed targets of the backend database into `out` (and gives them REPLICA
    /// IDENTITY FULL, so scans as of an earlier HLC can rewind them); a failure is the
    /// statement's answer.
    /// With `families` (same index as `names`): a target's family, or nullopt for the whole
    /// table (every family with split_column_families; refused for a table of several
    /// families without it, as CockroachDB does).
    std::optional<crdb::statement_result> describe_targets(
        const std::vector<std::vector<std::string>>& names,
        const std::vector<std::optional<std::string>>& families, const changefeed_options& options,
        const std::string& database, pg_client& db, std::vector<table_info>& out);
    /// A table's column families as CockroachDB would have them: those CREATE TABLE named
    /// (columns since dropped left out, columns since added in the first), else one,
    /// "primary", of every column.
    std::vector<crdb::column_family> families_of(const table_info& t);
    changefeed_job* job(int64_t id);
    /// A known setting's value, or its default when never set; the caller holds mutex_.
    std::string setting_locked(const setting_def& d) const;
    /// After a SET or RESET: the closed timestamp settings every changefeed reads.
    void note_closed_timestamp_locked();

    cluster_options options_;
    hlc_clock clock_;
    std::unique_ptr<capture> capture_;
    std::string version_;

    std::mutex mutex_;
    std::map<std::string, std::string> settings_;  ///< values set, by name
    std::map<int64_t, std::unique_ptr<changefeed_job>> jobs_;
    std::map<std::string, std::unique_ptr<schema_cache>> schemas_;  ///< by database
    /// CREATE TABLE's column families by backend database, schema and table.
    std::map<std::array<std::string, 3>, std::vector<crdb::column_family>> families_;
    int64_t job_sequence_ = 0;
    /// kv.closed_timestamp.target_duration and kv.rangefeed.closed_timestamp_refresh_interval,
    /// read by running changefeeds without mutex_.
    std::atomic<int64_t> closed_target_ns_{3'000'000'000};
    std::atomic<int64_t> closed_refresh_ns_{3'000'000'000};
    bool stopped_ = false;
};

/// One client connection's view: its user and database.
class cluster_session final : public crdb::executor {
public:
    cluster_session(cluster& c, std::string user, std::string database)
        : cluster_(c), user_(std::move(user)), database_(std::move(database)) {}

    std::string version() override { return cluster_.version(); }
    hlc logical_timestamp() override { return cluster_.logical_timestamp(); }
    crdb::statement_result execute(const crdb::statement& s) override {
        return cluster_.execute(s, user_, database_);
    }
    void note_table(const crdb::created_table& t) override { cluster_.note_table(database_, t); }
    std::string current_database() override { return database_; }
    bool schema_exists(std::string_view backend_schema) override {
        return cluster_.schemas(database_).schema_exists(backend_schema);
    }
    bool database_exists(std::string_view database) override {
        return cluster_.schemas(database_).database_exists(database);
    }

private:
    cluster& cluster_;
    std::string user_, database_;
};

/// The sink URI with client_key's value replaced by "redacted" (for job descriptions).
[[nodiscard]] std::string redact_sink_uri(std::string_view uri);

}  // namespace molt::emulator
