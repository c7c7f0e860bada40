#include "molt/replicator/staging/consistent_applier.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "molt/common/log.hpp"
#include "molt/proto/decoder.hpp"
#include "molt/proto/encoder.hpp"
#include "molt/replicator/target/apply_plan.hpp"

namespace molt::replicator {
namespace {

using clock_type = std::chrono::steady_clock;
constexpr size_t retire_batch = 10000;

double wall_seconds(hlc t) {
    return static_cast<double>(t.wall()) / 1e9;
}

double age_seconds(hlc t) {
    const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    return t.is_zero() ? 0.0 : static_cast<double>(now - t.wall()) / 1e9;
}

// Staging failures: retryable ones make the changefeed come back later (503).
error staging_error(const error& e) {
    const retry_class why = e.retry();
    if (why == retry_class::retry_now || why == retry_class::reconnect ||
        e.code() == errc::unavailable || e.code() == errc::timeout) {
        return error{errc::unavailable, "staging unavailable: " + e.message(), why};
    }
    return e;
}

// --- The target's progress table ------------------------------------------------------------
//
//   _replicator_progress (first_nanos, first_logical, last_nanos, last_logical, applied_at)
//   PK (last_nanos, last_logical)
//
// The row with first = 0 is the committed checkpoint C: everything up to last is applied. Other
// rows are the target transactions of the window in progress: every staged HLC from first to
// last, except those of other rows, is applied.
//
// A target transaction of the window records its row first, idempotently (`record`: nothing
// happens when a row with the same last HLC exists), and `recorded` says whether it did. When
// the row was there already, the transaction committed earlier (its COMMIT's acknowledgement
// was lost): it is rolled back before it writes anything, so nothing is applied twice. Both
// statements wait for a transaction still in flight that inserts the same key, so the answer is
// exact even while the server is still finishing the attempt whose connection was lost.

struct progress_sql {
    std::string table;
    std::string create;
    std::string insert;
    std::string record;    ///< the idempotent insert of a window transaction's row
    std::string recorded;  ///< MySQL: whether `record` inserted; empty: `record` returns a row
    std::string select;
    std::string clear;
};

progress_sql make_progress_sql(const target_dialect& d, const qualified_name& schema) {
    const molt::dialect kind = d.kind();
    const bool pg = kind == molt::dialect::postgres;
    progress_sql s;
    s.table = quote_ident(schema.parts.back(), kind) + "." + quote_ident(progress_table_name, kind);
    s.create = pg ? fmt::format(
                        "CREATE TABLE IF NOT EXISTS {} (first_nanos BIGINT NOT NULL, "
                        "first_logical INT NOT NULL, last_nanos BIGINT NOT NULL, last_logical "
                        "INT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY "
                        "KEY (last_nanos, last_logical))",
                        s.table)
                  : fmt::format(
                        "CREATE TABLE IF NOT EXISTS {} (first_nanos BIGINT NOT NULL, "
                        "first_logical INT NOT NULL, last_nanos BIGINT NOT NULL, last_logical "
                        "INT NOT NULL, applied_at TIMESTAMP(6) NOT NULL DEFAULT "
                        "CURRENT_TIMESTAMP(6), PRIMARY KEY (last_nanos, last_logical)) ENGINE "
                        "InnoDB",
                        s.table);
    s.insert = fmt::format(
        "INSERT INTO {} (first_nanos, first_logical, last_nanos, last_logical) VALUES ({})",
        s.table,
        pg ? ":p1::bigint, :p2::integer, :p3::bigint, :p4::integer" : ":p1, :p2, :p3, :p4");
    s.record =
        pg ? fmt::format(
                 "INSERT INTO {} (first_nanos, first_logical, last_nanos, last_logical) VALUES "
                 "(:p1::bigint, :p2::integer, :p3::bigint, :p4::integer) ON CONFLICT (last_nanos, "
                 "last_logical) DO NOTHING RETURNING last_nanos",
                 s.table)
           : fmt::format(
                 "INSERT IGNORE INTO {} (first_nanos, first_logical, last_nanos, last_logical) "
                 "VALUES (:p1, :p2, :p3, :p4)",
                 s.table);
    s.recorded = pg ? "" : "SELECT ROW_COUNT()";
    s.select = fmt::format(
        "SELECT first_nanos, first_logical, last_nanos, last_logical FROM {} ORDER BY last_nanos, "
        "last_logical",
        s.table);
    s.clear = fmt::format("DELETE FROM {}", s.table);
    return s;
}

sql_params range_params(hlc first, hlc last) {
    return {std::to_string(first.wall()), std::to_string(first.logical()),
            std::to_string(last.wall()), std::to_string(last.logical())};
}

// Records a window transaction's range in the open transaction `db`: true when this inserted the
// row, false when the row was there already (that transaction committed before).
result<bool> record_progress(target_session& db, const progress_sql& sql, hlc first, hlc last) {
    if (sql.recorded.empty()) {
        auto rows = db.query(sql.record, range_params(first, last));
        if (!rows) {
            return rows.error();
        }
        return !rows->empty();
    }
    if (auto done = db.execute(sql.record, range_params(first, last)); !done) {
        return done.error();
    }
    auto count = db.query(sql.recorded, {});
    if (!count) {
        return count.error();
    }
    return !count->empty() && !count->front().empty() && count->front().front() != "0";
}

// The staged key: the key's JSON, plus the topic for column families (t.family), whose
// messages share a key and an HLC. A tab never appears in compact JSON outside strings.
std::string staged_key(const table_info& t, std::string_view topic, std::string_view key) {
    const bool plain =
        topic.size() >= t.name.size() &&
        (topic.size() == t.name.size() || topic[topic.size() - t.name.size() - 1] == '.') &&
        std::equal(t.name.begin(), t.name.end(), topic.end() - t.name.size(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
        });
    std::string out(key);
    if (!plain) {
        out += '\t';
        out += topic;
    }
    return out;
}

std::string_view row_key(std::string_view staged) {
    return staged.substr(0, staged.find('\t'));
}

bool is_progress_table(const table_info& t) {
    return t.name == progress_table_name;
}

}  // namespace

// --- Per target schema ------------------------------------------------------------------------

struct consistent_applier::group {
    qualified_name schema;
    std::string name;  ///< the checkpoint group
    std::string label;

