// Rows the target refuses (issue 13, point 8; replicator/README.md, "Rows the target refuses"):
// a source row that breaks a CHECK constraint of the target, on PostgreSQL and MariaDB, in both
// modes, under --fatalRowPolicy stall (the default: nothing of its transaction is applied, the
// checkpoint does not move, apply_stalled says so, and a fix by hand lets it go on) and dlq (the
// row goes to the dead-letter queue in the same target transaction as the others and the
// checkpoint). And the DLQ table's check: missing or wrong, the error names it and prints the
// CREATE TABLE to run; the printed DDL passes the check.
#include "molt/replicator/target/fatal_rows.hpp"

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

constexpr int64_t base_wall = 1'700'000'000'000'000'000;

hlc at(int64_t wall) {
    return hlc(base_wall + wall, 0);
}

row item(int64_t id, int64_t qty, int64_t wall) {
    return {"it_dlq_items", key({num(id)}),
            obj({{"id", num(id)}, {"qty", num(qty)}, {"note", str("n" + std::to_string(id))}}),
            wall};
}

// The second row breaks the CHECK constraint; it comes with its row before (WITH diff).
std::vector<row> batch_with_bad_row() {
    row bad = item(2, -1, 10);
    bad.before = obj({{"id", num(2)}, {"qty", num(4)}, {"note", str("n2")}});
    return {item(1, 5, 10), bad, item(3, 7, 10)};
}

fatal_row_options policy(fatal_row_policy p) {
    fatal_row_options o;
    o.policy = p;
    return o;
}

std::string dlq_table(apply_stack& t) {
    return t.schema.parts.back() + ".replicator_dlq";
}

void create_tables(apply_stack& t, bool with_dlq) {
    t.sql(
        "DROP TABLE IF EXISTS it_dlq_items; DROP TABLE IF EXISTS replicator_dlq; DROP TABLE IF "
        "EXISTS _replicator_progress");
    t.sql(
        "CREATE TABLE it_dlq_items (id BIGINT PRIMARY KEY, qty BIGINT NOT NULL, note "
        "VARCHAR(20), CONSTRAINT it_dlq_qty_ok CHECK (qty >= 0))");
    if (with_dlq) {
        t.sql(t.dialect->dlq_ddl(t.schema, "replicator_dlq"));
    }
    t.schemas.invalidate(t.schema);
}

std::vector<std::string> items(apply_stack& t) {
    auto rows = t.admin->query("SELECT id, qty FROM it_dlq_items ORDER BY id", {});
    REQUIRE(rows);
    std::vector<std::string> out;
    for (const auto& r : *rows) {
        out.push_back(r.at(0).value_or("NULL") + ":" + r.at(1).value_or("NULL"));
    }
    return out;
}

// The DLQ holds exactly the bad row, as the brief says.
void check_dead_letter(apply_stack& t) {
    auto rows = t.admin->query(
        "SELECT dlq_name, source_nanos, source_logical, data_after, data_before FROM "
        "replicator_dlq",
        {});
    REQUIRE(rows);
    REQUIRE(rows->size() == 1);
    const auto& r = rows->front();
    CHECK(r.at(0).value_or("") == t.schema.parts.back() + ".it_dlq_items");
    CHECK(r.at(1).value_or("") == std::to_string(base_wall + 10));
    CHECK(r.at(2).value_or("") == "0");
    auto after = json::parse(r.at(3).value_or(""));
    REQUIRE(after);
    REQUIRE(after->find("qty") != nullptr);
    CHECK(after->find("qty")->text() == "-1");
    CHECK(after->find("id")->text() == "2");
    // Kept through staging in consistent mode.
    auto before = json::parse(r.at(4).value_or(""));
    REQUIRE(before);
    REQUIRE(before->find("qty") != nullptr);
    CHECK(before->find("qty")->text() == "4");
}

