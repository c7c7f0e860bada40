// Waits on a target that does not answer are bounded by the caller's own deadline: a
// black-holed or slow target (molt::test::fault_proxy in front of the real servers) never holds
// a request past its deadline, and never commits after it.
#include <algorithm>
#include <atomic>
#include <regex>
#include <thread>

#include "molt/common/log.hpp"
#include "molt/test/fault_proxy.hpp"
#include "molt/test/json_builders.hpp"

#include "apply_support.hpp"

using namespace molt::replicator;
using namespace molt::replicator::testing;
using clock_type = std::chrono::steady_clock;

namespace {

// The URL of `env`'s server with host and port replaced by the proxy's.
molt::conn_url through(const molt::conn_url& url, const molt::test::fault_proxy& proxy,
                       const std::string& env) {
    const std::string text = molt::test::server_url(env.c_str());
    const std::string host_port = url.host() + ":" + std::to_string(url.port_or_default());
    const size_t at = text.find(host_port);
    REQUIRE(at != std::string::npos);
    std::string via = text;
    via.replace(at, host_port.size(), "127.0.0.1:" + std::to_string(proxy.port()));
    return molt::conn_url::parse(via).value();
}

}  // namespace

TEST_CASE("schema cache: a reader waits for another's introspection only until its deadline",
          "[integration][bounded]") {
    const std::string env = "MOLT_TEST_PG_URL";
    const auto url = molt::conn_url::parse(molt::test::server_url(env.c_str())).value();
    molt::test::fault_proxy proxy(url.host(), url.port_or_default());
    const molt::conn_url via = through(url, proxy, env);
    auto dialect = postgres::make_dialect();
    // Connecting through the black hole takes the connect timeout (at least 2 s).
    session_pool pool([&] { return postgres::connect(via, std::chrono::seconds(2)); }, 4);
    schema_cache schemas(*dialect, pool, std::chrono::seconds(60));
    molt::qualified_name schema;
    schema.parts = {url.database(), "public"};

    proxy.blackhole();
    std::atomic<bool> first_done{false};
    std::thread first([&] {
        auto r = schemas.get(schema, clock_type::now() + std::chrono::seconds(20));
        CHECK_FALSE(r);
        first_done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the first one is connecting
    REQUIRE_FALSE(first_done.load());
    auto second = schemas.get(schema, clock_type::now() + std::chrono::milliseconds(300));
    // The second returned at its own deadline, while the first still waits on the target.
    const bool first_still_waiting = !first_done.load();
    first.join();
    REQUIRE_FALSE(second);
    CHECK(second.error().code() == molt::errc::timeout);
    CHECK(first_still_waiting);

    // Healed: the next reader loads the schema.
    proxy.pass();
    auto healed = schemas.get(schema, clock_type::now() + std::chrono::seconds(20));
    INFO((healed ? std::string() : healed.error().message()));
    CHECK(healed);
}

namespace {

// An immediate applier whose target sessions go through a fault proxy, with table it_bounded.
struct slow_target {
    explicit slow_target(std::chrono::nanoseconds apply_timeout, size_t rows_per_statement = 0)
        : direct(molt::conn_url::parse(molt::test::server_url("MOLT_TEST_PG_URL")).value()),
          proxy(direct.host(), direct.port_or_default()),
          via(through(direct, proxy, "MOLT_TEST_PG_URL")),
          dialect(postgres::make_dialect()),
          pool([this] { return postgres::connect(via, std::chrono::seconds(30)); }, 1),
          schemas(*dialect, pool, std::chrono::seconds(60)),
          applier(*dialect, pool, schemas, metrics,
                  [&] {
                      apply_options o;
                      o.apply_timeout = apply_timeout;
                      if (rows_per_statement > 0) {
                          o.rows_per_statement = rows_per_statement;
                      }
                      return o;
                  }()),
          admin(open_session(direct).value()) {
        schema.parts = {direct.database(), "public"};
        REQUIRE(admin->execute("DROP TABLE IF EXISTS it_bounded", {}));
        REQUIRE(admin->execute("CREATE TABLE it_bounded (id BIGINT PRIMARY KEY, v TEXT)", {}));
        // The pool's one session is opened (and the schema read) before any fault.
        REQUIRE(schemas.get(schema, clock_type::now() + std::chrono::seconds(20)));
    }
    ~slow_target() { (void)admin->execute("DROP TABLE IF EXISTS it_bounded", {}); }

    molt::result<accept_stats> post(int64_t id, const request_context& context, int64_t rows = 1) {
        std::vector<row> items;
        for (int64_t i = id; i < id + rows; ++i) {
            items.push_back(
                {"it_bounded", molt::test::key({molt::test::num(i)}),
                 molt::test::obj({{"id", molt::test::num(i)}, {"v", molt::test::str("late")}}),
                 10});
        }
        auto decoded = molt::proto::decode_webhook(body(items));
        REQUIRE(decoded);
        return applier.accept_rows(schema, decoded->rows, context);
    }
    std::string rows() {
        auto r = admin->query("SELECT count(*) FROM it_bounded", {});
        REQUIRE(r);
        return r->front()[0].value_or("");
    }

    molt::conn_url direct;
    molt::test::fault_proxy proxy;
    molt::conn_url via;
    std::unique_ptr<target_dialect> dialect;
    session_pool pool;
    schema_cache schemas;
    molt::metrics::registry metrics;
    immediate_applier applier;
    std::unique_ptr<target_session> admin;
    molt::qualified_name schema;
};

}  // namespace

TEST_CASE("immediate: an attempt whose deadline passes before COMMIT is rolled back",
          "[integration][bounded]") {
    slow_target t(std::chrono::milliseconds(1500));
    // Each round trip takes 1.2 s: BEGIN and the upsert end past the 1.5 s deadline, each
    // well within any statement timeout.
    t.proxy.latency(std::chrono::milliseconds(600));
    request_context context;
    context.arrived = clock_type::now();
    auto done = t.post(1, context);
    t.proxy.pass();
    REQUIRE_FALSE(done);
    // Past the deadline at COMMIT (timeout), or, on a slow machine, already before the upsert
    // (which then never starts: unavailable, 503).
    CHECK((done.error().code() == molt::errc::timeout ||
           done.error().code() == molt::errc::unavailable));
    CHECK(t.rows() == "0");
    // The session went back to the pool usable: the next request applies.
    request_context next;
    next.arrived = clock_type::now();
    REQUIRE(t.post(2, next));
    CHECK(t.rows() == "1");
}

TEST_CASE("immediate: an attempt whose client has gone is rolled back, never committed",
          "[integration][bounded]") {
    slow_target t(std::chrono::seconds(30));
    // Present when the attempt starts, gone by the time it would commit (the check's second
    // call, after BEGIN and the upsert).
    std::atomic<int> asked{0};
    request_context context;
    context.arrived = clock_type::now();
    context.client_gone = [&] { return ++asked > 1; };
    auto done = t.post(1, context);
    CHECK(asked.load() == 2);
    t.proxy.pass();
    REQUIRE_FALSE(done);
    CHECK_THAT(done.error().message(), Catch::Contains("the client closed the connection"));
    CHECK(t.rows() == "0");
}

TEST_CASE("immediate: no statement starts after the request's deadline", "[integration][bounded]") {
    // One row per statement: BEGIN and four upserts, 1.2 s a round trip (latency each way; an
    // upsert takes several), against a 1.5 s deadline. Only the first upsert starts in time; the
    // rest never start, so the request fails about 6 s in (with the rollback), not after all
    // four upserts (about 17 s).
    slow_target t(std::chrono::milliseconds(1500), 1);
    t.proxy.latency(std::chrono::milliseconds(600));
    request_context context;
    context.arrived = clock_type::now();
    auto done = t.post(1, context, 4);
    const auto took = clock_type::now() - context.arrived;
    t.proxy.pass();
    REQUIRE_FALSE(done);
    CHECK(done.error().code() == molt::errc::unavailable);  // 503: the changefeed retries
    CHECK_THAT(done.error().message(), Catch::Contains("deadline passed before this statement"));
    CHECK(took < std::chrono::seconds(11));
    CHECK(t.rows() == "0");
    // The pool's one session came back without that deadline: another user's statements run.
    auto lease = t.pool.acquire(clock_type::now() + std::chrono::seconds(10));
    REQUIRE(lease);
    auto one = (*lease)->query("SELECT 1", {});
    INFO((one ? std::string() : one.error().message()));
    CHECK(one);
}

// The changefeed gives no order across keys: a child can come seconds before its parent (a
// lagging range). Immediate mode waits for the parent within the request's deadline instead of
// answering 503 at once, which would have the changefeed back off and, its retries spent,
// restart, possibly again and again while the parent keeps lagging.
TEST_CASE("immediate: a child waits for its parent from another request, until its deadline",
          "[integration][bounded]") {
    using namespace std::chrono_literals;
    using molt::test::key;
    using molt::test::num;
    using molt::test::obj;
    for (const std::string env : {"MOLT_TEST_PG_URL", "MOLT_TEST_MYSQL_URL"}) {
        INFO(env);
        apply_options options;
        options.apply_timeout = 2s;
        options.max_deferred_waits = 1;
        std::vector<std::string> warnings;  // the logger calls its sinks one line at a time
        {
            // The default logger is back once the stack below is gone, however the block ends.
            struct restore_log {
                ~restore_log() { molt::log::configure({}); }
            } restore;
            molt::log::configure({molt::log::level::warn,
                                  molt::log::format::json,
                                  {[&](std::string_view line) { warnings.emplace_back(line); }},
                                  {}});
            apply_stack t(env, options);
            t.sql("DROP TABLE IF EXISTS fk_child, fk_parent");
            t.sql("CREATE TABLE fk_parent (id BIGINT PRIMARY KEY)");
            t.sql(
                "CREATE TABLE fk_child (id BIGINT PRIMARY KEY, parent BIGINT, "
                "FOREIGN KEY (parent) REFERENCES fk_parent (id))");
            auto child = [&](int64_t id, int64_t parent) {
                return t.post(body({{"fk_child", key({num(id)}),
                                     obj({{"id", num(id)}, {"parent", num(parent)}}), 2}}));
            };

            // The parent lands while the child's request waits: both are applied.
            auto waiting = std::async(std::launch::async, [&] { return child(1, 7); });
            std::this_thread::sleep_for(400ms);
            REQUIRE(waiting.wait_for(0s) == std::future_status::timeout);
            REQUIRE(t.post(body({{"fk_parent", key({num(7)}), obj({{"id", num(7)}}), 1}})));
            auto applied = waiting.get();
            if (!applied) {
                FAIL(applied.error().message());
            }
            CHECK(t.one("SELECT count(*) FROM fk_child WHERE parent = 7") == "1");

            // No parent comes: 503 (defer) once the deadline is near, nothing written. Meanwhile
            // the one wait slot is taken, so a second orphan is answered 503 at once.
            const auto start = clock_type::now();
            auto orphan = std::async(std::launch::async, [&] { return child(2, 8); });
            std::this_thread::sleep_for(300ms);
            const auto second_start = clock_type::now();
            auto second = child(3, 9);
            const auto second_took = clock_type::now() - second_start;
            REQUIRE_FALSE(second);
            CHECK(second.error().retry() == molt::retry_class::defer);
            CHECK(second_took < 1s);
            auto refused = orphan.get();
            const auto took = clock_type::now() - start;
            REQUIRE_FALSE(refused);
            CHECK(refused.error().code() == molt::errc::unavailable);
            CHECK(refused.error().retry() == molt::retry_class::defer);
            CHECK(refused.error().message().find("before the request's deadline") !=
                  std::string::npos);
            CHECK(took >= 1s);
            CHECK(took < 3s);
            CHECK(t.one("SELECT count(*) FROM fk_child") == "1");
            t.sql("DROP TABLE fk_child, fk_parent");
        }

        // Three children came before their parents: the warning that immediate mode does not
        // suit foreign keys, once.
        CHECK(std::count_if(warnings.begin(), warnings.end(), [](const std::string& line) {
                  return line.find("use the consistent mode") != std::string::npos;
              }) == 1);
    }
}

// --skipForeignKeyChecks: a child that comes before its parent is written at once, and a parent's
// delete before its children's too; the target converges as the rest arrives. PostgreSQL allows
// the replica role to superusers and to those granted it; the refusal names the GRANT. The
// privilege is server-wide, so it goes to a role of this test's own, dropped at the end.
TEST_CASE("immediate: --skipForeignKeyChecks writes a child before its parent at once",
          "[integration][bounded]") {
    using namespace std::chrono_literals;
    using molt::test::key;
    using molt::test::num;
    using molt::test::obj;
    auto pg_admin =
        open_session(
            molt::conn_url::parse(molt::test::server_url("MOLT_TEST_PG_ADMIN_URL")).value())
            .value();
    const std::string role = fmt::format("molt_fk_probe_{}", ::getpid());
    REQUIRE(pg_admin->execute(fmt::format("CREATE ROLE {} LOGIN PASSWORD 'probe'", role), {}));
    struct drop_role {
        target_session& admin;
        std::string role;
        ~drop_role() {
            (void)admin.execute("REVOKE SET ON PARAMETER session_replication_role FROM " + role,
                                {});
            (void)admin.execute("DROP ROLE " + role, {});
        }
    } drop_at_end{*pg_admin, role};
    for (const std::string env : {"MOLT_TEST_PG_URL", "MOLT_TEST_MYSQL_URL"}) {
        INFO(env);
        const bool postgres = env == "MOLT_TEST_PG_URL";
        std::optional<molt::conn_url> as;
        if (postgres) {
            std::string url = molt::test::server_url(env.c_str());
            const size_t at = url.find("//app:app@");
            REQUIRE(at != std::string::npos);
            url.replace(at, 10, "//" + role + ":probe@");
            as = molt::conn_url::parse(url).value();
        }
        apply_options options;
        options.apply_timeout = 2s;
        apply_stack t(env, options, 2, true, as);
        t.sql("DROP TABLE IF EXISTS fk_child, fk_parent");
        t.sql("CREATE TABLE fk_parent (id BIGINT PRIMARY KEY)");
        t.sql(
            "CREATE TABLE fk_child (id BIGINT PRIMARY KEY, parent BIGINT, "
            "FOREIGN KEY (parent) REFERENCES fk_parent (id))");
        if (postgres) {
            t.sql("GRANT SELECT, INSERT, UPDATE, DELETE ON fk_parent, fk_child TO " + role);
            // The role is no superuser: refused, with what to do.
            auto refused = t.pool.acquire(clock_type::now() + 5s);
            REQUIRE_FALSE(refused);
            CHECK(refused.error().code() == molt::errc::invalid_argument);
            CHECK_THAT(refused.error().message(),
                       Catch::Contains("--skipForeignKeyChecks: the target refused `SET "
                                       "session_replication_role = replica`") &&
                           Catch::Contains("GRANT SET ON PARAMETER session_replication_role") &&
                           Catch::Contains("permission denied"));
            REQUIRE(pg_admin->execute("GRANT SET ON PARAMETER session_replication_role TO " + role,
                                      {}));
        }
        // The child alone: written at once, no wait for its parent.
        const auto start = clock_type::now();
        auto child = t.post(
            body({{"fk_child", key({num(1)}), obj({{"id", num(1)}, {"parent", num(7)}}), 2}}));
        if (!child) {
            FAIL(child.error().message());
        }
        CHECK(clock_type::now() - start < 1s);
        CHECK(t.one("SELECT count(*) FROM fk_child WHERE parent = 7") == "1");
        REQUIRE(t.post(body({{"fk_parent", key({num(7)}), obj({{"id", num(7)}}), 1}})));
        // The parent's delete before its child's: written at once too.
        REQUIRE(t.post(body({{"fk_parent", key({num(7)}), molt::proto::json::null(), 3}})));
        CHECK(t.one("SELECT count(*) FROM fk_parent") == "0");
        REQUIRE(t.post(body({{"fk_child", key({num(1)}), molt::proto::json::null(), 4}})));
        CHECK(t.one("SELECT count(*) FROM fk_child") == "0");
        // Other sessions keep their checks.
        auto checked = t.admin->execute("INSERT INTO fk_child VALUES (2, 8)", {});
        REQUIRE_FALSE(checked);
        CHECK(checked.error().retry() == molt::retry_class::defer);
        t.sql("DROP TABLE fk_child, fk_parent");
    }
}

TEST_CASE("a PostgreSQL session closed while its server does not answer does not wait for it",
          "[integration][bounded]") {
    // A session keeps statements prepared on the server (execute_reused). Closing it frees them
    // there anyway, so it must not send a DEALLOCATE per statement first: on a black-holed
    // connection each would wait, outside any call's watchdog, until the network healed.
    const std::string env = "MOLT_TEST_PG_URL";
    const auto url = molt::conn_url::parse(molt::test::server_url(env.c_str())).value();
    molt::test::fault_proxy proxy(url.host(), url.port_or_default());
    const molt::conn_url via = through(url, proxy, env);
    auto opened = postgres::connect(via, std::chrono::seconds(2));
    REQUIRE(opened);
    std::unique_ptr<target_session> session = std::move(opened).value();
    for (int i = 0; i < 3; ++i) {
        REQUIRE(session->execute_reused(fmt::format("SELECT {} + :p1::int", i), {"1"}));
    }

    proxy.blackhole();
    std::atomic<bool> closed{false};
    std::thread closer([&] {
        session.reset();
        closed = true;
    });
    const auto until = clock_type::now() + std::chrono::seconds(5);
    while (!closed && clock_type::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const bool closed_in_the_black_hole = closed.load();
    proxy.pass();  // lets a session stuck in a DEALLOCATE finish, so the thread can be joined
    closer.join();
    CHECK(closed_in_the_black_hole);
}