    std::mutex mutex;
    std::condition_variable wake;
    hlc proposed;   ///< newest resolved timestamp recorded
    hlc committed;  ///< newest the target holds (a lower bound until the progress is loaded)
    /// Committed ranges of the window in progress: loaded from the target, then each one added as
    /// soon as its transaction commits, so a retried window skips exactly those.
    std::vector<std::pair<hlc, hlc>> ranges;
    bool loaded = false;
    /// A window failed: re-read the target's progress before the next one (a commit whose
    /// outcome was not heard, e.g. the checkpoint's, may have happened).
    bool reload = false;
    std::shared_ptr<const schema_snapshot> snapshot;  ///< last known, for a target outage
    std::vector<std::string> stage_tables;            ///< of the last window, for retiring
    hlc retired;
    std::thread thread;

    std::mutex count_mutex;  ///< held while the backlog of this group is first counted
    bool counted = false;
};

struct consistent_applier::window {
    std::shared_ptr<const schema_snapshot> snapshot;
    struct chunk {
        std::set<std::pair<size_t, std::string>> keys;  ///< (table position, key JSON)
        std::string body;                               ///< NDJSON messages
        hlc first;
        hlc last;
        size_t rows = 0;
        std::thread thread;
    };
    std::mutex mutex;
    std::condition_variable changed;
    std::map<uint64_t, std::unique_ptr<chunk>> chunks;  ///< running or finished, not reaped
    std::set<uint64_t> unfinished;                      ///< sequences still running
    std::optional<error> failure;  ///< set when a chunk gave up (only while stopping)
};

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
                            "Mutations at or below the committed checkpoint, dropped", {"schema"})),
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
      retired_(metrics.counter("stage_retired_mutations_total",
                               "Applied staged mutations deleted after --retireOffset",
                               {"schema"})),
      stage_duration_(
          metrics.histogram("stage_duration_seconds", "Time to stage one request", {"schema"})),
      pending_(metrics.gauge("stage_pending_mutations",
                             "Mutations staged and not applied yet (all schemas)", {})),
      committed_time_(metrics.gauge("checkpoint_committed_time_seconds",
                                    "The resolved timestamp the target holds", {"schema"})),
      proposed_time_(metrics.gauge("checkpoint_proposed_time_seconds",
                                   "The newest resolved timestamp received", {"schema"})),
      source_lag_(metrics.gauge("source_lag_seconds",
                                "Age of the newest resolved timestamp received", {"schema"})),
      target_lag_(metrics.gauge("target_lag_seconds",
                                "Age of the resolved timestamp the target holds", {"schema"})) {}

consistent_applier::~consistent_applier() {
    stop();
}

result<void> consistent_applier::start() {
    auto pending = staging_.pending_groups();
    if (!pending) {
        return pending.error();
    }
    for (const std::string& name : *pending) {
        qualified_name schema;
        size_t start = 0;
        for (;;) {
            const size_t dot = name.find('.', start);
            schema.parts.push_back(name.substr(start, dot - start));
            if (dot == std::string::npos) {
                break;
            }
            start = dot + 1;
        }
        if (schema.parts.size() != dialect_.schema_segments()) {
            log::warn()
                .str("group", name)
                .msg(
                    "staging holds checkpoints of a group that is not a target schema of this "
                    "target; ignored");
            continue;
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
        if (g->thread.joinable()) {
            g->thread.join();
        }
    }
}

hlc consistent_applier::committed(const qualified_name& schema) {
    std::shared_ptr<group> g;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        const auto it = groups_.find(staging_store::group_of(schema));
        if (it == groups_.end()) {
            return {};
        }
        g = it->second;
    }
    const std::lock_guard<std::mutex> lock(g->mutex);
    return g->loaded ? g->committed : hlc();
}