uint64_t dead_letters_counted(molt::metrics::registry& m, apply_stack& t) {
    return m.counter("dlq_rows_total", "", {"schema", "table"})
        .with({t.schema.to_string(), "it_dlq_items"})
        .value();
}

double stalled(molt::metrics::registry& m, apply_stack& t) {
    return m.gauge("apply_stalled", "", {"schema"}).with({t.schema.to_string()}).value();
}

// Waits (up to 30 s) until apply_stalled{schema} is `want`; the value it ends with.
double stalled_reaches(molt::metrics::registry& m, apply_stack& t, double want) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    double now = stalled(m, t);
    while (now != want && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        now = stalled(m, t);
    }
    return now;
}

// The immediate applier with a policy, on apply_stack's pool and schema cache.
struct immediate_target {
    immediate_target(const std::string& env, fatal_row_policy p)
        : target(env), applier(*target.dialect, target.pool, target.schemas, metrics, options(p)) {}
    static apply_options options(fatal_row_policy p) {
        apply_options o;
        o.fatal = policy(p);
        return o;
    }
    molt::result<accept_stats> post(const std::vector<row>& rows) {
        auto decoded = molt::proto::decode_webhook(body(rows));
        REQUIRE(decoded);
        return applier.accept_rows(target.schema, decoded->rows);
    }

    apply_stack target;
    molt::metrics::registry metrics;
    immediate_applier applier;
};

