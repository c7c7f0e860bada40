// The consistent mode against real servers: staging on the throwaway PostgreSQL, targets
// PostgreSQL and MariaDB. Each scenario runs on both targets.
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <thread>

#include "molt/replicator/sequencer/consistent_applier.hpp"
#include "molt/replicator/staging/staging_store.hpp"
#include "molt/test/json_builders.hpp"

#include "apply_support.hpp"

using namespace molt::replicator;
using namespace molt::replicator::testing;
using molt::hlc;
using molt::proto::json;
using molt::test::key;
using molt::test::num;
using molt::test::obj;
using molt::test::str;

namespace {

hlc at(int64_t wall) {
    return hlc(1'700'000'000'000'000'000 + wall, 0);
}

// A target with parent/child tables, staging in a schema of its own on PostgreSQL, and a
// consistent applier (restartable) over both.
struct consistent_stack {
    explicit consistent_stack(const std::string& target_env, consistent_options opts = {},
                              size_t target_pool_size = 8)
        : target(target_env, {}, target_pool_size),
          staging_url(molt::conn_url::parse(molt::test::server_url("MOLT_TEST_PG_URL")).value()),
          staging_pool([this] { return open_session(staging_url); }, 8, "staging",
                       "--stagingMaxPoolSize"),
          options(opts) {
        const bool pg = target.url.dialect() == molt::dialect::postgres;
        target.sql(
            "DROP TABLE IF EXISTS it_child; DROP TABLE IF EXISTS it_parent; "
            "DROP TABLE IF EXISTS _replicator_progress");
        target.sql(std::string("CREATE TABLE it_parent (id BIGINT PRIMARY KEY, v ") +
                   (pg ? "TEXT" : "VARCHAR(100)") +
                   "); CREATE TABLE it_child (id BIGINT PRIMARY KEY, parent_id BIGINT NOT NULL "
                   "REFERENCES it_parent (id), v " +
                   (pg ? "TEXT" : "VARCHAR(100)") + ")");
        staging_schema = "it_staging_" + std::to_string(getpid()) + (pg ? "_pg" : "_my");
        auto admin = open_session(staging_url).value();
        REQUIRE(admin->execute("DROP SCHEMA IF EXISTS " + staging_schema + " CASCADE", {}));
        where.schema = staging_schema;
        staging = std::make_unique<staging_store>(staging_pool, where, std::chrono::seconds(30));
        REQUIRE(staging->prepare());
        start();
    }
    ~consistent_stack() {
        applier.reset();
        if (auto admin = open_session(staging_url)) {
            (void)(*admin)->execute("DROP SCHEMA IF EXISTS " + staging_schema + " CASCADE", {});
        }
    }

    void start() {
        applier = std::make_unique<consistent_applier>(*target.dialect, target.pool, target.schemas,
                                                       *staging, metrics, options);
        REQUIRE(applier->start());
    }
    /// Stops the applier and starts a new one, as a restarted process would.
    void restart() {
        applier.reset();
        start();
    }

    molt::result<accept_stats> post(const std::vector<row>& rows) {
        auto decoded = molt::proto::decode_webhook(body(rows));
        REQUIRE(decoded);
        return applier->accept_rows(target.schema, decoded->rows);
    }
    molt::result<void> resolve(int64_t wall) {
        return applier->accept_resolved(target.schema, at(wall));
    }
    /// Waits until the target holds `wall`'s checkpoint.
    void wait_committed(int64_t wall) {
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (applier->committed(target.schema) < at(wall)) {
            if (std::chrono::steady_clock::now() > give_up) {
                FAIL("the target did not reach checkpoint "
                     << wall << "; it holds " << applier->committed(target.schema).to_string());
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    /// "id:parent_id:v" rows of it_child, or "id:v" rows of it_parent, by id.
    std::vector<std::string> rows_of(const std::string& table) {
        return joined_rows(*target.admin, table == "it_child"
                                              ? "SELECT id, parent_id, v FROM it_child ORDER BY id"
                                              : "SELECT id, v FROM it_parent ORDER BY id");
    }
    uint64_t counter(const std::string& name, const std::vector<std::string>& labels) {
        return metrics.counter(name, "", {"schema"}).with(labels).value();
    }
    uint64_t transactions() {
        return metrics.histogram("apply_duration_seconds", "", {"schema"})
            .with({target.schema.to_string()})
            .count();
    }

    apply_stack target;
    molt::conn_url staging_url;
    session_pool staging_pool;
    std::string staging_schema;
    staging_location where;
    std::unique_ptr<staging_store> staging;
    molt::metrics::registry metrics;
    consistent_options options;
    std::unique_ptr<consistent_applier> applier;
};

json parent(int64_t id, const std::string& v) {
    return obj({{"id", num(id)}, {"v", str(v)}});
}
json child(int64_t id, int64_t parent_id, const std::string& v) {
    return obj({{"id", num(id)}, {"parent_id", num(parent_id)}, {"v", str(v)}});
}

void fk_transactions_in_order(const std::string& env) {
    consistent_stack s(env);
    // Three source transactions; payload order puts children first, which the target's foreign
    // keys only accept if the apply orders them.
    REQUIRE(s.post({
        {"it_child", key({num(1)}), child(1, 1, "c1"), 10},
        {"it_parent", key({num(1)}), parent(1, "p1"), 10},
        // T2: child 1 moves to a new parent 2, parent 1 goes.
        {"it_parent", key({num(1)}), json::null(), 20},
        {"it_child", key({num(1)}), child(1, 2, "c1 moved"), 20},
        {"it_parent", key({num(2)}), parent(2, "p2"), 20},
    }));
    // T3: child and parent deleted, the parent first in the payload.
    REQUIRE(s.post({
        {"it_parent", key({num(2)}), json::null(), 30},
        {"it_child", key({num(1)}), json::null(), 30},
        {"it_parent", key({num(3)}), parent(3, "p3"), 30},
    }));
    // Nothing is applied before a resolved timestamp covers it.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(s.rows_of("it_parent").empty());

    REQUIRE(s.resolve(15));
    s.wait_committed(15);
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"1:p1"});
    CHECK(s.rows_of("it_child") == std::vector<std::string>{"1:1:c1"});

    REQUIRE(s.resolve(25));
    s.wait_committed(25);
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"2:p2"});
    CHECK(s.rows_of("it_child") == std::vector<std::string>{"1:2:c1 moved"});

    REQUIRE(s.resolve(35));
    s.wait_committed(35);
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"3:p3"});
    CHECK(s.rows_of("it_child").empty());
    CHECK(s.counter("stage_mutations_total", {s.target.schema.to_string()}) == 8);

    // An unknown target schema is refused (404), and gets no apply loop.
    molt::qualified_name unknown = s.target.schema;
    unknown.parts.back() = "no_such_schema";
    auto refused = s.applier->accept_resolved(unknown, at(40));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code() == molt::errc::not_found);
    auto decoded =
        molt::proto::decode_webhook(body({{"it_parent", key({num(9)}), parent(9, "x"), 40}}));
    REQUIRE(decoded);
    auto rows_refused = s.applier->accept_rows(unknown, decoded->rows);
    REQUIRE_FALSE(rows_refused);
    CHECK(rows_refused.error().code() == molt::errc::not_found);
    CHECK(s.applier->committed(unknown).is_zero());
}