result<std::shared_ptr<consistent_applier::group>> consistent_applier::group_for(
    const qualified_name& schema) {
    const std::string name = staging_store::group_of(schema);
    const std::lock_guard<std::mutex> lock(mutex_);
    if (const auto it = groups_.find(name); it != groups_.end()) {
        return it->second;
    }
    auto proposed = staging_.latest_resolved(name);
    if (!proposed) {
        return staging_error(proposed.error());
    }
    auto committed = staging_.committed(name);
    if (!committed) {
        return staging_error(committed.error());
    }
    auto g = std::make_shared<group>();
    g->schema = schema;
    g->name = name;
    g->label = schema.to_string();
    g->proposed = *proposed;
    g->committed = *committed;
    groups_.emplace(name, g);
    if (!stopping_) {
        g->thread = std::thread([this, raw = g.get()] { run(*raw); });
    }
    return g;
}

// --- Ingest -------------------------------------------------------------------------------------

result<accept_stats> consistent_applier::accept_rows(const qualified_name& schema,
                                                     const proto::batch& rows) {
    const auto start = clock_type::now();
    const auto deadline = start + options_.request_timeout;
    // The target's tables name the staging tables and refuse unknown schemas and topics (404).
    // While the target is down, the last snapshot serves, so staging goes on.
    auto fresh = schemas_.get(schema, deadline);
    if (!fresh && fresh.error().code() == errc::not_found) {
        return fresh.error();
    }
    auto found = group_for(schema);
    if (!found) {
        return found.error();
    }
    group& g = **found;

    std::shared_ptr<const schema_snapshot> snapshot;
    bool first_lookup = true;
    auto lookup = [&]() -> result<void> {
        if (!first_lookup) {
            fresh = schemas_.get(schema, deadline);
        }
        first_lookup = false;
        if (fresh) {
            snapshot = *fresh;
            const std::lock_guard<std::mutex> lock(g.mutex);
            g.snapshot = snapshot;
            return ok();
        }
        if (fresh.error().code() == errc::not_found) {
            return fresh.error();
        }
        const std::lock_guard<std::mutex> lock(g.mutex);
        if (g.snapshot == nullptr) {
            return error{errc::unavailable, fmt::format("the target's tables are not known yet: {}",
                                                        fresh.error().message())};
        }
        snapshot = g.snapshot;
        return ok();
    };
    if (auto looked = lookup(); !looked) {
        return looked.error();
    }
    std::vector<const table_info*> tables;
    for (int pass = 0; pass < 2; ++pass) {
        tables.clear();
        for (const proto::table_mutations& t : rows.tables()) {
            const table_info* table = resolve_topic(*snapshot, t.topic);
            if (table == nullptr || is_progress_table(*table)) {
                break;
            }
            tables.push_back(table);
        }
        if (tables.size() == rows.tables().size() || pass == 1) {
            break;
        }
        // A table may have been created since the last introspection: look once more.
        schemas_.invalidate(schema);
        if (auto looked = lookup(); !looked) {
            return looked.error();
        }
    }
    if (tables.size() != rows.tables().size()) {
        return error{errc::not_found,
                     fmt::format("unknown table \"{}\" in target schema {}",
                                 log::sanitize(rows.tables()[tables.size()].topic), g.label)};
    }

    // The first request of a group counts what an earlier process left staged, before anything
    // more is staged (so nothing is counted twice).
    if (auto counted = count_backlog(g, *snapshot); !counted) {
        return counted.error();
    }
    if (options_.max_backlog > 0 && backlog_.load() >= static_cast<int64_t>(options_.max_backlog)) {
        return error{errc::unavailable,
                     fmt::format("{} mutations wait for the target, the most staging holds "
                                 "(--stagingMaxBacklog {}); the changefeed will retry",
                                 backlog_.load(), options_.max_backlog)};
    }

    hlc committed;
    hlc proposed;
    {
        const std::lock_guard<std::mutex> lock(g.mutex);
        committed = g.committed;
        proposed = g.proposed;
    }
    std::vector<staging_store::table_rows> to_stage;
    std::vector<staging_store::table_rows> late;
    std::map<std::string, size_t> stage_index;
    std::map<std::string, size_t> late_index;
    accept_stats stats;
    for (size_t i = 0; i < tables.size(); ++i) {
        const proto::table_mutations& group_rows = rows.tables()[i];
        const table_info& t = *tables[i];
        const std::string st = staging_store::stage_table(schema, t.name);
        for (const proto::mutation& m : group_rows.mutations) {
            staged_mutation sm;
            sm.updated = m.updated;
            sm.key = staged_key(t, group_rows.topic, m.key);
            sm.message = proto::encode_message(proto::to_message(group_rows.topic, m));
            sm.deletion = m.deleted;
            const bool is_late = !committed.is_zero() && m.updated <= committed;
            auto& index = is_late ? late_index : stage_index;
            auto& list = is_late ? late : to_stage;
            auto [it, inserted] = index.try_emplace(st, list.size());
            if (inserted) {
                list.push_back({st, {}});
            }
            list[it->second].rows.push_back(std::move(sm));
            if (!is_late) {
                ++(m.deleted ? stats.deletes : stats.upserts);
            }
        }
    }

    if (!to_stage.empty()) {
        auto outcome = staging_.stage(to_stage, proposed);
        if (!outcome) {
            return staging_error(outcome.error());
        }
        backlog_ += static_cast<int64_t>(outcome->staged);
        pending_.get().set(static_cast<double>(backlog_.load()));
        const double elapsed = metrics::seconds_since(start);
        stage_duration_.with({g.label}).observe(elapsed);
        staged_.with({g.label}).add(outcome->staged);
        duplicates_.with({g.label}).add(outcome->duplicates);
        log::debug()
            .str("target", g.label)
            .unum("count", outcome->staged)
            .unum("duplicates", outcome->duplicates)
            .dbl("duration_ms", elapsed * 1e3)
            .msg("staged mutations");
        if (!outcome->after_resolved.empty()) {
            violations_.with({g.label, "after_resolved"}).add(outcome->after_resolved.size());
            log::error()
                .str("target", g.label)
                .str("resolved", proposed.to_string())
                .unum("rows", outcome->after_resolved.size())
                .str("first", outcome->after_resolved.front())
                .msg(
                    "changefeed protocol violation: new rows at or below a resolved timestamp "
                    "already received; they are applied only if their window has not been");
        }
    }

    for (const staging_store::table_rows& t : late) {
        late_.with({g.label}).add(t.rows.size());
        auto differing = staging_.differing(t.stage_table, t.rows);
        if (!differing) {
            log::warn()
                .str("target", g.label)
                .err(differing.error())
                .msg("could not compare late duplicates with staging");
            continue;
        }
        if (!differing->empty()) {
            violations_.with({g.label, "late_duplicate_differs"}).add(differing->size());
            const staged_mutation& first = *differing->front();
            log::error()
                .str("target", g.label)
                .str("table", t.stage_table)
                .str("key", log::sanitize(row_key(first.key)))
                .str("updated", first.updated.to_string())
                .unum("rows", differing->size())
                .msg(
                    "changefeed protocol violation: a late duplicate differs from the mutation "
                    "staged for the same timestamp and key; the staged one stays applied");
        }
    }
    if (!late.empty()) {
        size_t n = 0;
        for (const auto& t : late) {
            n += t.rows.size();
        }
        log::debug()
            .str("target", g.label)
            .unum("count", n)
            .str("committed", committed.to_string())
            .msg("dropped late duplicates at or below the committed checkpoint");
    }
    return stats;
}

