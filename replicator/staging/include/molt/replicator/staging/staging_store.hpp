#pragma once
// Durable staging for the transactionally consistent mode, in --stagingSchema on --stagingConn
// (CockroachDB in production, PostgreSQL in our tests; every statement runs on both).
//
// Layout (version 1; replicator/README.md documents it):
//   molt_layout       (name PK, version, written_at)            the layout version marker
//   molt_checkpoints  (group_name, source_nanos, source_logical, first_seen, target_applied_at)
//                     PK (group_name, source_nanos, source_logical): resolved timestamps per
//                     target schema; target_applied_at is set once the target holds them
//   molt_stage_<target schema parts>_<table>   one per target table, the mutation log:
//                     (nanos, logical, key, mut, deletion) PK (nanos, logical, key);
//                     mut is the mutation as a v2 webhook message (proto's canonical encoding)
//
// Writes are set-based (unnest over array parameters), idempotent (ON CONFLICT DO NOTHING), and
// a request's rows for every table go in one staging transaction. Thread-safe.

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "molt/common/hlc.hpp"
#include "molt/common/ident.hpp"
#include "molt/common/result.hpp"
#include "molt/replicator/core/schema.hpp"
#include "molt/replicator/target/session_pool.hpp"

namespace molt::replicator {

/// Where the staging tables live.
struct staging_location {
    bool cockroach = false;  ///< CockroachDB (databases are reachable by name) or PostgreSQL
    std::string database;    ///< CockroachDB only: the database holding the schema
    std::string schema;
    /// "db"."schema"."t" on CockroachDB, "schema"."t" on PostgreSQL.
    [[nodiscard]] std::string qualify(std::string_view table) const;
    /// information_schema.tables of the staging database.
    [[nodiscard]] std::string catalog_tables() const;
    /// For logs: db.schema or schema.
    [[nodiscard]] std::string to_string() const;
};

/// What the JWT tables of the staging schema hold (replicator.md §5).
struct stored_jwt_keys {
    std::vector<std::pair<std::string, std::string>> keys;  ///< (id, PEM) of the active keys
    std::vector<std::string> revoked_ids;
};

/// Interprets --stagingSchema for a staging server (replicator/README.md has the table):
///   CockroachDB: "db.schema", or "db" meaning db.public (MOLT passes _replicator_<nanos>);
///   PostgreSQL:  "schema" in the connected database, or "db.schema" when db is that database;
///                left at its default, the schema _replicator.
/// `given` says whether the flag was on the command line.
[[nodiscard]] result<staging_location> resolve_staging_schema(std::string_view flag, bool given,
                                                              bool cockroach,
                                                              std::string_view connected_database);

/// A timestamp from two columns of a row (nanos, logical) at `at`; `source` names the table in
/// the error.
[[nodiscard]] result<hlc> hlc_from_row(const sql_row& row, size_t at, std::string_view source);

/// The staged key of a message: the key's JSON, plus a tab and the topic when the topic is a
/// column family of table `t` (t.family), whose messages share a key and an HLC. A tab never
/// appears in compact JSON outside strings.
[[nodiscard]] std::string staged_key(const table_info& t, std::string_view topic,
                                     std::string_view key);
/// The row's key JSON of a staged key (without a column family's topic).
[[nodiscard]] std::string_view row_key(std::string_view staged);

/// A mutation to stage.
struct staged_mutation {
    hlc updated;
    std::string key;      ///< canonical key JSON, e.g. [1,"a"]
    std::string message;  ///< the v2 webhook message
    bool deletion = false;
};

/// A mutation read back from staging.
struct stored_mutation {
    hlc updated;
    std::string key;
    std::string message;
};

struct stage_outcome {
    size_t staged = 0;      ///< new rows
    size_t duplicates = 0;  ///< already staged (redelivery)
    /// New rows at or below `resolved_bound`: a resolved timestamp had promised no more of them.
    std::vector<std::string> after_resolved;  ///< "table key at hlc", for the log
    std::map<hlc, size_t> staged_at;          ///< new rows by HLC
};

enum class resolved_outcome { recorded, repeated, backwards };

class staging_store {
public:
    staging_store(session_pool& pool, staging_location where, std::chrono::nanoseconds timeout);

    [[nodiscard]] const staging_location& location() const noexcept { return where_; }

    /// With `create_schema` (the app passes --stagingCreateSchema), creates the database
    /// (CockroachDB) and schema if missing; without it, a missing one is an error naming the
    /// flag, so a mistyped --stagingSchema cannot strand a backlog in a fresh schema. Then
    /// creates the shared tables if missing and checks (or writes) the layout version.
    [[nodiscard]] result<void> prepare(bool create_schema = true);

    /// The active rows of jwt_public_keys and every row of jwt_revoked_ids.
    [[nodiscard]] result<stored_jwt_keys> read_jwt_keys();

