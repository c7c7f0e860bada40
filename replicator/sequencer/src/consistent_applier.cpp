// consistent_applier: the target schemas ("groups") and their lifecycle. Ingest is in
// ingest.cpp, the apply loop in apply_loop.cpp.
#include "molt/replicator/sequencer/consistent_applier.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "molt/common/log.hpp"

#include "group.hpp"

namespace molt::replicator {

consistent_applier::consistent_applier(const target_dialect& dialect, session_pool& target_pool,
                                       schema_cache& schemas, staging_store& staging,
                                       metrics::registry& metrics, consistent_options options)
    : dialect_(dialect),
      target_pool_(target_pool),
      schemas_(schemas),
      staging_(staging),
      options_(options),
      staged_(metrics.counter("stage_mutations_total", "Mutations staged", {"schema"})),
      duplicates_(metrics.counter("stage_duplicate_mutations_total",
                                  "Mutations already staged (redelivery, replays)", {"schema"})),
      late_(metrics.counter("stage_late_duplicate_mutations_total",
                            "Mutations at or below the newest resolved timestamp that staging "
                            "already has (redelivery), dropped",
                            {"schema"})),
      late_applied_(metrics.counter(
          "stage_late_applied_mutations_total",
          "Mutations at or below the newest resolved timestamp that staging never had (initial "
          "scans at an older cursor, tables added to a changefeed), applied",
          {"schema"})),
      late_superseded_(metrics.counter(
          "stage_late_superseded_mutations_total",
          "Such mutations skipped because staging holds a version of the key as new or newer",
          {"schema"})),
      late_unverifiable_(metrics.counter(
          "stage_late_unverifiable_mutations_total",
          "Mutations below the checkpoint older than --retireOffset that staging does not have: "
          "duplicates of retired rows, or scan rows staging cannot check any more; dropped",
          {"schema"})),
      violations_(metrics.counter("changefeed_protocol_violations_total",
                                  "Rows that break the changefeed's guarantees, by kind",
                                  {"schema", "kind"})),
      backwards_(metrics.counter(
          "checkpoint_proposed_going_backwards_errors",
          "Resolved timestamps older than the newest one (acknowledged and ignored)", {"schema"})),
      apply_metrics_(metrics),
      applied_(metrics.counter("apply_mutations_total",
                               "Staged mutations applied to the target, per table",
                               {"schema", "table"})),
      apply_errors_(metrics.counter("apply_errors_total",
                                    "Target transactions that failed, by reason",
                                    {"schema", "reason"})),
      reordered_(metrics.counter(
          "apply_reordered_total",
          "Target transactions committed in another order than the folded one after a unique or "
          "foreign key conflict (deletes_first, transactions, source_order)",
          {"schema", "order"})),
      large_(metrics.counter(
          "apply_large_transactions_total",
          "Source transactions of more mutations than --scanSize (schema-change backfills, bulk "
          "writes) applied page by page inside one target transaction",
          {"schema"})),
      retired_(metrics.counter("stage_retired_mutations_total",
                               "Applied staged mutations deleted after --retireOffset",
                               {"schema"})),
      stage_duration_(
          metrics.histogram("stage_duration_seconds", "Time to stage one request", {"schema"})),
      pending_(metrics.gauge("stage_pending_mutations",
                             "Mutations staged and not applied yet (all schemas)", {})),
      backlog_refused_(metrics.counter(
          "stage_backlog_refused_total",
          "Requests refused (503) because --stagingMaxBacklog resolved mutations wait",
          {"schema"})),
      committed_time_(metrics.gauge("checkpoint_committed_time_seconds",
                                    "The resolved timestamp the target holds", {"schema"})),
      proposed_time_(metrics.gauge("checkpoint_proposed_time_seconds",
                                   "The newest resolved timestamp received", {"schema"})),
      source_lag_(metrics.gauge("source_lag_seconds",
                                "Age of the newest resolved timestamp received", {"schema"})),
      target_lag_(metrics.gauge("target_lag_seconds",
                                "Age of the resolved timestamp the target holds", {"schema"})),
      fatal_(dialect, metrics, options.fatal),
      chunks_(dialect, target_pool, schemas,
              {apply_metrics_, applied_, apply_errors_, reordered_, large_},
              {options.flush_size, options.apply_timeout, options.first_backoff,
               options.max_backoff, &fatal_, options.transform, options.writer}) {}

consistent_applier::~consistent_applier() {
    stop();
}

result<void> consistent_applier::start() {
    auto pending = staging_.pending_groups();
    if (!pending) {
        return pending.error();
    }
    for (const std::string& name : *pending) {
        auto parsed = staging_store::schema_of_group(name);
        qualified_name schema = parsed.value_or(qualified_name{});
        if (!parsed || schema.parts.size() != dialect_.schema_segments()) {
            log::warn()
                .str("group", name)
                .msg(
                    "staging holds checkpoints of a group that is not a target schema of this "
                    "target; ignored");
            continue;
        }
        // A group an older layout named with the URL's spelling resumes under the catalog's.
        if (auto known = schemas_.get(schema, sequencer_clock::now() + options_.request_timeout)) {
            schema = (*known)->schema;
        }
        if (auto g = group_for(schema); !g) {
            return g.error();
        }
    }
    return ok();
}

void consistent_applier::stop() {
    stopping_ = true;
    std::map<std::string, std::shared_ptr<group>> groups;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        groups = groups_;
    }
    for (auto& [name, g] : groups) {
        { const std::lock_guard<std::mutex> lock(g->mutex); }
        g->wake.notify_all();
        g->scheduler->interrupt();
        if (g->thread.joinable()) {
            g->thread.join();
        }
    }
}

