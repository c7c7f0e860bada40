#pragma once
// The failback changefeed on the source: the statement molt creates (molt-fetch-failback.md
// §8), finding a running one to reuse, the cursor to resume from, and the job's status.

#include <optional>
#include <string>
#include <vector>

#include "molt/common/conn_url.hpp"
#include "molt/common/hlc.hpp"
#include "molt/common/result.hpp"
#include "molt/fetch/sql_client.hpp"
#include "molt/proto/changefeed_override.hpp"

namespace molt::fetch {

/// The webhook path that names the target schema, by target dialect: PostgreSQL
/// /<database>/<schema>, MySQL /<database> (segments percent-encoded).
[[nodiscard]] std::string webhook_path(const conn_url& target, const std::string& target_schema);

/// The replicator's name for the target schema (its checkpoint group): "db.schema" or "db", a
/// part holding '.' or '"' quoted (qualified_name::unambiguous).
[[nodiscard]] std::string target_group(const conn_url& target, const std::string& target_schema);

struct changefeed_spec {
    std::vector<std::string> tables;  ///< db.schema.table, sorted
    std::string sink_base;            ///< webhook-https://host:port/path (no query)
    std::string sink_uri;             ///< with ?sink_query_parameters when there are any
};

[[nodiscard]] changefeed_spec make_changefeed_spec(const proto::changefeed_settings& settings,
                                                   const std::string& path,
                                                   std::vector<std::string> tables);

/// CREATE CHANGEFEED FOR TABLE ... INTO '...' WITH updated, resolved, min_checkpoint_frequency,
/// initial_scan, webhook_client_timeout, cursor, webhook_sink_config.
[[nodiscard]] std::string create_changefeed_sql(const changefeed_spec& spec,
                                                const proto::changefeed_settings& settings,
                                                const hlc& cursor);

struct changefeed_job {
    std::string id;
    std::string status;          ///< running, paused, failed, canceled, ...
    std::string running_status;  ///< e.g. "running: resolved=..." or the sink's error
    std::string error;
    std::string high_water;  ///< HLC decimal, empty when none yet
    std::string sink_uri;    ///< as CockroachDB shows it (secrets redacted)
    std::vector<std::string> tables;
};

/// SHOW CHANGEFEED JOBS, or SHOW CHANGEFEED JOB <id> when `id` is given.
[[nodiscard]] result<std::vector<changefeed_job>> show_changefeed_jobs(
    sql_client& source, const std::optional<std::string>& id = std::nullopt);

/// A running or paused job that posts to the same sink (URL without query) for the same tables.
[[nodiscard]] std::optional<changefeed_job> find_reusable_job(
    const std::vector<changefeed_job>& jobs, const changefeed_spec& spec);

/// The newest resolved timestamp the replicator recorded for `group` in its staging schema on
/// the source (`--stagingSchema`: "db" or "db.schema"), or nullopt when there is none (no
/// staging yet, or nothing resolved). Reads the replicator's staging layout v1 (molt_checkpoints).
[[nodiscard]] result<std::optional<hlc>> staged_checkpoint(sql_client& source,
                                                           const std::string& staging_schema,
                                                           const std::string& group);

/// The staging database an earlier molt created for `group` (named `_replicator_<digits>`, as
/// molt names them), the one with the newest checkpoint; nullopt when there is none.
[[nodiscard]] result<std::optional<std::string>> find_earlier_staging(sql_client& source,
                                                                      const std::string& group);

/// Running or paused jobs that post to the same webhook (URL without query) for other tables.
[[nodiscard]] std::vector<changefeed_job> conflicting_jobs(const std::vector<changefeed_job>& jobs,
                                                           const changefeed_spec& spec);

}  // namespace molt::fetch