    /// The staging table name for a target table (<= 63 bytes): "molt_stage_" and the lower-case
    /// parts joined by '_', plus "__" and a hash of the exact names unless every part is plain
    /// (lower-case ASCII letters and digits). One per target table, whatever the case and the
    /// underscores (a 64-bit hash collision aside). Pass the catalog's spelling.
    [[nodiscard]] static std::string stage_table(const qualified_name& target_schema,
                                                 std::string_view table);
    /// The checkpoint group of a target schema: its parts as the catalog spells them, joined by
    /// '.', a part holding '.' or '"' in double quotes. schema_of_group inverts it (a restart
    /// turns pending groups back into target schemas).
    [[nodiscard]] static std::string group_of(const qualified_name& target_schema);
    [[nodiscard]] static std::optional<qualified_name> schema_of_group(std::string_view group);

    struct table_rows {
        std::string stage_table;
        std::vector<staged_mutation> rows;
    };
    /// Stages every table's rows in one transaction (creating staging tables as needed).
    /// Rows at or below `resolved_bound` that were not staged before are reported.
    [[nodiscard]] result<stage_outcome> stage(const std::vector<table_rows>& tables,
                                              hlc resolved_bound);

    struct late_comparison {
        std::vector<const staged_mutation*> differing;  ///< staged with another message
        std::vector<const staged_mutation*> missing;    ///< not staged (or retired since)
    };
    /// Compares rows at or below the committed checkpoint with what staging holds for the same
    /// (HLC, key).
    [[nodiscard]] result<late_comparison> compare_late(const std::string& stage_table,
                                                       const std::vector<staged_mutation>& rows);

    /// The newest staged version of each key of `rows` among versions at or above the oldest
    /// row's HLC (the primary key's leading column bounds the scan); keys without one are absent.
    [[nodiscard]] result<std::map<std::string, hlc>> newest_versions(
        const std::string& stage_table, const std::vector<staged_mutation>& rows);

    /// Records resolved timestamp `t` for a group unless it is not newer than the latest one
    /// (repeated: equal; backwards: older). `latest` receives the newest recorded.
    [[nodiscard]] result<resolved_outcome> record_resolved(const std::string& group, hlc t,
                                                           hlc* latest);
    /// The newest resolved timestamp of a group (zero when none).
    [[nodiscard]] result<hlc> latest_resolved(const std::string& group);
    /// Recorded resolved timestamps of a group in (after, upto], ascending: at most `limit`,
    /// evenly spread, `upto` always last when it is recorded.
    [[nodiscard]] result<std::vector<hlc>> resolved_between(const std::string& group, hlc after,
                                                            hlc upto, size_t limit);
    /// The newest resolved timestamp the target holds, by staging's record (zero when none).
    [[nodiscard]] result<hlc> committed(const std::string& group);
    /// Marks every checkpoint of the group at or below `t` as applied to the target.
    [[nodiscard]] result<void> mark_committed(const std::string& group, hlc t);
    /// Groups with resolved timestamps the target does not hold yet.
    [[nodiscard]] result<std::vector<std::string>> pending_groups();

    /// Staged rows of a table in (after, upto], ordered by (HLC, key), from just after
    /// (after, after_key), at most `limit`.
    [[nodiscard]] result<std::vector<stored_mutation>> read(const std::string& stage_table,
                                                            hlc after, const std::string& after_key,
                                                            hlc upto, size_t limit);
    /// Rows of a table in (after, upto] (the backlog). Zero for a table not created yet.
    [[nodiscard]] result<uint64_t> count_between(const std::string& stage_table, hlc after,
                                                 hlc upto);
    /// Deletes up to `limit` rows at or below `upto`; returns how many went.
    [[nodiscard]] result<uint64_t> retire(const std::string& stage_table, hlc upto, size_t limit);
    /// Deletes applied checkpoints of a group at or below `upto`, keeping the newest applied.
    [[nodiscard]] result<void> retire_checkpoints(const std::string& group, hlc upto);

    /// Whether the staging table exists (cached once seen).
    [[nodiscard]] result<bool> exists(const std::string& stage_table);

private:
    [[nodiscard]] result<session_pool::lease> session();
    [[nodiscard]] result<void> ensure_table(target_session& s, const std::string& stage_table);
    /// Whether the staging database and schema exist; `why` receives the database's message
    /// when CockroachDB refused to look into a database (it does not exist).
    [[nodiscard]] result<bool> schema_exists(target_session& db, std::string& why);
    /// Layout 1 to 2: only when every staging table is empty (their names are ambiguous).
    [[nodiscard]] result<void> upgrade_from_1(target_session& db);
    [[nodiscard]] result<void> upgrade_tables(target_session& db,
                                              const std::vector<sql_row>& tables);

    session_pool& pool_;
    staging_location where_;
    std::chrono::nanoseconds timeout_;
    std::mutex mutex_;
    std::set<std::string> created_;  // staging tables known to exist
};

}  // namespace molt::replicator