// A consistent applier with a policy, staging on the throwaway PostgreSQL.
struct consistent_target {
    consistent_target(const std::string& env, fatal_row_policy p)
        : target(env),
          staging_url(molt::conn_url::parse(molt::test::server_url("MOLT_TEST_PG_URL")).value()),
          staging_pool([this] { return open_session(staging_url); }, 8, "staging",
                       "--stagingMaxPoolSize") {
        const bool pg = target.url.dialect() == molt::dialect::postgres;
        where.schema = "it_dlq_" + std::to_string(getpid()) + (pg ? "_pg" : "_my");
        auto admin = open_session(staging_url).value();
        REQUIRE(admin->execute("DROP SCHEMA IF EXISTS " + where.schema + " CASCADE", {}));
        staging = std::make_unique<staging_store>(staging_pool, where, std::chrono::seconds(30));
        REQUIRE(staging->prepare());
        options.first_backoff = std::chrono::milliseconds(10);
        options.max_backoff = std::chrono::milliseconds(100);
        options.fatal = policy(p);
    }
    void start() {
        applier = std::make_unique<consistent_applier>(*target.dialect, target.pool, target.schemas,
                                                       *staging, metrics, options);
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
    consistent_options options;
    std::unique_ptr<consistent_applier> applier;
};

void immediate_stall(const std::string& env) {
    immediate_target s(env, fatal_row_policy::stall);
    create_tables(s.target, true);
    auto done = s.post(batch_with_bad_row());
    REQUIRE_FALSE(done);
    // Refused (400: the changefeed retries), naming the table, the key and the remedy.
    CHECK(done.error().code() == molt::errc::invalid_argument);
    CHECK_THAT(done.error().message(), Catch::Contains("it_dlq_items"));
    CHECK_THAT(done.error().message(), Catch::Contains("[2]"));
    CHECK(items(s.target).empty());
    CHECK(s.target.column("SELECT dlq_name FROM replicator_dlq").empty());
    CHECK(dead_letters_counted(s.metrics, s.target) == 0);
}

void immediate_dlq(const std::string& env) {
    immediate_target s(env, fatal_row_policy::dlq);
    create_tables(s.target, true);
    auto done = s.post(batch_with_bad_row());
    REQUIRE(done);
    CHECK(items(s.target) == std::vector<std::string>{"1:5", "3:7"});
    check_dead_letter(s.target);
    CHECK(dead_letters_counted(s.metrics, s.target) == 1);
}

void immediate_dlq_missing(const std::string& env) {
    immediate_target s(env, fatal_row_policy::dlq);
    create_tables(s.target, false);
    // Not applied (503: the changefeed retries) until the table exists; the error says how.
    auto done = s.post({item(1, 5, 10)});
    REQUIRE_FALSE(done);
    CHECK(done.error().code() == molt::errc::unavailable);
    CHECK_THAT(done.error().message(), Catch::Contains(dlq_table(s.target)));
    CHECK_THAT(done.error().message(), Catch::Contains("CREATE TABLE"));
    CHECK(items(s.target).empty());
    s.target.sql(s.target.dialect->dlq_ddl(s.target.schema, "replicator_dlq"));
    s.target.schemas.invalidate(s.target.schema);
    REQUIRE(s.post({item(1, 5, 10)}));
    CHECK(items(s.target) == std::vector<std::string>{"1:5"});
}

void consistent_stall(const std::string& env) {
    consistent_target s(env, fatal_row_policy::stall);
    create_tables(s.target, false);
    s.start();
    s.post(batch_with_bad_row());
    s.resolve(11);
    CHECK(stalled_reaches(s.metrics, s.target, 1) == 1);
    CHECK_FALSE(s.committed_within(11, std::chrono::milliseconds(500)));
    CHECK(items(s.target).empty());
    // Fixed by hand (the constraint dropped), it goes on and is no longer stalled.
    s.target.sql("ALTER TABLE it_dlq_items DROP CONSTRAINT it_dlq_qty_ok");
    s.target.schemas.invalidate(s.target.schema);
    REQUIRE(s.committed_within(11, std::chrono::seconds(30)));
    CHECK(items(s.target) == std::vector<std::string>{"1:5", "2:-1", "3:7"});
    CHECK(stalled(s.metrics, s.target) == 0);
}

void consistent_dlq(const std::string& env) {
    consistent_target s(env, fatal_row_policy::dlq);
    create_tables(s.target, true);
    s.start();
    s.post(batch_with_bad_row());
    s.post({item(4, 1, 20)});
    s.resolve(21);
    REQUIRE(s.committed_within(21, std::chrono::seconds(30)));
    CHECK(items(s.target) == std::vector<std::string>{"1:5", "3:7", "4:1"});
    check_dead_letter(s.target);
    CHECK(dead_letters_counted(s.metrics, s.target) == 1);
    CHECK(stalled(s.metrics, s.target) == 0);
}

void consistent_dlq_missing(const std::string& env) {
    consistent_target s(env, fatal_row_policy::dlq);
    create_tables(s.target, false);
    s.start();
    s.post({item(1, 5, 10)});
    s.resolve(11);
    // The schema waits for its DLQ table (logged with the CREATE TABLE), then goes on.
    CHECK(stalled_reaches(s.metrics, s.target, 1) == 1);
    CHECK_FALSE(s.committed_within(11, std::chrono::milliseconds(500)));
    s.target.sql(s.target.dialect->dlq_ddl(s.target.schema, "replicator_dlq"));
    s.target.schemas.invalidate(s.target.schema);
    REQUIRE(s.committed_within(11, std::chrono::seconds(30)));
    CHECK(items(s.target) == std::vector<std::string>{"1:5"});
}

void dlq_table_check(const std::string& env) {
    apply_stack t(env);
    create_tables(t, false);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    auto snapshot = t.schemas.get(t.schema, deadline);
    REQUIRE(snapshot);
    auto missing = check_dlq_table(**snapshot, *t.dialect, "replicator_dlq");
    REQUIRE_FALSE(missing);
    CHECK_THAT(missing.error().message(), Catch::Contains(dlq_table(t)));
    CHECK_THAT(missing.error().message(), Catch::Contains("does not exist"));
    CHECK_THAT(missing.error().message(),
               Catch::Contains(t.dialect->dlq_ddl(t.schema, "replicator_dlq")));
    CHECK_THAT(missing.error().message(), Catch::Contains("CREATE TABLE"));

    // A table with that name but not the columns.
    t.sql(
        "CREATE TABLE replicator_dlq (id BIGINT PRIMARY KEY, dlq_name VARCHAR(256), data_after "
        "BIGINT)");
    t.schemas.invalidate(t.schema);
    snapshot = t.schemas.get(t.schema, deadline);
    REQUIRE(snapshot);
    auto wrong = check_dlq_table(**snapshot, *t.dialect, "replicator_dlq");
    REQUIRE_FALSE(wrong);
    CHECK_THAT(wrong.error().message(), Catch::Contains(dlq_table(t)));
    CHECK_THAT(wrong.error().message(), Catch::Contains("source_nanos"));
    CHECK_THAT(wrong.error().message(), Catch::Contains("data_after"));
    CHECK_THAT(wrong.error().message(), Catch::Contains("CREATE TABLE"));

    // The DDL the error prints passes the check.
    t.sql("DROP TABLE replicator_dlq");
    t.sql(t.dialect->dlq_ddl(t.schema, "replicator_dlq"));
    t.schemas.invalidate(t.schema);
    snapshot = t.schemas.get(t.schema, deadline);
    REQUIRE(snapshot);
    CHECK(check_dlq_table(**snapshot, *t.dialect, "replicator_dlq"));
}

}  // namespace

