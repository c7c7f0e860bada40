// Unique secondary keys (issue 13, point 2; replicator/README.md, "Unique keys"): values that
// move between rows — delete then insert, a move inside one source transaction whose rows come
// in an order that collides, a swap, the same folded from several source transactions into one
// target transaction — on PostgreSQL and MariaDB, in both modes. And the swap the replicator
// refuses to resolve (the table is referenced by a foreign key): it stalls loudly, without
// writing anything, until the conflict is removed.
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

// `tags`: the rows carry a PostgreSQL array column too, so their upserts bind a parameter per
// value while deletes by key bind one array per column (postgres.hpp).
json user(int64_t id, const std::string& email, bool tags = false) {
    json u = obj({{"id", num(id)}, {"email", str(email)}, {"note", str("n" + std::to_string(id))}});
    if (tags) {
        u.set("tags", json::array({str("t" + std::to_string(id))}));
    }
    return u;
}
row upsert(int64_t id, const std::string& email, int64_t wall, bool tags = false) {
    return {"it_users", key({num(id)}), user(id, email, tags), wall};
}
row erase(int64_t id, int64_t wall) {
    return {"it_users", key({num(id)}), json::null(), wall};
}

void create_tables(apply_stack& t, bool referenced, bool tags = false) {
    const bool pg = t.url.dialect() == molt::dialect::postgres;
    const std::string text = pg ? "TEXT" : "VARCHAR(100)";
    t.sql(
        "DROP TABLE IF EXISTS it_comments; DROP TABLE IF EXISTS it_notes; DROP TABLE IF EXISTS "
        "it_orders; DROP TABLE IF EXISTS it_users; DROP TABLE IF EXISTS _replicator_progress");
    t.sql("CREATE TABLE it_users (id BIGINT PRIMARY KEY, email " + text +
          " NOT NULL UNIQUE, note " + text + (tags ? ", tags TEXT[]" : "") + ")");
    if (referenced) {
        t.sql(
            "CREATE TABLE it_orders (id BIGINT PRIMARY KEY, user_id BIGINT REFERENCES "
            "it_users (id))");
    }
}

std::vector<std::string> users(apply_stack& t) {
    auto rows = t.admin->query("SELECT id, email, note FROM it_users ORDER BY id", {});
    REQUIRE(rows);
    std::vector<std::string> out;
    for (const auto& r : *rows) {
        out.push_back(r.at(0).value_or("NULL") + ":" + r.at(1).value_or("NULL") + ":" +
                      r.at(2).value_or("NULL"));
    }
    return out;
}

// The source's history, one step per source transaction (HLC = step * 10), and the states the
// source had after each.
struct step {
    std::vector<row> rows;
    std::vector<std::string> state;
};
std::vector<step> history(bool tags = false) {
    return {
        {{upsert(1, "a", 10, tags), upsert(2, "b", 10, tags), upsert(3, "c", 10, tags)},
         {"1:a:n1", "2:b:n2", "3:c:n3"}},
        // A value leaves one row and goes to a new one: delete then insert.
        {{erase(1, 20), upsert(4, "a", 20, tags)}, {"2:b:n2", "3:c:n3", "4:a:n4"}},
        // Row 2 gives b up for z while new row 5 takes b; the payload puts row 5 first.
        {{upsert(5, "b", 30, tags), upsert(2, "z", 30, tags)},
         {"2:z:n2", "3:c:n3", "4:a:n4", "5:b:n5"}},
        // A swap: 3 and 4 exchange their values.
        {{upsert(3, "a", 40, tags), upsert(4, "c", 40, tags)},
         {"2:z:n2", "3:a:n3", "4:c:n4", "5:b:n5"}},
        // Two source transactions that fold into one target transaction in the consistent mode:
        // 5 goes, then 6 takes its value.
        {{erase(5, 50)}, {"2:z:n2", "3:a:n3", "4:c:n4"}},
        {{upsert(6, "b", 60, tags)}, {"2:z:n2", "3:a:n3", "4:c:n4", "6:b:n6"}},
    };
}