result<void> consistent_applier::accept_resolved(const qualified_name& schema, hlc resolved) {
    // An unknown target schema gets no pipeline (a target that is down does not say "unknown").
    if (auto known = schemas_.get(schema, clock_type::now() + options_.request_timeout);
        !known && known.error().code() == errc::not_found) {
        return known.error();
    }
    auto found = group_for(schema);
    if (!found) {
        return found.error();
    }
    group& g = **found;
    hlc latest;
    auto outcome = staging_.record_resolved(g.name, resolved, &latest);
    if (!outcome) {
        return staging_error(outcome.error());
    }
    switch (*outcome) {
    case resolved_outcome::recorded: {
        {
            const std::lock_guard<std::mutex> lock(g.mutex);
            g.proposed = std::max(g.proposed, resolved);
        }
        g.wake.notify_all();
        proposed_time_.with({g.label}).set(wall_seconds(resolved));
        source_lag_.with({g.label}).set(age_seconds(resolved));
        log::trace()
            .str("schema", g.label)
            .str("resolved", resolved.to_string())
            .msg("resolved timestamp");
        return ok();
    }
    case resolved_outcome::repeated: return ok();
    case resolved_outcome::backwards:
        // A changefeed that restarts resumes from its persisted high-water mark and sends
        // resolved timestamps older than ones it sent before. An older one says nothing new
        // (everything up to the newest is promised already), so it is acknowledged: refusing it
        // would only make the changefeed retry and restart again. Its rows at or below the
        // committed checkpoint are late duplicates; the rest are staged as usual.
        backwards_.with({g.label}).add();
        log::debug()
            .str("group", g.name)
            .str("proposed", resolved.to_string())
            .str("latest", latest.to_string())
            .msg("resolved timestamp older than the newest one; acknowledged and ignored");
        return ok();
    }
    return ok();
}

// --- Apply
// ----------------------------------------------------------------------------------------