// A source transaction of more rows than --scanSize (a schema-change backfill re-sends every
// row of a table at one HLC) is read and written page by page inside one target transaction:
// upserts parents first across pages and tables, then deletes children first. A unique value
// that moves between rows on different pages needs the whole transaction: it is applied with
// all its rows in memory.
void large_transactions(const std::string& env, size_t target_pool_size = 8) {
    consistent_stack s(
        env,
        [] {
            consistent_options o;
            o.scan_size = 50;
            o.flush_size = 20;
            o.apply_timeout = std::chrono::seconds(5);
            return o;
        }(),
        target_pool_size);
    const std::string label = s.target.schema.to_string();
    std::vector<row> t10;
    for (int64_t p = 1; p <= 20; ++p) {
        t10.push_back({"it_parent", key({num(p)}), parent(p, "p" + std::to_string(p)), 10});
    }
    REQUIRE(s.post(t10));
    // HLC 15: children of parents 2 to 5, which HLC 20 deletes with them (children first).
    REQUIRE(s.post({{"it_child", key({num(1002)}), child(1002, 2, "x2"), 15},
                    {"it_child", key({num(1003)}), child(1003, 3, "x3"), 15},
                    {"it_child", key({num(1004)}), child(1004, 4, "x4"), 15},
                    {"it_child", key({num(1005)}), child(1005, 5, "x5"), 15}}));
    // HLC 20, 249 rows in three requests, children first: 200 children of 40 new parents,
    // parent 20 (no children) deleted, and parents 2 to 5 deleted with their children.
    std::vector<row> children, parents;
    for (int64_t c = 1; c <= 200; ++c) {
        children.push_back(
            {"it_child", key({num(c)}), child(c, 21 + c % 40, "c" + std::to_string(c)), 20});
    }
    for (int64_t p = 21; p <= 60; ++p) {
        parents.push_back({"it_parent", key({num(p)}), parent(p, "p" + std::to_string(p)), 20});
    }
    parents.push_back({"it_parent", key({num(20)}), json::null(), 20});
    for (int64_t p = 2; p <= 5; ++p) {
        parents.push_back({"it_parent", key({num(p)}), json::null(), 20});
        children.push_back({"it_child", key({num(1000 + p)}), json::null(), 20});
    }
    REQUIRE(s.post(std::vector<row>(children.begin(), children.begin() + 120)));
    REQUIRE(s.post(std::vector<row>(children.begin() + 120, children.end())));
    REQUIRE(s.post(parents));
    REQUIRE(s.post({{"it_child", key({num(1)}), child(1, 6, "c1 again"), 30},
                    {"it_parent", key({num(1)}), json::null(), 30}}));
    REQUIRE(s.resolve(35));
    s.wait_committed(35);
    std::vector<std::string> want_parents, want_children;
    for (int64_t p = 6; p <= 60; ++p) {
        if (p != 20) {
            want_parents.push_back(std::to_string(p) + ":p" + std::to_string(p));
        }
    }
    for (int64_t c = 1; c <= 200; ++c) {
        want_children.push_back(c == 1 ? "1:6:c1 again"
                                       : std::to_string(c) + ":" + std::to_string(21 + c % 40) +
                                             ":c" + std::to_string(c));
    }
    std::sort(want_children.begin(), want_children.end(),
              [](const auto& a, const auto& b) { return std::stoll(a) < std::stoll(b); });
    CHECK(s.rows_of("it_parent") == want_parents);
    CHECK(s.rows_of("it_child") == want_children);
    CHECK(s.counter("apply_large_transactions_total", {label}) == 1);
    CHECK(s.counter("stage_mutations_total", {label}) == 20 + 4 + 249 + 2);

    // HLC 40, 100 rows: child 1 (key "[1]", the first page) takes the unique value of child 99
    // (key "[99]": staged keys sort as text, the last page), which gives it up; 98 others
    // change too. Page by page, the first page fails: it is applied in memory.
    s.target.sql("CREATE UNIQUE INDEX it_child_v ON it_child (v)");
    std::vector<row> moves = {{"it_child", key({num(1)}), child(1, 6, "c99"), 40},
                              {"it_child", key({num(99)}), child(99, 21, "c99 moved"), 40}};
    for (int64_t c = 2; c <= 100; ++c) {
        if (c != 99) {
            moves.push_back(
                {"it_child", key({num(c)}), child(c, 21 + c % 40, "n" + std::to_string(c)), 40});
        }
    }
    REQUIRE(s.post(moves));
    REQUIRE(s.resolve(45));
    s.wait_committed(45);
    const auto after = s.rows_of("it_child");
    CHECK(after.front() == "1:6:c99");
    CHECK(after[98] == "99:21:c99 moved");
    CHECK(after[1] == "2:23:n2");
    CHECK(s.counter("apply_large_transactions_total", {label}) == 1);  // in memory
}