TEST_CASE("PostgreSQL: the DLQ table's check names it and prints its CREATE TABLE", "[dlq]") {
    dlq_table_check("MOLT_TEST_PG_URL");
}
TEST_CASE("MariaDB: the DLQ table's check names it and prints its CREATE TABLE", "[dlq]") {
    dlq_table_check("MOLT_TEST_MYSQL_URL");
}
TEST_CASE("immediate, PostgreSQL: a refused row stalls its request by default", "[dlq]") {
    immediate_stall("MOLT_TEST_PG_URL");
}
TEST_CASE("immediate, MariaDB: a refused row stalls its request by default", "[dlq]") {
    immediate_stall("MOLT_TEST_MYSQL_URL");
}
TEST_CASE("immediate, PostgreSQL: --fatalRowPolicy dlq diverts a refused row", "[dlq]") {
    immediate_dlq("MOLT_TEST_PG_URL");
}
TEST_CASE("immediate, MariaDB: --fatalRowPolicy dlq diverts a refused row", "[dlq]") {
    immediate_dlq("MOLT_TEST_MYSQL_URL");
}
TEST_CASE("immediate, PostgreSQL: --fatalRowPolicy dlq without its table refuses requests",
          "[dlq]") {
    immediate_dlq_missing("MOLT_TEST_PG_URL");
}
TEST_CASE("immediate, MariaDB: --fatalRowPolicy dlq without its table refuses requests", "[dlq]") {
    immediate_dlq_missing("MOLT_TEST_MYSQL_URL");
}
TEST_CASE("consistent, PostgreSQL: a refused row stalls its schema by default", "[dlq]") {
    consistent_stall("MOLT_TEST_PG_URL");
}
TEST_CASE("consistent, MariaDB: a refused row stalls its schema by default", "[dlq]") {
    consistent_stall("MOLT_TEST_MYSQL_URL");
}
TEST_CASE("consistent, PostgreSQL: --fatalRowPolicy dlq diverts a refused row", "[dlq]") {
    consistent_dlq("MOLT_TEST_PG_URL");
}
TEST_CASE("consistent, MariaDB: --fatalRowPolicy dlq diverts a refused row", "[dlq]") {
    consistent_dlq("MOLT_TEST_MYSQL_URL");
}
TEST_CASE("consistent, PostgreSQL: --fatalRowPolicy dlq without its table stalls", "[dlq]") {
    consistent_dlq_missing("MOLT_TEST_PG_URL");
}
TEST_CASE("consistent, MariaDB: --fatalRowPolicy dlq without its table stalls", "[dlq]") {
    consistent_dlq_missing("MOLT_TEST_MYSQL_URL");
}