void immediate_unique_values(const std::string& env, bool tags = false) {
    apply_stack t(env);
    create_tables(t, false, tags);
    for (const step& s : history(tags)) {
        auto done = t.post(body(s.rows));
        REQUIRE(done);
        CHECK(users(t) == s.state);
    }
    // Every step in one request.
    create_tables(t, false, tags);
    std::vector<row> all;
    for (const step& s : history(tags)) {
        all.insert(all.end(), s.rows.begin(), s.rows.end());
    }
    REQUIRE(t.post(body(all)));
    CHECK(users(t) == history().back().state);
}

// A consistent applier with staging on the throwaway PostgreSQL.
struct consistent_target {
    explicit consistent_target(const std::string& env)
        : target(env),
          staging_url(molt::conn_url::parse(molt::test::server_url("MOLT_TEST_PG_URL")).value()),
          staging_pool([this] { return open_session(staging_url); }, 8, "staging",
                       "--stagingMaxPoolSize") {
        const bool pg = target.url.dialect() == molt::dialect::postgres;
        where.schema = "it_unique_" + std::to_string(getpid()) + (pg ? "_pg" : "_my");
        auto admin = open_session(staging_url).value();
        REQUIRE(admin->execute("DROP SCHEMA IF EXISTS " + where.schema + " CASCADE", {}));
        staging = std::make_unique<staging_store>(staging_pool, where, std::chrono::seconds(30));
        REQUIRE(staging->prepare());
        consistent_options o;
        o.first_backoff = std::chrono::milliseconds(10);
        o.max_backoff = std::chrono::milliseconds(100);
        applier = std::make_unique<consistent_applier>(*target.dialect, target.pool, target.schemas,
                                                       *staging, metrics, o);
        REQUIRE(applier->start());
    }
    ~consistent_target() {
        applier.reset();
        if (auto admin = open_session(staging_url)) {
            (void)(*admin)->execute("DROP SCHEMA IF EXISTS " + where.schema + " CASCADE", {});
        }
    }
    void post(const std::vector<row>& rows) {
        auto decoded = molt::proto::decode_webhook(body(rows));
        REQUIRE(decoded);
        REQUIRE(applier->accept_rows(target.schema, decoded->rows));
    }
    bool committed_within(int64_t wall, std::chrono::milliseconds limit) {
        const auto give_up = std::chrono::steady_clock::now() + limit;
        while (applier->committed(target.schema) < at(wall)) {
            if (std::chrono::steady_clock::now() > give_up) {
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return true;
    }
    void resolve(int64_t wall) { REQUIRE(applier->accept_resolved(target.schema, at(wall))); }

    apply_stack target;
    molt::conn_url staging_url;
    session_pool staging_pool;
    staging_location where;
    std::unique_ptr<staging_store> staging;
    molt::metrics::registry metrics;
    std::unique_ptr<consistent_applier> applier;
};

void consistent_unique_values(const std::string& env, bool tags = false) {
    consistent_target s(env);
    create_tables(s.target, false, tags);
    const auto steps = history(tags);
    // One window per source transaction for the first four, then one window for the last two.
    for (size_t i = 0; i < steps.size(); ++i) {
        s.post(steps[i].rows);
        const int64_t wall = static_cast<int64_t>(i + 1) * 10;
        if (i == 4) {
            continue;
        }
        s.resolve(wall + 1);
        REQUIRE(s.committed_within(wall + 1, std::chrono::seconds(30)));
        CHECK(users(s.target) == steps[i].state);
    }
}

uint64_t reordered(consistent_target& s, const std::string& order) {
    return s.metrics.counter("apply_reordered_total", "", {"schema", "order"})
        .with({s.target.schema.to_string(), order})
        .value();
}

// The common case, written in one more attempt of the folded plan: a value freed by a delete in
// one source transaction, taken by a new row in a later one of the same window; the folded plan
// upserts first (for a child moved off a parent the window deletes), so the first attempt
// collides on PostgreSQL. Then its deletes first: no savepoint per source transaction. (MySQL's
// upsert makes the row holding the value the new row, in the first attempt: README.)
void consistent_freed_value_deletes_first(const std::string& env, uint64_t deletes_first) {
    consistent_target s(env);
    create_tables(s.target, false);
    s.post({upsert(1, "a", 10), upsert(2, "b", 10)});
    s.resolve(11);
    REQUIRE(s.committed_within(11, std::chrono::seconds(30)));
    s.post({erase(1, 20), upsert(3, "c", 20)});
    s.post({upsert(4, "a", 30), upsert(2, "b2", 30)});
    s.post({erase(3, 40)});
    s.post({upsert(5, "c", 50)});
    s.resolve(51);
    REQUIRE(s.committed_within(51, std::chrono::seconds(30)));
    CHECK(users(s.target) == std::vector<std::string>{"2:b2:n2", "4:a:n4", "5:c:n5"});
    CHECK(reordered(s, "deletes_first") == deletes_first);
    CHECK(reordered(s, "source_order") == 0);
}

row note(int64_t author, int64_t wall) {
    return {"it_notes", key({num(10)}),
            obj({{"id", num(10)}, {"author_id", num(author)}, {"body", str("note")}}), wall};
}
// Users, their notes and the notes' comments, both foreign keys ON DELETE CASCADE; returns
// users 1 and 2, note 10 by user 1 and comment 100 on it, at `wall`.
std::vector<row> create_cascade_tables(apply_stack& t, int64_t wall) {
    create_tables(t, false);
    const std::string text = t.url.dialect() == molt::dialect::postgres ? "TEXT" : "VARCHAR(100)";
    t.sql(
        "CREATE TABLE it_notes (id BIGINT PRIMARY KEY, author_id BIGINT NOT NULL REFERENCES "
        "it_users (id) ON DELETE CASCADE, body " +
        text + ")");
    t.sql(
        "CREATE TABLE it_comments (id BIGINT PRIMARY KEY, note_id BIGINT NOT NULL REFERENCES "
        "it_notes (id) ON DELETE CASCADE, body " +
        text + ")");
    return {upsert(1, "a", wall),
            upsert(2, "b", wall),
            note(1, wall),
            {"it_comments", key({num(100)}),
             obj({{"id", num(100)}, {"note_id", num(10)}, {"body", str("comment")}}), wall}};
}
// Note 10's author, and how many comments are left: "author:comments".
std::string note_and_comments(apply_stack& t) {
    const std::string as_text = t.url.dialect() == molt::dialect::postgres ? "TEXT" : "CHAR";
    return t.one("SELECT CAST(author_id AS " + as_text + ") FROM it_notes WHERE id = 10")
               .value_or("none") +
           ":" + t.one("SELECT CAST(COUNT(*) AS " + as_text + ") FROM it_comments").value_or("?");
}

// A note moves from user 1 to user 2, user 1 goes, and user 3 takes its email, in one window;
// the note has a comment, and both foreign keys cascade on delete. Upserts first collides on the
// email (PostgreSQL) or on the note (MySQL's upsert would make user 1 the new user 3); deletes
// first would delete user 1 while the note still points at it, and the cascade would take the
// note and its comment (the note's upsert puts the note back, not the comment). So the window
// is written source transaction by source transaction, and the comment stays.
void consistent_cascade_keeps_moved_children(const std::string& env) {
    consistent_target s(env);
    apply_stack& t = s.target;
    s.post(create_cascade_tables(t, 10));
    s.resolve(11);
    REQUIRE(s.committed_within(11, std::chrono::seconds(30)));
    s.post({note(2, 20)});
    s.post({erase(1, 30)});
    s.post({upsert(3, "a", 40)});
    s.resolve(41);
    REQUIRE(s.committed_within(41, std::chrono::seconds(30)));
    CHECK(users(t) == std::vector<std::string>{"2:b:n2", "3:a:n3"});
    CHECK(note_and_comments(t) == "2:1");
    CHECK(reordered(s, "deletes_first") == 0);
    CHECK(reordered(s, "transactions") == 1);
    t.sql("DROP TABLE it_comments; DROP TABLE it_notes");
}

// Immediate mode, one request: note 10 moves to user 2, then user 1 goes. Deletes first would
// delete user 1 while the note still points at it, and the cascade would take the comment.
void immediate_cascade_keeps_moved_children(const std::string& env) {
    apply_stack t(env);
    REQUIRE(t.post(body(create_cascade_tables(t, 10))));
    REQUIRE(t.post(body({note(2, 20), erase(1, 30)})));
    CHECK(users(t) == std::vector<std::string>{"2:b:n2"});
    CHECK(note_and_comments(t) == "2:1");
    t.sql("DROP TABLE it_comments; DROP TABLE it_notes");
}

void consistent_swap_on_referenced_table_stalls(const std::string& env) {
    consistent_target s(env);
    create_tables(s.target, true);
    s.post({upsert(1, "a", 10), upsert(2, "b", 10)});
    s.resolve(11);
    REQUIRE(s.committed_within(11, std::chrono::seconds(30)));
    s.post({upsert(1, "b", 20), upsert(2, "a", 20)});
    s.resolve(21);
    // It does not apply, and says why, again and again.
    CHECK_FALSE(s.committed_within(21, std::chrono::milliseconds(1500)));
    CHECK(users(s.target) == std::vector<std::string>{"1:a:n1", "2:b:n2"});
    const uint64_t errors = s.metrics.counter("apply_errors_total", "", {"schema", "reason"})
                                .with({s.target.schema.to_string(), "fatal"})
                                .value();
    CHECK(errors >= 2);
    // Resolved by hand (here: the foreign key dropped), it goes on.
    s.target.sql("DROP TABLE it_orders");
    s.target.schemas.invalidate(s.target.schema);
    REQUIRE(s.committed_within(21, std::chrono::seconds(30)));
    CHECK(users(s.target) == std::vector<std::string>{"1:b:n1", "2:a:n2"});
}

}  // namespace

TEST_CASE("immediate, PostgreSQL: unique values move between rows, swap, delete and reinsert",
          "[unique]") {
    immediate_unique_values("MOLT_TEST_PG_URL");
}
// A swap is broken by deleting the rows and inserting them again: the delete binds by column
// while the upserts, writing an array column, bind per value.
TEST_CASE("immediate, PostgreSQL: a swap on a table with an array column", "[unique]") {
    immediate_unique_values("MOLT_TEST_PG_URL", true);
}
TEST_CASE("consistent, PostgreSQL: a swap on a table with an array column", "[unique]") {
    consistent_unique_values("MOLT_TEST_PG_URL", true);
}
TEST_CASE("immediate, MariaDB: unique values move between rows, swap, delete and reinsert",
          "[unique]") {
    immediate_unique_values("MOLT_TEST_MYSQL_URL");
}
TEST_CASE("consistent, PostgreSQL: unique values move between rows, swap, delete and reinsert",
          "[unique]") {
    consistent_unique_values("MOLT_TEST_PG_URL");
}
TEST_CASE("consistent, MariaDB: unique values move between rows, swap, delete and reinsert",
          "[unique]") {
    consistent_unique_values("MOLT_TEST_MYSQL_URL");
}
TEST_CASE(
    "consistent, PostgreSQL: a value a delete frees is taken in the same window, deletes first",
    "[unique]") {
    consistent_freed_value_deletes_first("MOLT_TEST_PG_URL", 1);
}

TEST_CASE("consistent, MariaDB: a value a delete frees is taken in the same window, deletes first",
          "[unique]") {
    consistent_freed_value_deletes_first("MOLT_TEST_MYSQL_URL", 0);
}

TEST_CASE("consistent, PostgreSQL: a cascading delete never takes a child moved to another parent",
          "[unique]") {
    consistent_cascade_keeps_moved_children("MOLT_TEST_PG_URL");
}

TEST_CASE("consistent, MariaDB: a cascading delete never takes a child moved to another parent",
          "[unique]") {
    consistent_cascade_keeps_moved_children("MOLT_TEST_MYSQL_URL");
}

TEST_CASE("immediate, PostgreSQL: a cascading delete never takes a child moved to another parent",
          "[unique]") {
    immediate_cascade_keeps_moved_children("MOLT_TEST_PG_URL");
}

TEST_CASE("immediate, MariaDB: a cascading delete never takes a child moved to another parent",
          "[unique]") {
    immediate_cascade_keeps_moved_children("MOLT_TEST_MYSQL_URL");
}

TEST_CASE("consistent, PostgreSQL: a swap on a table other tables reference stalls loudly",
          "[unique]") {
    consistent_swap_on_referenced_table_stalls("MOLT_TEST_PG_URL");
}
TEST_CASE("consistent, MariaDB: a swap on a table other tables reference stalls loudly",
          "[unique]") {
    consistent_swap_on_referenced_table_stalls("MOLT_TEST_MYSQL_URL");
}