// A column the target does not have yet (added on the source first): the schema stalls,
// loudly, nothing is applied, and it goes on by itself once the column is added to the target
// (the schema is read again before each retry), for an ordinary transaction and a large one.
void missing_column_until_added(const std::string& env) {
    consistent_stack s(env, [] {
        consistent_options o;
        o.scan_size = 50;
        o.max_backoff = std::chrono::milliseconds(200);
        return o;
    }());
    const std::string label = s.target.schema.to_string();
    auto with_w = [](int64_t id) {
        return obj({{"id", num(id)}, {"v", str("p" + std::to_string(id))}, {"w", str("x")}});
    };
    REQUIRE(s.post({{"it_parent", key({num(1)}), with_w(1), 10}}));
    REQUIRE(s.resolve(15));
    auto refused = [&] {
        return s.metrics.counter("apply_errors_total", "", {"schema", "reason"})
            .with({label, "none"})
            .value();
    };
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (refused() < 3 && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(refused() >= 3);
    CHECK(s.rows_of("it_parent").empty());
    CHECK(s.applier->committed(s.target.schema) < at(10));
    const bool pg = s.target.url.dialect() == molt::dialect::postgres;
    auto add_w = [&] {
        s.target.sql(std::string("ALTER TABLE it_parent ADD COLUMN w ") +
                     (pg ? "TEXT" : "VARCHAR(10)"));
    };
    add_w();
    s.wait_committed(15);
    CHECK(s.rows_of("it_parent").size() == 1);
    // The large one: its last page refused (the column dropped again for the test), the pages
    // written before it rolled back with it.
    s.target.sql("ALTER TABLE it_parent DROP COLUMN w");
    std::vector<row> large;
    for (int64_t id = 100; id < 160; ++id) {
        // Only the last page's rows carry the column: the pages before it are written, then
        // rolled back with the transaction.
        large.push_back({"it_parent", key({num(id)}),
                         id >= 155 ? with_w(id) : parent(id, "p" + std::to_string(id)), 20});
    }
    const uint64_t before = refused();
    REQUIRE(s.post(large));
    REQUIRE(s.resolve(25));
    const auto later = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (refused() < before + 3 && std::chrono::steady_clock::now() < later) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(refused() >= before + 3);
    CHECK(s.rows_of("it_parent").size() == 1);
    CHECK(s.applier->committed(s.target.schema) < at(20));
    add_w();
    s.wait_committed(25);
    CHECK(s.rows_of("it_parent").size() == 61);
    CHECK(s.counter("apply_large_transactions_total", {label}) == 1);
}

void fragments_and_duplicates(const std::string& env) {
    consistent_stack s(env, [] {
        consistent_options o;
        o.flush_size = 1;  // a transaction per HLC: only whole HLCs may share one
        return o;
    }());
    // One source transaction (HLC 40) arrives in two requests, children first; a lone row at 41.
    const std::vector<row> first = {{"it_child", key({num(5)}), child(5, 5, "c5"), 40},
                                    {"it_child", key({num(6)}), child(6, 5, "c6"), 40}};
    const std::vector<row> second = {{"it_parent", key({num(5)}), parent(5, "p5"), 40},
                                     {"it_parent", key({num(7)}), parent(7, "p7"), 41}};
    REQUIRE(s.post(first));
    REQUIRE(s.post(second));
    // Redelivery and a replay: absorbed by staging.
    REQUIRE(s.post(first));
    REQUIRE(s.post(second));
    REQUIRE(s.post(first));
    const std::string label = s.target.schema.to_string();
    CHECK(s.counter("stage_mutations_total", {label}) == 4);
    CHECK(s.counter("stage_duplicate_mutations_total", {label}) == 6);

    REQUIRE(s.resolve(45));
    s.wait_committed(45);
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"5:p5", "7:p7"});
    CHECK(s.rows_of("it_child") == std::vector<std::string>{"5:5:c5", "6:5:c6"});
    // HLC 40's three rows went in one target transaction despite --flushSize 1; 41 in another.
    CHECK(s.transactions() == 2);

    // A late duplicate, with different content: dropped, counted, reported.
    REQUIRE(s.post({{"it_parent", key({num(5)}), parent(5, "rewritten"), 40}}));
    CHECK(s.counter("stage_late_duplicate_mutations_total", {label}) == 1);
    CHECK(s.metrics.counter("changefeed_protocol_violations_total", "", {"schema", "kind"})
              .with({label, "late_duplicate_differs"})
              .value() == 1);
    REQUIRE(s.post({{"it_parent", key({num(8)}), parent(8, "p8"), 50}}));
    REQUIRE(s.resolve(55));
    s.wait_committed(55);
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"5:p5", "7:p7", "8:p8"});

    // Rows at or below the committed checkpoint that were never staged (a changefeed re-created
    // with an initial scan at an older cursor, or a table added with ALTER CHANGEFEED): not
    // duplicates, so applied, before the answer.
    REQUIRE(s.post({{"it_parent", key({num(9)}), parent(9, "scanned"), 45},
                    {"it_parent", key({num(10)}), parent(10, "p10"), 60}}));
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"5:p5", "7:p7", "8:p8", "9:scanned"});
    CHECK(s.counter("stage_late_applied_mutations_total", {label}) == 1);
    REQUIRE(s.resolve(65));
    s.wait_committed(65);
    CHECK(s.rows_of("it_parent") ==
          std::vector<std::string>{"5:p5", "7:p7", "8:p8", "9:scanned", "10:p10"});
}

// What an initial scan at an older cursor (or of a table added with ALTER CHANGEFEED) sends:
// every row of the table at one HLC at or below the last resolved timestamp. Rows staging never
// had are applied at once; a key whose staged version is newer keeps it.
void late_scan_rows(const std::string& env) {
    consistent_stack s(env);
    const std::string label = s.target.schema.to_string();
    REQUIRE(s.post({{"it_parent", key({num(1)}), parent(1, "a"), 10},
                    {"it_parent", key({num(2)}), parent(2, "b"), 10},
                    {"it_parent", key({num(4)}), parent(4, "d"), 10}}));
    REQUIRE(s.resolve(20));
    s.wait_committed(20);
    REQUIRE(s.post({{"it_parent", key({num(2)}), parent(2, "b2"), 30},
                    {"it_parent", key({num(4)}), json::null(), 30}}));
    REQUIRE(s.resolve(40));
    s.wait_committed(40);
    // Staged, not resolved yet: parent 1's next version.
    REQUIRE(s.post({{"it_parent", key({num(1)}), parent(1, "a3"), 50}}));

    // The scan at HLC 20, children before their parent: parent 1 and 2 as they were at 20
    // (newer versions are staged: kept), parent 4 (deleted at 30: not resurrected), parent 3
    // and its child (never seen: applied).
    const std::vector<row> scan = {{"it_child", key({num(1)}), child(1, 3, "c"), 20},
                                   {"it_parent", key({num(1)}), parent(1, "a"), 20},
                                   {"it_parent", key({num(2)}), parent(2, "b"), 20},
                                   {"it_parent", key({num(3)}), parent(3, "c"), 20},
                                   {"it_parent", key({num(4)}), parent(4, "d"), 20}};
    REQUIRE(s.post(scan));
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"1:a", "2:b2", "3:c"});
    CHECK(s.rows_of("it_child") == std::vector<std::string>{"1:3:c"});
    CHECK(s.counter("stage_late_applied_mutations_total", {label}) == 2);
    CHECK(s.counter("stage_late_superseded_mutations_total", {label}) == 3);

    // The scan again (a retry whose answer was lost): duplicates, nothing changes.
    REQUIRE(s.post(scan));
    CHECK(s.counter("stage_late_applied_mutations_total", {label}) == 2);
    // An older version of the scanned child, which the scan now supersedes.
    REQUIRE(s.post({{"it_child", key({num(1)}), child(1, 3, "older"), 15}}));
    CHECK(s.rows_of("it_child") == std::vector<std::string>{"1:3:c"});

    REQUIRE(s.resolve(60));
    s.wait_committed(60);
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"1:a3", "2:b2", "3:c"});

    // Across a restart, staging still knows what the scan wrote.
    s.restart();
    REQUIRE(s.post({{"it_parent", key({num(3)}), parent(3, "older"), 18}}));
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"1:a3", "2:b2", "3:c"});
}