hlc consistent_applier::committed(const qualified_name& schema) {
    const std::shared_ptr<group> g = find_group(schema);
    if (g == nullptr) {
        return {};
    }
    const std::lock_guard<std::mutex> lock(g->mutex);
    return g->loaded ? g->committed : hlc();
}

std::shared_ptr<consistent_applier::group> consistent_applier::find_group(
    const qualified_name& schema) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (const auto it = groups_.find(staging_store::group_of(schema)); it != groups_.end()) {
        return it->second;
    }
    std::shared_ptr<group> found;
    for (const auto& [name, g] : groups_) {
        if (g->schema.parts.size() == schema.parts.size() &&
            std::equal(
                schema.parts.begin(), schema.parts.end(), g->schema.parts.begin(),
                [](const std::string& a, const std::string& b) { return ident_equal(a, b); })) {
            if (found != nullptr) {
                return nullptr;  // two schemas differ only in case: the catalog must decide
            }
            found = g;
        }
    }
    return found;
}

result<std::shared_ptr<consistent_applier::group>> consistent_applier::group_for(
    const qualified_name& schema) {
    const std::string name = staging_store::group_of(schema);
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (const auto it = groups_.find(name); it != groups_.end()) {
            return it->second;
        }
    }
    // Staging round trips outside the lock: other schemas' requests do not wait for them.
    auto proposed = staging_.latest_resolved(name);
    if (!proposed) {
        return staging_error(proposed.error());
    }
    auto committed = staging_.committed(name);
    if (!committed) {
        return staging_error(committed.error());
    }
    const std::lock_guard<std::mutex> lock(mutex_);
    if (const auto it = groups_.find(name); it != groups_.end()) {
        return it->second;  // another request made it meanwhile
    }
    auto g = std::make_shared<group>();
    g->schema = schema;
    g->name = name;
    g->label = schema.to_string();
    g->progress = dialect_.progress_sql(schema, progress_table_name);
    g->scheduler = std::make_unique<chunk_scheduler>(options_.parallelism);
    g->proposed = *proposed;
    g->proposed_at_start = *proposed;
    g->committed = *committed;
    groups_.emplace(name, g);
    if (!stopping_) {
        g->thread = std::thread([this, raw = g.get()] { run(*raw); });
    }
    return g;
}

}  // namespace molt::replicator