bool consistent_applier::sleep_for(group& g, std::chrono::nanoseconds d) {
    std::unique_lock<std::mutex> lock(g.mutex);
    g.wake.wait_for(lock, d, [this] { return stopping_.load(); });
    return !stopping_;
}

void consistent_applier::publish(group& g) {
    hlc committed;
    hlc proposed;
    {
        const std::lock_guard<std::mutex> lock(g.mutex);
        committed = g.committed;
        proposed = g.proposed;
    }
    committed_time_.with({g.label}).set(wall_seconds(committed));
    proposed_time_.with({g.label}).set(wall_seconds(proposed));
    target_lag_.with({g.label}).set(age_seconds(committed));
    source_lag_.with({g.label}).set(age_seconds(proposed));
    pending_.get().set(static_cast<double>(std::max<int64_t>(0, backlog_.load())));
}

result<void> consistent_applier::load_progress(group& g) {
    const progress_sql sql = make_progress_sql(dialect_, g.schema);
    auto session = target_pool_.acquire(clock_type::now() + options_.apply_timeout);
    if (!session) {
        return session.error();
    }
    if (auto made = (*session)->execute(sql.create, {}); !made) {
        session->mark_broken();
        return made.error().with_context("creating " + sql.table);
    }
    auto rows = (*session)->query(sql.select, {});
    if (!rows) {
        session->mark_broken();
        return rows.error().with_context("reading " + sql.table);
    }
    hlc base;
    std::vector<std::pair<hlc, hlc>> ranges;
    for (const sql_row& row : *rows) {
        auto first = hlc_from_row(row, 0, sql.table);
        auto last = hlc_from_row(row, 2, sql.table);
        if (!first || !last) {
            return first ? last.error() : first.error();
        }
        if (first->is_zero()) {
            base = std::max(base, *last);
        } else {
            ranges.emplace_back(*first, *last);
        }
    }
    hlc staged_marker;
    const size_t open_ranges = ranges.size();
    bool reloaded = false;
    {
        const std::lock_guard<std::mutex> lock(g.mutex);
        staged_marker = g.committed;
        reloaded = g.loaded;
        g.committed = base;
        g.ranges = std::move(ranges);
        g.loaded = true;
        g.reload = false;
    }
    if (reloaded) {
        log::debug()
            .str("schema", g.label)
            .str("committed", base.to_string())
            .unum("ranges", open_ranges)
            .msg("re-read the target's progress before retrying the window");
        return ok();
    }
    if (base < staged_marker) {
        log::warn()
            .str("schema", g.label)
            .str("target", base.to_string())
            .str("staging", staged_marker.to_string())
            .msg(
                "staging records a newer committed checkpoint than the target holds (was the "
                "target restored?); applying from the target's");
    }
    log::info()
        .str("schema", g.label)
        .str("committed", base.to_string())
        .unum("ranges", open_ranges)
        .msg("resuming from the target's committed checkpoint");
    return ok();
}

void consistent_applier::run(group& g) {
    log::info().msg(fmt::format("{}: initial mode is Consistent", g.name));
    auto backoff = options_.first_backoff;
    int failures = 0;
    auto failed = [&](const error& e, std::string_view what) {
        ++failures;
        // Every failure at first, then with less noise while it lasts.
        if ((failures & (failures - 1)) == 0) {
            log::warn()
                .str("schema", g.label)
                .num("attempt", failures)
                .err(e)
                .msg(fmt::format("{}; retrying", what));
        }
        sleep_for(g, backoff);
        backoff = std::min(backoff * 2, options_.max_backoff);
    };
    while (!stopping_) {
        bool loaded = false;
        {
            const std::lock_guard<std::mutex> lock(g.mutex);
            loaded = g.loaded && !g.reload;
        }
        if (!loaded) {
            if (auto done = load_progress(g); !done) {
                failed(done.error(), "cannot read the target's progress");
                continue;
            }
        }
        publish(g);
        hlc target;
        {
            std::unique_lock<std::mutex> lock(g.mutex);
            g.wake.wait_for(lock, options_.flush_period,
                            [&] { return stopping_.load() || g.committed < g.proposed; });
            if (stopping_ || !(g.committed < g.proposed)) {
                continue;
            }
            target = g.proposed;
        }
        if (auto done = apply_window(g, target); !done) {
            {
                const std::lock_guard<std::mutex> lock(g.mutex);
                g.reload = true;
            }
            if (!stopping_) {
                apply_errors_.with({g.label, std::string(to_string(done.error().retry()))}).add();
                failed(done.error(), "applying a resolved window failed");
            }
            continue;
        }
        failures = 0;
        backoff = options_.first_backoff;
        publish(g);
        retire(g);
    }
}