// Late rows above the committed checkpoint (at or below the newest resolved timestamp) wait for
// the window that covers them, never run beside it, and keep a newer staged version.
void late_rows_wait_for_their_window() {
    consistent_stack s("MOLT_TEST_PG_URL");
    REQUIRE(s.post({{"it_parent", key({num(1)}), parent(1, "a"), 10}}));
    REQUIRE(s.resolve(20));
    s.wait_committed(20);
    // The next window blocks on a lock the test holds.
    auto locker = open_session(s.target.url).value();
    REQUIRE(locker->begin());
    REQUIRE(locker->execute("LOCK TABLE it_parent IN ACCESS EXCLUSIVE MODE", {}));
    REQUIRE(s.post({{"it_parent", key({num(1)}), parent(1, "b"), 30}}));
    REQUIRE(s.resolve(40));
    std::atomic<bool> done{false};
    molt::result<accept_stats> late = molt::error{molt::errc::internal, "not run"};
    std::thread poster([&] {
        late = s.post({{"it_parent", key({num(1)}), parent(1, "older than staged"), 25},
                       {"it_parent", key({num(2)}), parent(2, "scanned"), 35}});
        done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    CHECK_FALSE(done.load());  // waiting for the window that covers HLC 35
    REQUIRE(locker->commit());
    poster.join();
    REQUIRE(late);
    s.wait_committed(40);
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"1:b", "2:scanned"});
    const std::string label = s.target.schema.to_string();
    CHECK(s.counter("stage_late_applied_mutations_total", {label}) == 1);
    CHECK(s.counter("stage_late_superseded_mutations_total", {label}) == 1);
}

// With --retireOffset 0 staged rows go as soon as they are applied: a late row below the
// checkpoint cannot be told from a duplicate of a retired one, so it is dropped, and counted.
void late_rows_without_retired_history(const std::string& env) {
    consistent_stack s(env, [] {
        consistent_options o;
        o.retire_offset = std::chrono::nanoseconds(0);
        return o;
    }());
    const std::string label = s.target.schema.to_string();
    REQUIRE(s.post({{"it_parent", key({num(1)}), parent(1, "a"), 10}}));
    REQUIRE(s.resolve(20));
    s.wait_committed(20);
    REQUIRE(s.post({{"it_parent", key({num(1)}), parent(1, "b"), 30}}));
    REQUIRE(s.resolve(40));
    s.wait_committed(40);
    REQUIRE(s.post({{"it_parent", key({num(1)}), parent(1, "scanned at 20"), 20},
                    {"it_parent", key({num(2)}), parent(2, "scanned at 20"), 20}}));
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"1:b"});
    CHECK(s.counter("stage_late_unverifiable_mutations_total", {label}) == 2);
    CHECK(s.counter("stage_late_applied_mutations_total", {label}) == 0);
}

// Staging lost (or --stagingSchema changed) while the target keeps its progress: rows at or
// below the target's checkpoint are late, not new rows no window would ever read again.
void late_rows_when_staging_knows_less_than_the_target(const std::string& env) {
    consistent_stack s(env);
    REQUIRE(s.post({{"it_parent", key({num(1)}), parent(1, "a"), 10}}));
    REQUIRE(s.resolve(20));
    s.wait_committed(20);
    s.applier.reset();
    auto admin = open_session(s.staging_url).value();
    REQUIRE(admin->execute("DROP SCHEMA " + s.staging_schema + " CASCADE", {}));
    s.staging = std::make_unique<staging_store>(s.staging_pool, s.where, std::chrono::seconds(30));
    REQUIRE(s.staging->prepare());
    s.start();
    // A feed re-created at the target's checkpoint with an initial scan: every row at 20.
    REQUIRE(s.post({{"it_parent", key({num(1)}), parent(1, "a"), 20},
                    {"it_parent", key({num(2)}), parent(2, "b"), 20}}));
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"1:a", "2:b"});
    REQUIRE(s.post({{"it_parent", key({num(3)}), parent(3, "c"), 30}}));
    REQUIRE(s.resolve(40));
    s.wait_committed(40);
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"1:a", "2:b", "3:c"});
}

void resolved_timestamps(const std::string& env) {
    consistent_stack s(env);
    REQUIRE(s.post({{"it_parent", key({num(1)}), parent(1, "a"), 10}}));
    REQUIRE(s.resolve(20));
    REQUIRE(s.resolve(20));  // a duplicate is fine
    s.wait_committed(20);
    // An older resolved timestamp (a changefeed that restarted from its persisted high-water
    // mark re-sends them) says nothing new: acknowledged, counted, and it changes nothing.
    REQUIRE(s.resolve(15));
    REQUIRE(s.resolve(12));
    const std::string label = s.target.schema.to_string();
    CHECK(s.counter("checkpoint_proposed_going_backwards_errors", {label}) == 2);
    CHECK(s.applier->committed(s.target.schema) == at(20));
    CHECK(
        s.metrics.gauge("checkpoint_proposed_time_seconds", "", {"schema"}).with({label}).value() ==
        Approx(static_cast<double>(at(20).wall()) / 1e9));

    // Rows staged above the checkpoint survive a restart; the new process resumes from the
    // target's committed checkpoint and applies them once resolved.
    REQUIRE(s.post({{"it_parent", key({num(2)}), parent(2, "b"), 30}}));
    s.restart();
    CHECK(s.applier->committed(s.target.schema) <= at(20));
    REQUIRE(s.resolve(15));  // acknowledged in a new process too
    REQUIRE(s.resolve(35));
    s.wait_committed(35);
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"1:a", "2:b"});
    // The progress table holds one row: the committed checkpoint.
    CHECK(s.target.column("SELECT last_nanos FROM _replicator_progress") ==
          std::vector<std::optional<std::string>>{std::to_string(at(35).wall())});
}

// Runs one statement on the target's admin session (function bodies hold "; ").
void statement(consistent_stack& s, const std::string& text) {
    auto done = s.target.admin->execute(text, {});
    if (!done) {
        FAIL(text << ": " << done.error().message());
    }
}

// Counts every row version a committed target transaction writes into it_parent (it_applied:
// one row per id per write), so a test can tell "applied once" from "applied twice".
void count_parent_writes(consistent_stack& s) {
    const bool pg = s.target.url.dialect() == molt::dialect::postgres;
    s.target.sql("DROP TABLE IF EXISTS it_applied; CREATE TABLE it_applied (id BIGINT NOT NULL)");
    if (pg) {
        statement(
            s,
            "CREATE OR REPLACE FUNCTION it_count_write() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN INSERT INTO it_applied VALUES (NEW.id); RETURN NEW; END $$");
        s.target.sql(
            "CREATE TRIGGER it_count_write AFTER INSERT OR UPDATE ON it_parent FOR EACH ROW "
            "EXECUTE FUNCTION it_count_write()");
    } else {
        s.target.sql(
            "CREATE TRIGGER it_count_insert AFTER INSERT ON it_parent FOR EACH ROW INSERT INTO "
            "it_applied VALUES (NEW.id)");
        s.target.sql(
            "CREATE TRIGGER it_count_update AFTER UPDATE ON it_parent FOR EACH ROW INSERT INTO "
            "it_applied VALUES (NEW.id)");
    }
}

/// "id:writes" for each id written since count_parent_writes.
std::vector<std::optional<std::string>> parent_writes(consistent_stack& s) {
    const bool pg = s.target.url.dialect() == molt::dialect::postgres;
    return s.target.column(pg ? "SELECT id || ':' || count(*) FROM it_applied GROUP BY id ORDER "
                                "BY id"
                              : "SELECT CONCAT(id, ':', COUNT(*)) FROM it_applied GROUP BY id "
                                "ORDER BY id");
}

