// molt::test::fault_proxy between libpq and the real PostgreSQL of with-dbs.sh: each fault has
// the effect a client would see from the network or server it stands for.
#include <poll.h>

#include <chrono>
#include <memory>
#include <string>

#include <catch2/catch.hpp>
#include <libpq-fe.h>

#include "molt/common/conn_url.hpp"
#include "molt/test/fault_proxy.hpp"
#include "molt/test/servers.hpp"

namespace {

using namespace std::chrono_literals;
using molt::test::fault_direction;
using molt::test::fault_proxy;
using clock_type = std::chrono::steady_clock;

struct pg_closer {
    void operator()(PGconn* c) const { PQfinish(c); }
};
using pg_handle = std::unique_ptr<PGconn, pg_closer>;

// A proxy in front of MOLT_TEST_PG_URL's server, and libpq connection strings through it.
struct pg_through_proxy {
    pg_through_proxy()
        : url(molt::conn_url::parse(molt::test::server_url("MOLT_TEST_PG_URL")).value()),
          proxy(url.host(), url.port_or_default()) {}

    // libpq takes the last value of a repeated keyword: host and port point at the proxy.
    [[nodiscard]] std::string conninfo(const std::string& extra = "") const {
        return url.libpq_conninfo() + " host=127.0.0.1 port=" + std::to_string(proxy.port()) +
               " connect_timeout=10 " + extra;
    }
    [[nodiscard]] pg_handle connect(const std::string& extra = "") const {
        return pg_handle(PQconnectdb(conninfo(extra).c_str()));
    }

    molt::conn_url url;
    fault_proxy proxy;
};

// The single value of `sql`, or the error text prefixed with "error: ".
std::string query(PGconn* c, const char* sql) {
    PGresult* r = PQexec(c, sql);
    std::string out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                          ? PQgetvalue(r, 0, 0)
                          : std::string("error: ") + PQerrorMessage(c);
    PQclear(r);
    return out;
}

void require_connected(const pg_handle& c) {
    INFO(PQerrorMessage(c.get()));
    REQUIRE(PQstatus(c.get()) == CONNECTION_OK);
}

// The failure a client sees when the network drops its connection: an error, and libpq
// marks the connection bad (as opposed to an SQL error on a live connection).
void check_connection_lost(const pg_handle& c, const std::string& result) {
    CHECK_THAT(result, Catch::StartsWith("error: "));
    CHECK(PQstatus(c.get()) == CONNECTION_BAD);
}

// true when the server's answer to a sent query starts arriving within `within`.
bool answer_within(const pg_handle& c, std::chrono::milliseconds within) {
    pollfd p{PQsocket(c.get()), POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(within.count())) == 1;
}

// After pass() (which clears every fault) a new connection works as without the proxy.
void check_pass_works_again(pg_through_proxy& pg) {
    pg.proxy.pass();
    const pg_handle c = pg.connect();
    require_connected(c);
    CHECK(query(c.get(), "SELECT 'again'") == "again");
}

}  // namespace

TEST_CASE("fault proxy + PostgreSQL: pass-through", "[integration][postgres][fault_proxy]") {
    pg_through_proxy pg;
    const pg_handle c = pg.connect();
    require_connected(c);
    CHECK(query(c.get(), "SELECT 40 + 2") == "42");
    const auto stats = pg.proxy.stats();
    CHECK(stats.accepted == 1);
    CHECK(stats.active == 1);
    CHECK(stats.bytes_up > 0);
    CHECK(stats.bytes_down > 0);
}

TEST_CASE("fault proxy + PostgreSQL: latency delays every round trip",
          "[integration][postgres][fault_proxy]") {
    pg_through_proxy pg;
    const pg_handle c = pg.connect();
    require_connected(c);
    pg.proxy.latency(150ms);
    const auto start = clock_type::now();
    CHECK(query(c.get(), "SELECT 1") == "1");
    const auto took = clock_type::now() - start;
    CHECK(took >= 300ms);  // 150 ms each way
    CHECK(took < 10s);
}

TEST_CASE("fault proxy + PostgreSQL: reset fails the query with a connection error",
          "[integration][postgres][fault_proxy]") {
    pg_through_proxy pg;
    const pg_handle c = pg.connect();
    require_connected(c);
    REQUIRE(query(c.get(), "SELECT 1") == "1");

    pg.proxy.reset();
    check_connection_lost(c, query(c.get(), "SELECT 1"));

    pg.proxy.reset(true);
    const pg_handle refused = pg.connect();
    CHECK(PQstatus(refused.get()) == CONNECTION_BAD);
    CHECK(pg.proxy.stats().resets == 2);

    check_pass_works_again(pg);
}

TEST_CASE("fault proxy + PostgreSQL: black-hole is found only by the client's timeout",
          "[integration][postgres][fault_proxy]") {
    pg_through_proxy pg;
    const pg_handle open = pg.connect();
    require_connected(open);
    pg.proxy.blackhole();

    SECTION("a new connection fails at libpq's connect_timeout, not later") {
        const auto start = clock_type::now();
        const pg_handle c = pg.connect("connect_timeout=2");
        const auto took = clock_type::now() - start;
        CHECK(PQstatus(c.get()) == CONNECTION_BAD);
        CHECK_THAT(PQerrorMessage(c.get()), Catch::Contains("timeout"));
        CHECK(took >= 1500ms);  // libpq waited: the proxy accepted and never answered
        CHECK(took < 15s);
    }
    SECTION("a query on an open connection gets no answer; pass releases it") {
        REQUIRE(PQsendQuery(open.get(), "SELECT 'held'") == 1);
        REQUIRE(PQflush(open.get()) == 0);
        // The client's own 1 s timer: nothing may arrive. A proxy that forwards fails this.
        CHECK_FALSE(answer_within(open, 1s));
        pg.proxy.pass();
        REQUIRE(answer_within(open, 10s));  // the held query and its answer are released
        PGresult* r = PQgetResult(open.get());
        REQUIRE(r != nullptr);
        CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
        CHECK(std::string(PQgetvalue(r, 0, 0)) == "held");
        PQclear(r);
        while ((r = PQgetResult(open.get())) != nullptr) {
            PQclear(r);
        }
    }
    check_pass_works_again(pg);
}

TEST_CASE("fault proxy + PostgreSQL: cut-after N breaks the connection at byte N",
          "[integration][postgres][fault_proxy]") {
    pg_through_proxy pg;
    const pg_handle c = pg.connect();
    require_connected(c);
    REQUIRE(query(c.get(), "SELECT 1") == "1");

    SECTION("in the answer") {
        const uint64_t so_far = pg.proxy.stats().bytes_down;
        pg.proxy.cut_after(so_far + 10, fault_direction::down);
        check_connection_lost(c, query(c.get(), "SELECT repeat('x', 1000)"));
        CHECK(pg.proxy.stats().bytes_down == so_far + 10);
    }
    SECTION("in the query") {
        const uint64_t so_far = pg.proxy.stats().bytes_up;
        pg.proxy.cut_after(so_far + 20, fault_direction::up);
        const std::string sql = "SELECT length('" + std::string(2000, 'y') + "')";
        check_connection_lost(c, query(c.get(), sql.c_str()));
        CHECK(pg.proxy.stats().bytes_up == so_far + 20);
    }
    CHECK(pg.proxy.stats().resets == 1);

    // A new connection is cut too while the bound is set (its handshake is longer than 10
    // bytes each way); pass lifts it.
    pg.proxy.cut_after(10);
    CHECK(PQstatus(pg.connect().get()) == CONNECTION_BAD);
    check_pass_works_again(pg);
}