result<void> consistent_applier::count_backlog(group& g, const schema_snapshot& snapshot) {
    const std::lock_guard<std::mutex> counting(g.count_mutex);
    if (g.counted) {
        return ok();
    }
    hlc from;
    {
        const std::lock_guard<std::mutex> lock(g.mutex);
        from = g.committed;
    }
    int64_t rows = 0;
    for (const table_info& t : snapshot.tables) {
        auto n = staging_.count_above(staging_store::stage_table(g.schema, t.name), from);
        if (!n) {
            return staging_error(n.error());
        }
        rows += static_cast<int64_t>(*n);
    }
    backlog_ += rows;
    g.counted = true;
    return ok();
}

result<void> consistent_applier::apply_window(group& g, hlc resolved) {
    const auto deadline = clock_type::now() + options_.apply_timeout;
    auto snapshot = schemas_.get(g.schema, deadline);
    if (!snapshot) {
        return snapshot.error();
    }
    if (auto counted = count_backlog(g, **snapshot); !counted) {
        return counted;
    }
    hlc committed;
    std::vector<std::pair<hlc, hlc>> done_ranges;
    {
        const std::lock_guard<std::mutex> lock(g.mutex);
        committed = g.committed;
        done_ranges = g.ranges;
    }
    auto already_applied = [&](hlc t) {
        return std::any_of(done_ranges.begin(), done_ranges.end(),
                           [t](const auto& r) { return r.first <= t && t <= r.second; });
    };

    struct cursor {
        std::string stage_table;
        size_t position = 0;
        std::deque<stored_mutation> rows;
        hlc after;
        std::string after_key;
        bool exhausted = false;
    };
    std::vector<cursor> cursors;
    std::vector<std::string> stage_tables;
    for (const table_info& t : (*snapshot)->tables) {
        if (is_progress_table(t)) {
            continue;
        }
        const std::string st = staging_store::stage_table(g.schema, t.name);
        auto present = staging_.exists(st);
        if (!present) {
            return present.error();
        }
        if (*present) {
            stage_tables.push_back(st);
            // Strictly after the committed checkpoint: keys are never empty.
            cursors.push_back({st,
                               (*snapshot)->order_of(t),
                               {},
                               hlc(committed.wall(), committed.logical() + 1),
                               "",
                               false});
        }
    }
    auto refill = [&](cursor& c) -> result<void> {
        if (!c.rows.empty() || c.exhausted) {
            return ok();
        }
        auto page =
            staging_.read(c.stage_table, c.after, c.after_key, resolved, options_.scan_size);
        if (!page) {
            return page.error();
        }
        c.exhausted = page->size() < options_.scan_size;
        if (!page->empty()) {
            c.after = page->back().updated;
            c.after_key = page->back().key;
        }
        for (stored_mutation& m : *page) {
            c.rows.push_back(std::move(m));
        }
        return ok();
    };

    window w;
    w.snapshot = *snapshot;
    uint64_t next_sequence = 0;
    size_t rows_read = 0;
    auto chunk = std::make_unique<window::chunk>();

    // Joins finished chunks (under w.mutex); returns false if one gave up.
    auto reap = [&] {
        for (auto it = w.chunks.begin(); it != w.chunks.end();) {
            if (w.unfinished.count(it->first) == 0) {
                it->second->thread.join();
                it = w.chunks.erase(it);
            } else {
                ++it;
            }
        }
        return !w.failure.has_value();
    };
    auto dispatch = [&]() -> result<void> {
        if (chunk->rows == 0) {
            return ok();
        }
        std::unique_lock<std::mutex> lock(w.mutex);
        // Wait for room, and for every running chunk that shares a key with this one.
        for (;;) {
            if (!reap()) {
                return *w.failure;
            }
            const bool room = w.chunks.size() < options_.parallelism;
            const bool disjoint = std::none_of(w.chunks.begin(), w.chunks.end(), [&](auto& c) {
                const auto& a = c.second->keys;
                const auto& b = chunk->keys;
                const auto& small = a.size() < b.size() ? a : b;
                const auto& large = a.size() < b.size() ? b : a;
                return std::any_of(small.begin(), small.end(),
                                   [&](const auto& k) { return large.count(k) != 0; });
            });
            if (room && disjoint) {
                break;
            }
            w.changed.wait(lock);
        }
        const uint64_t sequence = next_sequence++;
        w.unfinished.insert(sequence);
        window::chunk* raw = chunk.get();
        w.chunks.emplace(sequence, std::move(chunk));
        raw->thread = std::thread([this, &g, &w, sequence] {
            auto done = apply_chunk(g, w, sequence);
            const std::lock_guard<std::mutex> l(w.mutex);
            if (!done && !w.failure) {
                w.failure = done.error();
            }
            w.unfinished.erase(sequence);
            w.changed.notify_all();
        });
        chunk = std::make_unique<window::chunk>();
        return ok();
    };
    auto drain = [&]() -> result<void> {
        std::unique_lock<std::mutex> lock(w.mutex);
        w.changed.wait(lock, [&] { return w.unfinished.empty(); });
        reap();
        if (w.failure) {
            return *w.failure;
        }
        return ok();
    };

    result<void> outcome = ok();
    for (;;) {
        if (stopping_) {
            outcome = error{errc::cancelled, "stopping"};
            break;
        }
        // The next HLC over every table.
        std::optional<hlc> next;
        bool failed_read = false;
        for (cursor& c : cursors) {
            if (auto r = refill(c); !r) {
                outcome = r.error();
                failed_read = true;
                break;
            }
            if (!c.rows.empty() && (!next || c.rows.front().updated < *next)) {
                next = c.rows.front().updated;
            }
        }
        if (failed_read || !next) {
            break;
        }
        const bool skip = already_applied(*next);
        // Every row of this HLC, across pages and tables: one source transaction.
        for (cursor& c : cursors) {
            for (;;) {
                if (auto r = refill(c); !r) {
                    outcome = r.error();
                    failed_read = true;
                    break;
                }
                if (c.rows.empty() || c.rows.front().updated != *next) {
                    break;
                }
                stored_mutation m = std::move(c.rows.front());
                c.rows.pop_front();
                ++rows_read;
                if (skip) {
                    continue;
                }
                chunk->keys.emplace(c.position, std::string(row_key(m.key)));
                chunk->body += m.message;
                chunk->body += '\n';
                ++chunk->rows;
            }
            if (failed_read) {
                break;
            }
        }
        if (failed_read) {
            break;
        }
        if (!skip) {
            if (chunk->first.is_zero()) {
                chunk->first = *next;
            }
            chunk->last = *next;
        }
        if (chunk->rows >= options_.flush_size) {
            if (auto r = dispatch(); !r) {
                outcome = r.error();
                break;
            }
        }
    }
    if (outcome) {
        outcome = dispatch();
    }
    auto drained = drain();
    if (!outcome) {
        return outcome;
    }
    if (!drained) {
        return drained;
    }
    if (auto done = complete_window(g, resolved); !done) {
        return done;
    }
    backlog_ -= static_cast<int64_t>(rows_read);
    if (backlog_.load() < 0) {
        backlog_ = 0;  // approximate at the edges (a crash between target and staging commits)
    }
    {
        const std::lock_guard<std::mutex> lock(g.mutex);
        g.stage_tables = std::move(stage_tables);
    }
    log::debug()
        .str("schema", g.label)
        .str("resolved", resolved.to_string())
        .unum("mutations", rows_read)
        .unum("transactions", next_sequence)
        .msg("applied a resolved window");
    return ok();
}