// Point 1 of issue 13: a transient error after some transactions of a window have committed
// (here the target refuses the checkpoint transaction once, through a trigger on the progress
// table that fires once: a sequence on PostgreSQL, a non-transactional MyISAM flag on MariaDB)
// must not re-apply what this process already committed, nor wedge the loop.
void window_retried_after_a_transient_fault(const std::string& env) {
    consistent_stack s(env, [] {
        consistent_options o;
        o.flush_size = 1;  // a target transaction per HLC: several commit before the checkpoint
        return o;
    }());
    const bool pg = s.target.url.dialect() == molt::dialect::postgres;
    // A first window creates the progress table.
    REQUIRE(s.post({{"it_parent", key({num(1)}), parent(1, "p1"), 10}}));
    REQUIRE(s.resolve(15));
    s.wait_committed(15);

    count_parent_writes(s);
    if (pg) {
        s.target.sql("DROP SEQUENCE IF EXISTS it_fault_seq; CREATE SEQUENCE it_fault_seq");
        statement(
            s,
            "CREATE OR REPLACE FUNCTION it_fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF nextval('it_fault_seq') = 1 THEN RAISE EXCEPTION 'injected fault' USING ERRCODE "
            "= '40001'; END IF; RETURN OLD; END $$");
        s.target.sql(
            "CREATE TRIGGER it_fault BEFORE DELETE ON _replicator_progress FOR EACH ROW EXECUTE "
            "FUNCTION it_fault()");
    } else {
        s.target.sql(
            "DROP TABLE IF EXISTS it_fault; CREATE TABLE it_fault (armed INT NOT NULL) ENGINE "
            "MyISAM; INSERT INTO it_fault VALUES (1)");
        statement(
            s,
            "CREATE TRIGGER it_fault BEFORE DELETE ON _replicator_progress FOR EACH ROW BEGIN "
            "IF (SELECT armed FROM it_fault) > 0 THEN UPDATE it_fault SET armed = 0; SIGNAL "
            "SQLSTATE '40001' SET MESSAGE_TEXT = 'injected fault', MYSQL_ERRNO = 1213; END IF; "
            "END");
    }

    std::vector<row> rows;
    for (int64_t id = 2; id <= 6; ++id) {
        rows.push_back(
            {"it_parent", key({num(id)}), parent(id, "p" + std::to_string(id)), 18 + id});
    }
    REQUIRE(s.post(rows));
    REQUIRE(s.resolve(30));
    s.wait_committed(30);
    // The fault fired (the checkpoint transaction was refused once), and every row of the window
    // was written exactly once.
    CHECK(s.target.one(pg ? "SELECT CASE WHEN last_value > 1 THEN 'fired' END FROM it_fault_seq"
                          : "SELECT CASE WHEN armed = 0 THEN 'fired' END FROM it_fault") ==
          std::optional<std::string>("fired"));
    CHECK(s.rows_of("it_parent") ==
          std::vector<std::string>{"1:p1", "2:p2", "3:p3", "4:p4", "5:p5", "6:p6"});
    CHECK(parent_writes(s) ==
          std::vector<std::optional<std::string>>{"2:1", "3:1", "4:1", "5:1", "6:1"});
    CHECK(s.target.column("SELECT last_nanos FROM _replicator_progress") ==
          std::vector<std::optional<std::string>>{std::to_string(at(30).wall())});

    // The loop goes on.
    REQUIRE(s.post({{"it_parent", key({num(7)}), parent(7, "p7"), 40}}));
    REQUIRE(s.resolve(45));
    s.wait_committed(45);
    CHECK(parent_writes(s) ==
          std::vector<std::optional<std::string>>{"2:1", "3:1", "4:1", "5:1", "6:1", "7:1"});
}

// Point 1 of issue 13, the lost COMMIT acknowledgement: PostgreSQL commits a target transaction
// locally, then waits for a synchronous standby that does not exist (the trigger turns
// synchronous_commit on for that one transaction); the admin terminates the session during the
// wait, so the client hears an error for a transaction that is committed. The retry must see the
// progress row and not apply the transaction again.
void lost_commit_acknowledgement() {
    consistent_stack s("MOLT_TEST_PG_URL");
    auto admin =
        open_session(
            molt::conn_url::parse(molt::test::server_url("MOLT_TEST_PG_ADMIN_URL")).value())
            .value();
    auto admin_sql = [&](const std::string& text) {
        auto done = admin->execute(text, {});
        if (!done) {
            FAIL(text << ": " << done.error().message());
        }
    };
    REQUIRE(s.post({{"it_parent", key({num(1)}), parent(1, "p1"), 10}}));
    REQUIRE(s.resolve(15));
    s.wait_committed(15);

    count_parent_writes(s);
    s.target.sql("DROP SEQUENCE IF EXISTS it_ack_seq; CREATE SEQUENCE it_ack_seq");
    statement(
        s,
        "CREATE OR REPLACE FUNCTION it_wait_for_standby() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF NEW.first_nanos <> 0 AND nextval('it_ack_seq') = 1 THEN PERFORM "
        "set_config('synchronous_commit', 'on', true); END IF; RETURN NEW; END $$");
    s.target.sql(
        "CREATE TRIGGER it_wait_for_standby AFTER INSERT ON _replicator_progress FOR EACH ROW "
        "EXECUTE FUNCTION it_wait_for_standby()");
    struct standby_reset {
        target_session& admin;
        ~standby_reset() {
            (void)admin.execute("ALTER SYSTEM RESET synchronous_standby_names", {});
            (void)admin.query("SELECT pg_reload_conf()", {});
        }
    } reset{*admin};
    admin_sql("ALTER SYSTEM SET synchronous_standby_names = 'molt_no_such_standby'");
    REQUIRE(admin->query("SELECT pg_reload_conf()", {}));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the checkpointer's turn

    REQUIRE(s.post({{"it_parent", key({num(2)}), parent(2, "p2"), 20},
                    {"it_parent", key({num(3)}), parent(3, "p3"), 21}}));
    REQUIRE(s.resolve(30));
    std::optional<std::string> pid;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!pid) {
        auto waiting =
            admin->query("SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'", {});
        REQUIRE(waiting);
        if (!waiting->empty()) {
            pid = waiting->front().at(0);
        } else {
            REQUIRE(std::chrono::steady_clock::now() < give_up);
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    REQUIRE(admin->query("SELECT pg_terminate_backend(" + *pid + ")", {}));
    admin_sql("ALTER SYSTEM RESET synchronous_standby_names");
    REQUIRE(admin->query("SELECT pg_reload_conf()", {}));

    s.wait_committed(30);
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"1:p1", "2:p2", "3:p3"});
    CHECK(parent_writes(s) == std::vector<std::optional<std::string>>{"2:1", "3:1"});
    CHECK(s.target.column("SELECT last_nanos FROM _replicator_progress") ==
          std::vector<std::optional<std::string>>{std::to_string(at(30).wall())});

    REQUIRE(s.post({{"it_parent", key({num(4)}), parent(4, "p4"), 40}}));
    REQUIRE(s.resolve(45));
    s.wait_committed(45);
    CHECK(parent_writes(s) == std::vector<std::optional<std::string>>{"2:1", "3:1", "4:1"});
}

// Disjoint chunks run at once but commit in order: while the earlier one waits for a lock, a
// reader never sees the later one alone (a state the source never had). Stopping then rolls the
// later one back.
void later_chunk_waits_for_the_earlier(const std::string& env, bool stop_while_waiting) {
    consistent_stack s(env, [] {
        consistent_options o;
        o.flush_size = 1;  // one chunk per source transaction
        o.parallelism = 4;
        return o;
    }());
    REQUIRE(s.post({{"it_parent", key({num(1)}), parent(1, "old"), 10}}));
    REQUIRE(s.resolve(11));
    s.wait_committed(11);
    // Hold row 1 locked, so the chunk of HLC 20 (updates row 1) waits; HLC 30 (inserts row 2)
    // is disjoint and may run at once.
    auto locker = open_session(s.target.url).value();
    REQUIRE(locker->begin());
    REQUIRE(locker->query("SELECT v FROM it_parent WHERE id = 1 FOR UPDATE", {}));
    REQUIRE(s.post({{"it_parent", key({num(1)}), parent(1, "new"), 20}}));
    REQUIRE(s.post({{"it_parent", key({num(2)}), parent(2, "p2"), 30}}));
    REQUIRE(s.resolve(31));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"1:old"});
    if (stop_while_waiting) {
        bool released = false;
        std::thread release([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
            released = static_cast<bool>(locker->commit());
        });
        s.applier->stop();
        release.join();
        REQUIRE(released);
        // Whatever committed, it is a state the source had: HLC 10, 20 or 30, never 10 + 30.
        const auto rows = s.rows_of("it_parent");
        CHECK((rows == std::vector<std::string>{"1:old"} ||
               rows == std::vector<std::string>{"1:new"} ||
               rows == std::vector<std::string>{"1:new", "2:p2"}));
        s.restart();
        s.wait_committed(31);
    } else {
        REQUIRE(locker->commit());
        s.wait_committed(31);
    }
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"1:new", "2:p2"});
}

// A URL path spelled in another case names the same target schema: one checkpoint stream, and
// the rows are applied.
void miscased_url_path(const std::string& env) {
    consistent_stack s(env);
    molt::qualified_name miscased = s.target.schema;
    for (std::string& part : miscased.parts) {
        for (char& c : part) {
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
    }
    REQUIRE(miscased.parts != s.target.schema.parts);
    auto decoded =
        molt::proto::decode_webhook(body({{"it_parent", key({num(1)}), parent(1, "p1"), 10}}));
    REQUIRE(decoded);
    REQUIRE(s.applier->accept_rows(miscased, decoded->rows));
    REQUIRE(s.applier->accept_resolved(miscased, at(15)));
    s.wait_committed(15);
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"1:p1"});
    // Both spellings feed one stream: rows by one, resolved by the other.
    REQUIRE(s.post({{"it_parent", key({num(2)}), parent(2, "p2"), 20}}));
    REQUIRE(s.applier->accept_resolved(miscased, at(25)));
    s.wait_committed(25);
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"1:p1", "2:p2"});
    CHECK(s.applier->committed(miscased) == at(25));
}

// --stagingMaxBacklog bounds the rows a resolved timestamp has covered and the target has not
// applied yet. Rows above the newest resolved timestamp are never refused: the changefeed cannot
// resolve them before they are acknowledged (an initial scan, a large transaction).
void backlog_bound(const std::string& env) {
    consistent_stack s(env, [] {
        consistent_options o;
        o.max_backlog = 5;
        return o;
    }());
    for (int64_t batch = 0; batch < 4; ++batch) {
        std::vector<row> rows;
        for (int64_t i = 1; i <= 5; ++i) {
            const int64_t id = batch * 5 + i;
            rows.push_back({"it_parent", key({num(id)}), parent(id, "p"), 10 + batch});
        }
        auto accepted = s.post(rows);
        REQUIRE(accepted);
    }
    REQUIRE(s.resolve(20));
    s.wait_committed(20);
    CHECK(s.rows_of("it_parent").size() == 20);

    // The target is held: six resolved rows wait, more than the bound, so new rows are refused
    // (503) until the target has applied them.
    auto locker = open_session(s.target.url).value();
    REQUIRE(locker->begin());
    REQUIRE(locker->query("SELECT v FROM it_parent WHERE id = 1 FOR UPDATE", {}));
    std::vector<row> held;
    for (int64_t id = 1; id <= 6; ++id) {
        held.push_back({"it_parent", key({num(id)}), parent(id, "held"), 30});
    }
    REQUIRE(s.post(held));
    REQUIRE(s.resolve(35));
    auto refused = s.post({{"it_parent", key({num(40)}), parent(40, "p"), 40}});
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code() == molt::errc::unavailable);
    CHECK_THAT(refused.error().message(), Catch::Contains("--stagingMaxBacklog 5"));
    REQUIRE(locker->commit());
    s.wait_committed(35);
    REQUIRE(s.post({{"it_parent", key({num(40)}), parent(40, "p"), 40}}));
    REQUIRE(s.resolve(45));
    s.wait_committed(45);
    CHECK(s.rows_of("it_parent").size() == 21);
}

// A backlog an earlier process left (here: staged while a row lock held the target) is applied
// in windows of about 4 x flushSize x parallelism rows (4 here), each moving the checkpoint, not
// in one window up to the newest resolved timestamp.
void backlog_in_windows_after_restart(const std::string& env) {
    consistent_stack s(env, [] {
        consistent_options o;
        o.flush_size = 1;
        o.parallelism = 1;
        o.scan_size = 1;
        o.apply_timeout = std::chrono::seconds(2);
        return o;
    }());
    REQUIRE(s.post({{"it_parent", key({num(5)}), parent(5, "p"), 10},
                    {"it_parent", key({num(6)}), parent(6, "p"), 10}}));
    REQUIRE(s.resolve(11));
    s.wait_committed(11);
    auto locker = open_session(s.target.url).value();
    REQUIRE(locker->begin());
    REQUIRE(locker->query("SELECT v FROM it_parent WHERE id = 5 FOR UPDATE", {}));
    // One row per source transaction, each resolved: 20 writes the locked row 5, 80 row 6.
    for (int64_t wall = 20; wall <= 130; wall += 10) {
        const int64_t id = wall == 20 ? 5 : wall == 80 ? 6 : 100 + wall;
        REQUIRE(s.post({{"it_parent", key({num(id)}), parent(id, "b"), wall}}));
        REQUIRE(s.resolve(wall + 1));
    }
    s.applier.reset();  // stops, rolling back the window blocked on row 5
    REQUIRE(s.rows_of("it_parent") == std::vector<std::string>{"5:p", "6:p"});
    locker->rollback();
    REQUIRE(locker->begin());
    REQUIRE(locker->query("SELECT v FROM it_parent WHERE id = 6 FOR UPDATE", {}));
    s.start();
    // The first window ends at 51 (20 to 50: four rows) and commits; the second waits for row 6.
    s.wait_committed(51);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    CHECK(s.applier->committed(s.target.schema) == at(51));
    locker->rollback();
    s.wait_committed(131);
    CHECK(s.rows_of("it_parent").size() == 12);
}