result<void> consistent_applier::apply_chunk(group& g, window& w, uint64_t sequence) {
    window::chunk* c = nullptr;
    {
        const std::lock_guard<std::mutex> lock(w.mutex);
        c = w.chunks.at(sequence).get();
    }
    const progress_sql progress = make_progress_sql(dialect_, g.schema);
    auto decoded = proto::decode_ndjson(c->body);
    if (!decoded) {
        return decoded.error().with_context("staged mutations cannot be decoded");
    }
    std::shared_ptr<const schema_snapshot> snapshot = w.snapshot;
    std::mt19937 jitter(static_cast<uint32_t>(sequence * 7919 + 17));
    auto backoff = options_.first_backoff;
    for (int attempt = 1;; ++attempt) {
        if (stopping_) {
            return error{errc::cancelled, "stopping"};
        }
        const auto start = clock_type::now();
        auto plan = plan_batch(*snapshot, *decoded, dialect_, options_.flush_size,
                               statement_order::upserts_first);
        error failure{errc::internal, ""};
        if (!plan) {
            failure = plan.error();
        } else {
            auto session = target_pool_.acquire(start + options_.apply_timeout);
            if (!session) {
                failure = session.error();
            } else {
                target_session& db = **session;
                // True: applied now; false: an earlier attempt had committed it.
                auto attempt_once = [&]() -> result<bool> {
                    if (auto begun = db.begin(); !begun) {
                        return begun.error();
                    }
                    // The progress row first: it tells an earlier attempt that committed
                    // (acknowledgement lost) from one that did not, before anything is written.
                    auto fresh = record_progress(db, progress, c->first, c->last);
                    if (!fresh) {
                        db.rollback();
                        return fresh.error().with_context("recording progress in " +
                                                          progress.table);
                    }
                    if (!*fresh) {
                        db.rollback();
                        return false;
                    }
                    if (auto done = execute_statements(db, *plan); !done) {
                        return done.error();
                    }
                    if (auto done = db.commit(); !done) {
                        return done.error();
                    }
                    return true;
                };
                auto done = attempt_once();
                if (done) {
                    {
                        // Exact bookkeeping: a retried window skips this range.
                        const std::lock_guard<std::mutex> lock(g.mutex);
                        g.ranges.emplace_back(c->first, c->last);
                    }
                    if (*done) {
                        const double elapsed = metrics::seconds_since(start);
                        apply_metrics_.applied(g.label, *plan, elapsed);
                    } else {
                        log::info()
                            .str("schema", g.label)
                            .str("first", c->first.to_string())
                            .str("last", c->last.to_string())
                            .num("attempt", attempt)
                            .msg(
                                "the target had committed this transaction although its commit "
                                "failed (acknowledgement lost); not applied again");
                    }
                    for (const table_counts& t : plan->tables) {
                        applied_.with({g.label, t.table->name}).add(t.received);
                    }
                    return ok();
                }
                failure = done.error();
                if (failure.retry() == retry_class::reconnect ||
                    failure.code() == errc::unavailable) {
                    session->mark_broken();
                }
            }
        }
        const retry_class why = failure.retry();
        apply_metrics_.retried(g.label, why);
        if (why == retry_class::defer) {
            // A foreign key needs a row that an earlier transaction of this window writes:
            // wait for every earlier one, then try again.
            std::unique_lock<std::mutex> lock(w.mutex);
            w.changed.wait(lock, [&] {
                return stopping_.load() || w.unfinished.empty() ||
                       *w.unfinished.begin() == sequence;
            });
            if (attempt == 1) {
                continue;
            }
        } else if (why == retry_class::schema || failure.code() == errc::not_found) {
            schemas_.invalidate(g.schema);
            auto fresh = schemas_.get(g.schema, clock_type::now() + options_.apply_timeout);
            if (fresh) {
                snapshot = *fresh;
            }
        }
        if (why == retry_class::fatal || why == retry_class::none) {
            apply_errors_.with({g.label, std::string(to_string(why))}).add();
        }
        if ((attempt & (attempt - 1)) == 0) {
            auto event =
                why == retry_class::fatal || why == retry_class::none ? log::error() : log::warn();
            event.str("schema", g.label)
                .str("first", c->first.to_string())
                .str("last", c->last.to_string())
                .num("attempt", attempt)
                .str("reason", std::string(to_string(why)))
                .err(failure)
                .msg("a target transaction failed; retrying (the window waits for it)");
        }
        std::uniform_int_distribution<int64_t> spread(backoff.count() / 2, backoff.count());
        if (!sleep_for(g, std::chrono::milliseconds(spread(jitter)))) {
            return error{errc::cancelled, "stopping"};
        }
        backoff = std::min(backoff * 2, options_.max_backoff);
    }
}