// Point 9 of issue 13: counting a backlog an earlier process left never holds up ingest. The
// count is made to wait (an exclusive lock on one staging table, taken before the restart);
// meanwhile rows for another table are staged and resolved at once, and everything is applied
// once the lock goes.
void backlog_count_never_blocks_ingest(const std::string& env) {
    consistent_stack s(env, [] {
        consistent_options o;
        o.apply_timeout = std::chrono::seconds(2);
        o.request_timeout = std::chrono::seconds(5);
        return o;
    }());
    REQUIRE(s.post({{"it_parent", key({num(5)}), parent(5, "p"), 10}}));
    REQUIRE(s.resolve(11));
    s.wait_committed(11);
    // A resolved backlog the target cannot apply yet (row 5 locked), left behind by a stop.
    auto locker = open_session(s.target.url).value();
    REQUIRE(locker->begin());
    REQUIRE(locker->query("SELECT v FROM it_parent WHERE id = 5 FOR UPDATE", {}));
    REQUIRE(s.post({{"it_parent", key({num(5)}), parent(5, "b"), 20}}));
    REQUIRE(s.resolve(21));
    s.applier.reset();
    locker->rollback();

    auto holder = open_session(s.staging_url).value();
    const std::string locked =
        s.where.qualify(staging_store::stage_table(s.target.schema, "it_parent"));
    REQUIRE(holder->begin());
    REQUIRE(holder->execute("LOCK TABLE " + locked + " IN ACCESS EXCLUSIVE MODE", {}));
    s.start();
    // The new process's count of that backlog waits for the lock.
    auto watcher = open_session(s.staging_url).value();
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
        auto waiting = watcher->query(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE "
            "'SELECT count(*)%" +
                staging_store::stage_table(s.target.schema, "it_parent") +
                "%' AND datname = current_database()",
            {});
        REQUIRE(waiting);
        if (waiting->front().at(0) != "0") {
            break;
        }
        REQUIRE(std::chrono::steady_clock::now() < give_up);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // Ingest goes on meanwhile: another table's rows are staged, a resolved timestamp recorded.
    auto staged = s.post({{"it_child", key({num(1)}), child(1, 5, "c"), 30}});
    REQUIRE(staged);
    CHECK(staged->upserts == 1);
    REQUIRE(s.resolve(31));
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"5:p"});
    holder->rollback();
    s.wait_committed(31);
    CHECK(s.rows_of("it_parent") == std::vector<std::string>{"5:b"});
    CHECK(s.rows_of("it_child") == std::vector<std::string>{"1:5:c"});
}

// Column families: each family staged under its own topic, folded into one row per key when
// its window is applied.
void column_families(const std::string& env) {
    consistent_stack s(env);
    create_family_table(s.target);
    for (const std::vector<row>& request : family_requests()) {
        REQUIRE(s.post(request));
    }
    REQUIRE(s.resolve(35));
    s.wait_committed(35);
    CHECK(family_rows(s.target) == family_rows_at_30);
    REQUIRE(s.resolve(65));
    s.wait_committed(65);
    CHECK(family_rows(s.target) == family_rows_at_end);
    s.target.sql("DROP TABLE fam_t");
}

}  // namespace

// One source transaction of rows whose sum is above MariaDB's max_allowed_packet (16 MiB): the
// window's statements stay under it, in one target transaction.
TEST_CASE("consistent, MariaDB: rows of megabytes, more in one transaction than a packet",
          "[integration][consistent]") {
    consistent_stack s("MOLT_TEST_MYSQL_URL");
    const int64_t packet = std::stoll(*s.target.one("SELECT @@max_allowed_packet"));
    s.target.sql("DROP TABLE IF EXISTS it_big");
    s.target.sql("CREATE TABLE it_big (id BIGINT PRIMARY KEY, doc LONGTEXT)");
    const size_t each = static_cast<size_t>(packet) / 3;
    std::vector<row> rows;
    for (int64_t id = 1; id <= 4; ++id) {
        rows.push_back({"it_big", key({num(id)}),
                        obj({{"id", num(id)}, {"doc", str(std::string(each, 'a'))}}), 10});
    }
    REQUIRE(s.post(rows));
    REQUIRE(s.resolve(20));
    s.wait_committed(20);
    CHECK(s.target.one("SELECT count(*) FROM it_big") == "4");
    CHECK(s.target.one("SELECT sum(length(doc)) FROM it_big") == std::to_string(4 * each));
    s.target.sql("DROP TABLE it_big");
}

TEST_CASE("consistent, PostgreSQL: column families merge into one row per key",
          "[integration][consistent][families]") {
    column_families("MOLT_TEST_PG_URL");
}
TEST_CASE("consistent, MariaDB: column families merge into one row per key",
          "[integration][consistent][families]") {
    column_families("MOLT_TEST_MYSQL_URL");
}

TEST_CASE("consistent, PostgreSQL: a later chunk never commits before an earlier one",
          "[integration][consistent]") {
    later_chunk_waits_for_the_earlier("MOLT_TEST_PG_URL", false);
}
TEST_CASE("consistent, MariaDB: a later chunk never commits before an earlier one",
          "[integration][consistent]") {
    later_chunk_waits_for_the_earlier("MOLT_TEST_MYSQL_URL", false);
}
TEST_CASE("consistent, PostgreSQL: stopping mid-window leaves a state the source had",
          "[integration][consistent]") {
    later_chunk_waits_for_the_earlier("MOLT_TEST_PG_URL", true);
}
TEST_CASE("consistent, MariaDB: stopping mid-window leaves a state the source had",
          "[integration][consistent]") {
    later_chunk_waits_for_the_earlier("MOLT_TEST_MYSQL_URL", true);
}

TEST_CASE("consistent, PostgreSQL: FK-linked transactions apply atomically, in order",
          "[integration][consistent]") {
    fk_transactions_in_order("MOLT_TEST_PG_URL");
}
TEST_CASE("consistent, MariaDB: FK-linked transactions apply atomically, in order",
          "[integration][consistent]") {
    fk_transactions_in_order("MOLT_TEST_MYSQL_URL");
}
TEST_CASE("consistent, PostgreSQL: a source transaction above --scanSize applies page by page",
          "[integration][consistent]") {
    large_transactions("MOLT_TEST_PG_URL");
}
TEST_CASE("consistent, MariaDB: a source transaction above --scanSize applies page by page",
          "[integration][consistent]") {
    large_transactions("MOLT_TEST_MYSQL_URL");
}
// The in-memory fallback takes its own session: the page-by-page attempt's went back first.
TEST_CASE("consistent, PostgreSQL: a large transaction's fallback with one target session",
          "[integration][consistent]") {
    large_transactions("MOLT_TEST_PG_URL", 1);
}
TEST_CASE("consistent, PostgreSQL: a column missing on the target stalls until it is added",
          "[integration][consistent]") {
    missing_column_until_added("MOLT_TEST_PG_URL");
}
TEST_CASE("consistent, MariaDB: a column missing on the target stalls until it is added",
          "[integration][consistent]") {
    missing_column_until_added("MOLT_TEST_MYSQL_URL");
}
TEST_CASE("consistent, PostgreSQL: fragments across requests, duplicates, late duplicates",
          "[integration][consistent]") {
    fragments_and_duplicates("MOLT_TEST_PG_URL");
}
TEST_CASE("consistent, MariaDB: fragments across requests, duplicates, late duplicates",
          "[integration][consistent]") {
    fragments_and_duplicates("MOLT_TEST_MYSQL_URL");
}
TEST_CASE("consistent, PostgreSQL: scan rows below the resolved timestamp apply, never regress",
          "[integration][consistent]") {
    late_scan_rows("MOLT_TEST_PG_URL");
}
TEST_CASE("consistent, MariaDB: scan rows below the resolved timestamp apply, never regress",
          "[integration][consistent]") {
    late_scan_rows("MOLT_TEST_MYSQL_URL");
}
TEST_CASE("consistent, PostgreSQL: late rows above the checkpoint wait for their window",
          "[integration][consistent]") {
    late_rows_wait_for_their_window();
}
TEST_CASE("consistent, PostgreSQL: late rows without retired history are dropped and counted",
          "[integration][consistent]") {
    late_rows_without_retired_history("MOLT_TEST_PG_URL");
}
TEST_CASE("consistent, MariaDB: late rows without retired history are dropped and counted",
          "[integration][consistent]") {
    late_rows_without_retired_history("MOLT_TEST_MYSQL_URL");
}
TEST_CASE("consistent, PostgreSQL: late rows when staging knows less than the target",
          "[integration][consistent]") {
    late_rows_when_staging_knows_less_than_the_target("MOLT_TEST_PG_URL");
}
TEST_CASE("consistent, MariaDB: late rows when staging knows less than the target",
          "[integration][consistent]") {
    late_rows_when_staging_knows_less_than_the_target("MOLT_TEST_MYSQL_URL");
}
TEST_CASE("consistent, PostgreSQL: duplicate and older resolved timestamps acknowledged, restart",
          "[integration][consistent]") {
    resolved_timestamps("MOLT_TEST_PG_URL");
}
TEST_CASE("consistent, MariaDB: duplicate and older resolved timestamps acknowledged, restart",
          "[integration][consistent]") {
    resolved_timestamps("MOLT_TEST_MYSQL_URL");
}
TEST_CASE("consistent, PostgreSQL: a window retried after a transient fault applies each row once",
          "[integration][consistent]") {
    window_retried_after_a_transient_fault("MOLT_TEST_PG_URL");
}
TEST_CASE("consistent, MariaDB: a window retried after a transient fault applies each row once",
          "[integration][consistent]") {
    window_retried_after_a_transient_fault("MOLT_TEST_MYSQL_URL");
}
TEST_CASE("consistent, PostgreSQL: a lost COMMIT acknowledgement applies the transaction once",
          "[integration][consistent]") {
    lost_commit_acknowledgement();
}
TEST_CASE("consistent, PostgreSQL: a mis-cased URL path applies to the target schema",
          "[integration][consistent]") {
    miscased_url_path("MOLT_TEST_PG_URL");
}
TEST_CASE("consistent, MariaDB: a mis-cased URL path applies to the target schema",
          "[integration][consistent]") {
    miscased_url_path("MOLT_TEST_MYSQL_URL");
}
TEST_CASE("consistent, PostgreSQL: --stagingMaxBacklog never refuses rows not yet resolved",
          "[integration][consistent]") {
    backlog_bound("MOLT_TEST_PG_URL");
}
TEST_CASE("consistent, MariaDB: --stagingMaxBacklog never refuses rows not yet resolved",
          "[integration][consistent]") {
    backlog_bound("MOLT_TEST_MYSQL_URL");
}
TEST_CASE("staging: a layout 1 staging is upgraded when empty, refused while it holds rows",
          "[integration][consistent]") {
    consistent_stack s("MOLT_TEST_PG_URL");
    s.applier.reset();
    auto admin = open_session(s.staging_url).value();
    const std::string schema = s.staging_schema;
    REQUIRE(admin->execute("UPDATE " + schema + ".molt_layout SET version = 1", {}));
    REQUIRE(admin->execute("CREATE TABLE " + schema + ".molt_stage_sales_order_items (nanos INT8)",
                           {}));
    REQUIRE(
        admin->execute("INSERT INTO " + schema + ".molt_stage_sales_order_items VALUES (1)", {}));
    staging_store held(s.staging_pool, s.where, std::chrono::seconds(30));
    auto refused = held.prepare();
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error().message(), Catch::Contains("layout version 1"));
    CHECK_THAT(refused.error().message(), Catch::Contains("molt_stage_sales_order_items"));
    auto version = admin->query("SELECT version FROM " + schema + ".molt_layout", {});
    REQUIRE(version);
    CHECK(version->front()[0] == "1");

    REQUIRE(admin->execute("DELETE FROM " + schema + ".molt_stage_sales_order_items", {}));
    staging_store empty(s.staging_pool, s.where, std::chrono::seconds(30));
    REQUIRE(empty.prepare());
    version = admin->query("SELECT version FROM " + schema + ".molt_layout", {});
    REQUIRE(version);
    CHECK(version->front()[0] == "2");
    auto left =
        admin->query("SELECT count(*) FROM information_schema.tables WHERE table_schema = '" +
                         schema + "' AND table_name LIKE 'molt\\_stage\\_%'",
                     {});
    REQUIRE(left);
    CHECK(left->front()[0] == "0");
    s.start();
}

TEST_CASE("consistent, PostgreSQL: a backlog left by an earlier process is applied in windows",
          "[integration][consistent]") {
    backlog_in_windows_after_restart("MOLT_TEST_PG_URL");
}

TEST_CASE("consistent, MariaDB: a backlog left by an earlier process is applied in windows",
          "[integration][consistent]") {
    backlog_in_windows_after_restart("MOLT_TEST_MYSQL_URL");
}

TEST_CASE("consistent, PostgreSQL: counting a restart's backlog never blocks ingest",
          "[integration][consistent]") {
    backlog_count_never_blocks_ingest("MOLT_TEST_PG_URL");
}

TEST_CASE("consistent, MariaDB: counting a restart's backlog never blocks ingest",
          "[integration][consistent]") {
    backlog_count_never_blocks_ingest("MOLT_TEST_MYSQL_URL");
}