result<void> consistent_applier::complete_window(group& g, hlc resolved) {
    const progress_sql progress = make_progress_sql(dialect_, g.schema);
    auto session = target_pool_.acquire(clock_type::now() + options_.apply_timeout);
    if (!session) {
        return session.error();
    }
    target_session& db = **session;
    auto run = [&]() -> result<void> {
        if (auto begun = db.begin(); !begun) {
            return begun;
        }
        if (auto done = db.execute(progress.clear, {}); !done) {
            db.rollback();
            return done;
        }
        if (auto done = db.execute(progress.insert, range_params(hlc(), resolved)); !done) {
            db.rollback();
            return done;
        }
        return db.commit();
    };
    if (auto done = run(); !done) {
        if (done.error().retry() == retry_class::reconnect) {
            session->mark_broken();
        }
        return done.error().with_context("committing checkpoint " + resolved.to_string());
    }
    {
        const std::lock_guard<std::mutex> lock(g.mutex);
        g.committed = resolved;
        g.ranges.clear();
    }
    if (auto marked = staging_.mark_committed(g.name, resolved); !marked) {
        // The target is the authority; staging's mark is for operators and retiring.
        log::warn()
            .str("schema", g.label)
            .err(marked.error())
            .msg("could not mark the checkpoint applied in staging");
    }
    committed_time_.with({g.label}).set(wall_seconds(resolved));
    return ok();
}

void consistent_applier::retire(group& g) {
    hlc committed;
    hlc retired;
    std::vector<std::string> tables;
    {
        const std::lock_guard<std::mutex> lock(g.mutex);
        committed = g.committed;
        retired = g.retired;
        tables = g.stage_tables;
    }
    const int64_t offset = options_.retire_offset.count();
    if (committed.wall() <= offset) {
        return;
    }
    const hlc upto = offset == 0 ? committed : hlc(committed.wall() - offset, 0);
    if (upto <= retired) {
        return;
    }
    uint64_t total = 0;
    for (const std::string& st : tables) {
        for (;;) {
            auto n = staging_.retire(st, upto, retire_batch);
            if (!n) {
                log::warn().str("table", st).err(n.error()).msg("retiring staged rows failed");
                return;
            }
            total += *n;
            if (*n < retire_batch || stopping_) {
                break;
            }
        }
    }
    if (auto done = staging_.retire_checkpoints(g.name, upto); !done) {
        log::warn().str("schema", g.label).err(done.error()).msg("retiring checkpoints failed");
        return;
    }
    retired_.with({g.label}).add(total);
    const std::lock_guard<std::mutex> lock(g.mutex);
    g.retired = upto;
}

}  // namespace molt::replicator
