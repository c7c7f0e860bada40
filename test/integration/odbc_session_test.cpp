// The ODBC session path the Oracle dialect takes (SOCI odbc backend, unixODBC), run through the
// PostgreSQL and MariaDB ODBC drivers (Debian odbc-postgresql, odbc-mariadb) against the
// throwaway servers: connect with a DSN-less string and no prompt, session setup on every new
// connection, :n placeholders, parameter arrays with NULLs, transactions, the first diagnostic's
// SQLSTATE and native code, a lost connection classified and replaced, a missing driver named.
// Then the Oracle dialect's own MERGE and DELETE, planned from a changefeed batch and run with
// parameter arrays on PostgreSQL 15 (which has MERGE) behind a DUAL view: the statements' shape
// and bind counting, not Oracle's semantics (no Oracle server or driver can run here).
#include "molt/replicator/dialect/odbc_session.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "molt/common/conn_url.hpp"
#include "molt/common/odbc_setup.hpp"
#include "molt/proto/decoder.hpp"
#include "molt/replicator/dialect/oracle.hpp"
#include "molt/replicator/target/apply_plan.hpp"
#include "molt/test/fault_proxy.hpp"
#include "molt/test/servers.hpp"

using namespace molt;
using namespace molt::replicator;

// Sanitizer builds: psqlODBC 13.02 (Debian odbc-postgresql) leaks a result buffer when
// SQLNumResultCols finds its connection lost (lost_connection below). Matched by that ODBC call,
// not the whole driver, so that a handle our code leaks is still reported; full unwinding lets
// the match see below the driver's own frames.
extern "C" const char* __lsan_default_suppressions() {
    return "leak:SQLNumResultCols\n";
}
extern "C" const char* __asan_default_options() {
    return "fast_unwind_on_malloc=0";
}

namespace {

struct server {
    std::string name;
    std::string driver;
    conn_url url;
    std::string application_name_query;  // what the session setup below sets, read back
    std::string connection_string;       // when set, used instead of the driver's own form
};

server pg_server() {
    return {"PostgreSQL", "PostgreSQL Unicode",
            conn_url::parse(test::server_url("MOLT_TEST_PG_URL")).value(),
            "SELECT current_setting('application_name')", ""};
}
server mariadb_server() {
    return {"MariaDB", "MariaDB Unicode",
            conn_url::parse(test::server_url("MOLT_TEST_MYSQL_URL")).value(),
            "SELECT @@SESSION.sql_mode LIKE '%ANSI_QUOTES%'", ""};
}

// Session options for `s`, through `port` (a proxy's) when given.
odbc::session_options options_for(const server& s, std::optional<uint16_t> port = {}) {
    odbc::session_options o;
    const std::string at = fmt::format("Server=127.0.0.1;Port={};Database={}",
                                       port.value_or(s.url.port_or_default()), s.url.database());
    o.connection_string =
        s.name == "PostgreSQL"
            ? fmt::format("Driver={};{};Uid={};Pwd={}", odbc_setup::attribute_value(s.driver), at,
                          s.url.user(), odbc_setup::attribute_value(s.url.password()))
            : fmt::format("Driver={};{};User={};Password={}", odbc_setup::attribute_value(s.driver),
                          at, s.url.user(), odbc_setup::attribute_value(s.url.password()));
    if (!s.connection_string.empty()) {
        o.connection_string = s.connection_string;
    }
    o.display = s.url.redacted();
    o.init = {s.name == "PostgreSQL" ? "SET application_name = 'molt_odbc'"
                                     : "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, "
                                       "',ANSI_QUOTES')"};
    return o;
}

std::string set_up_value(const server& s) {
    return s.name == "PostgreSQL" ? "molt_odbc" : "1";
}

std::vector<sql_row> rows_of(target_session& db, const std::string& sql) {
    auto rows = db.query(sql, {});
    INFO((rows ? std::string() : rows.error().message()));
    REQUIRE(rows);
    return *rows;
}

void session_path(const server& s) {
    INFO(s.name << " through " << s.driver);
    auto connected = odbc::connect(options_for(s));
    INFO((connected ? std::string() : connected.error().message()));
    REQUIRE(connected);
    target_session& db = **connected;
    CHECK(rows_of(db, s.application_name_query).at(0).at(0) == set_up_value(s));
    REQUIRE(db.ping());

    REQUIRE(db.execute("DROP TABLE IF EXISTS odbc_path", {}));
    REQUIRE(db.execute("CREATE TABLE odbc_path (id INT PRIMARY KEY, v VARCHAR(20))", {}));
    // Parameter arrays, column by column, NULLs by indicator; :n placeholders become ?.
    // SOCI rewrites :n to ?, as ? stays.
    const std::string insert = "INSERT INTO odbc_path (id, v) VALUES (CAST(:1 AS INT), :2)";
    auto inserted = db.execute_array(insert, {"1", "2", "3", "one", std::nullopt, "three"}, 3);
    INFO((inserted ? std::string() : inserted.error().message()));
    REQUIRE(inserted);
    auto all = rows_of(db, "SELECT id, v FROM odbc_path ORDER BY id");
    REQUIRE(all.size() == 3);
    CHECK(all[0] == sql_row{"1", "one"});
    CHECK(all[1] == sql_row{"2", std::nullopt});
    CHECK(all[2] == sql_row{"3", "three"});
    auto one = db.query("SELECT v FROM odbc_path WHERE id = CAST(:1 AS INT)", {"3"});
    REQUIRE(one);
    CHECK(one->at(0).at(0) == "three");

    // Transactions: a rollback undoes, a commit keeps.
    REQUIRE(db.begin());
    REQUIRE(db.execute_array(insert, {"4", "four"}, 1));
    db.rollback();
    CHECK(rows_of(db, "SELECT count(*) FROM odbc_path").at(0).at(0) == "3");
    REQUIRE(db.begin());
    REQUIRE(db.execute_array(insert, {"4", "5", "four", "five"}, 2));
    REQUIRE(db.commit());
    CHECK(rows_of(db, "SELECT count(*) FROM odbc_path").at(0).at(0) == "5");

    // A duplicate key: the first diagnostic's SQLSTATE and the driver's native code.
    auto duplicate = db.execute_array(insert, {"6", "1", "six", "again"}, 2);
    REQUIRE_FALSE(duplicate);
    INFO(duplicate.error().message());
    if (s.name == "PostgreSQL") {
        CHECK_THAT(duplicate.error().message(), Catch::Contains("SQLSTATE 23505"));
    } else {
        CHECK_THAT(duplicate.error().message(), Catch::Contains("native error 1062"));
    }
    CHECK_THAT(duplicate.error().message(),
               Catch::Contains("duplicate") || Catch::Contains("Duplicate"));
    CHECK(duplicate.error().retry() == retry_class::fatal);  // the generic SQLSTATE classes
    CHECK_FALSE(db.broken());
    REQUIRE(db.execute("DROP TABLE odbc_path", {}));
}

// Rows whose buffers would pass max_array_bytes go in further executions: every row lands, in
// order, and a failure in a later execution fails the call (its transaction rolls back whole).
void split_arrays(const server& s) {
    INFO(s.name << " with a 64-byte array budget");
    odbc::session_options o = options_for(s);
    o.max_array_bytes = 64;  // 2 parameters of ~20 bytes: 1 row per execution, at most 2
    auto connected = odbc::connect(o);
    REQUIRE(connected);
    target_session& db = **connected;
    REQUIRE(db.execute("DROP TABLE IF EXISTS odbc_split", {}));
    REQUIRE(db.execute("CREATE TABLE odbc_split (id INT PRIMARY KEY, v VARCHAR(40))", {}));
    const std::string insert = "INSERT INTO odbc_split (id, v) VALUES (CAST(? AS INT), ?)";
    sql_params params;
    for (int i = 1; i <= 5; ++i) {
        params.emplace_back(std::to_string(i));
    }
    for (int i = 1; i <= 5; ++i) {
        params.emplace_back(fmt::format("value number {:08}", i));
    }
    auto inserted = db.execute_array(insert, params, 5);
    INFO((inserted ? std::string() : inserted.error().message()));
    REQUIRE(inserted);
    auto all = rows_of(db, "SELECT id, v FROM odbc_split ORDER BY id");
    REQUIRE(all.size() == 5);
    CHECK(all[4] == sql_row{"5", "value number 00000005"});
    // The third row collides, after two rows went in earlier executions.
    REQUIRE(db.begin());
    auto failed = db.execute_array(insert, {"6", "7", "1", "x", "y", "z"}, 3);
    REQUIRE_FALSE(failed);
    db.rollback();
    CHECK(rows_of(db, "SELECT count(*) FROM odbc_split").at(0).at(0) == "5");
    REQUIRE(db.execute("DROP TABLE odbc_split", {}));
}

void lost_connection(const server& s) {
    INFO(s.name << " through a proxy");
    test::fault_proxy proxy("127.0.0.1", s.url.port_or_default());
    auto first = odbc::connect(options_for(s, proxy.port()));
    INFO((first ? std::string() : first.error().message()));
    REQUIRE(first);
    REQUIRE((*first)->ping());
    proxy.reset();  // the server's side of every open connection is gone
    auto lost = (*first)->query(s.application_name_query, {});
    REQUIRE_FALSE(lost);
    INFO(lost.error().message());
    CHECK(lost.error().retry() == retry_class::reconnect);
    CHECK((*first)->broken());
    // The pool replaces a broken session with a new one: the session setup runs again.
    auto second = odbc::connect(options_for(s, proxy.port()));
    REQUIRE(second);
    CHECK(rows_of(**second, s.application_name_query).at(0).at(0) == set_up_value(s));
}

// The server ends a session (what a restart does to every session, and an operator's kill):
// the next call on it is classified as a lost connection, and the session is replaced.
void killed_session(const server& s) {
    INFO(s.name << ": a session the server ended");
    const bool pg = s.name == "PostgreSQL";
    auto victim = odbc::connect(options_for(s));
    auto killer = odbc::connect(options_for(s));
    REQUIRE(victim);
    REQUIRE(killer);
    const std::string id =
        rows_of(**victim, pg ? "SELECT pg_backend_pid()" : "SELECT CONNECTION_ID()")
            .at(0)
            .at(0)
            .value_or("");
    REQUIRE_FALSE(id.empty());
    // PostgreSQL waits (up to 5 s) for the backend to be gone; MariaDB's KILL returns once the
    // thread is marked, so its process list is polled.
    REQUIRE((*killer)->execute(
        pg ? "SELECT pg_terminate_backend(" + id + ", 5000)" : "KILL CONNECTION " + id, {}));
    for (int i = 0; !pg && i < 100; ++i) {
        if (rows_of(**killer,
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " + id)
                .at(0)
                .at(0) == "0") {
            break;
        }
        usleep(50'000);
    }
    auto killed = (*victim)->query(s.application_name_query, {});
    REQUIRE_FALSE(killed);
    INFO(killed.error().message());
    CHECK(killed.error().retry() == retry_class::reconnect);
    CHECK((*victim)->broken());
    auto replaced = odbc::connect(options_for(s));
    REQUIRE(replaced);
    CHECK(rows_of(**replaced, s.application_name_query).at(0).at(0) == set_up_value(s));
}

}  // namespace

TEST_CASE("odbc sessions through the PostgreSQL ODBC driver", "[integration][odbc]") {
    session_path(pg_server());
    split_arrays(pg_server());
    lost_connection(pg_server());
    killed_session(pg_server());
}

TEST_CASE("odbc sessions through the MariaDB ODBC driver", "[integration][odbc]") {
    session_path(mariadb_server());
    split_arrays(mariadb_server());
    lost_connection(mariadb_server());
    killed_session(mariadb_server());
}

// A parameter array's execution waiting on a lock ends at the query timeout, as a retryable
// failure (the apply timeout of an Oracle target), instead of waiting for the lock.
TEST_CASE("odbc: a write waiting on a lock ends at the query timeout", "[integration][odbc]") {
    const server s = pg_server();
    auto holder = odbc::connect(options_for(s));
    REQUIRE(holder);
    REQUIRE((*holder)->execute("DROP TABLE IF EXISTS odbc_locked", {}));
    REQUIRE((*holder)->execute("CREATE TABLE odbc_locked (id INT PRIMARY KEY)", {}));
    odbc::session_options o = options_for(s);
    o.query_timeout = std::chrono::seconds(1);
    auto waiter = odbc::connect(o);
    REQUIRE(waiter);
    REQUIRE((*holder)->begin());
    REQUIRE((*holder)->execute("LOCK TABLE odbc_locked IN EXCLUSIVE MODE", {}));
    const auto start = std::chrono::steady_clock::now();
    auto waited = (*waiter)->execute_array("INSERT INTO odbc_locked (id) VALUES (CAST(? AS INT))",
                                           {"1", "2"}, 2);
    const auto took = std::chrono::steady_clock::now() - start;
    (*holder)->rollback();
    REQUIRE_FALSE(waited);
    INFO(waited.error().message());
    CHECK(waited.error().retry() == retry_class::retry_now);
    // Bounded by the timeout, not by the lock (held until the rollback above).
    CHECK(took < std::chrono::seconds(30));
    REQUIRE((*holder)->execute("DROP TABLE odbc_locked", {}));
}

// The Oracle transport end to end with a stand-in for Oracle's driver: a driver registered as
// "Oracle 21c ODBC driver" (in an odbcinst.ini of the test's own, ODBCSYSINI) that is psqlODBC.
// The replicator's own choice of driver and its oracle:// connection string reach the server
// (psqlODBC ignores DBQ; libpq takes the server from PGHOST, PGPORT, PGDATABASE), and the
// session path above passes through it.
TEST_CASE("odbc: the Oracle transport through a stand-in driver", "[integration][odbc]") {
    const server pg = pg_server();
    char dir_template[] = "/tmp/molt-odbcinst-XXXXXX";
    const char* dir = mkdtemp(dir_template);
    REQUIRE(dir != nullptr);
    const std::string ini = std::string(dir) + "/odbcinst.ini";
    std::ofstream(ini) << "[Oracle 21c ODBC driver]\nDescription=psqlODBC standing in for "
                          "Oracle's driver\nDriver=psqlodbcw.so\n";
    setenv("ODBCSYSINI", dir, 1);
    setenv("PGHOST", "127.0.0.1", 1);
    setenv("PGPORT", std::to_string(pg.url.port_or_default()).c_str(), 1);
    setenv("PGDATABASE", pg.url.database().c_str(), 1);

    const std::vector<std::string> registered = odbc_setup::registered_drivers();
    CHECK(registered == std::vector<std::string>{"Oracle 21c ODBC driver"});
    const conn_url oracle_url =
        conn_url::parse(
            fmt::format("oracle://{}:{}@127.0.0.1:1521/ORCLPDB1", pg.url.user(), pg.url.password()))
            .value();
    auto driver = odbc_setup::choose_oracle_driver(registered, oracle_url.param("odbcDriver"));
    REQUIRE(driver);
    CHECK(*driver == "Oracle 21c ODBC driver");
    server standin = pg;
    standin.driver = *driver;
    standin.connection_string = odbc_setup::oracle_connection_string(oracle_url, *driver);
    CHECK_THAT(standin.connection_string,
               Catch::StartsWith("Driver={Oracle 21c ODBC driver};DBQ=127.0.0.1:1521/ORCLPDB1;"));
    session_path(standin);
    split_arrays(standin);

    std::remove(ini.c_str());
    rmdir(dir);
}

TEST_CASE("odbc: a driver that is not installed is named and not retried", "[integration][odbc]") {
    odbc::session_options o;
    o.connection_string = "Driver={Oracle 99c ODBC driver};DBQ=127.0.0.1:1/X;UID=u;PWD=secret";
    o.display = "oracle://u:xxxxx@127.0.0.1:1/X";
    auto missing = odbc::connect(o);
    REQUIRE_FALSE(missing);
    INFO(missing.error().message());
    CHECK(missing.error().code() == errc::invalid_argument);
    CHECK_THAT(missing.error().message(), Catch::Contains("cannot load the driver"));
    CHECK(missing.error().message().find("secret") == std::string::npos);

    // And through the Oracle dialect: no Oracle driver is registered on this machine.
    auto oracle_missing = oracle::connect(
        conn_url::parse("oracle://u:secret@127.0.0.1:1/X").value(), std::chrono::seconds(30));
    REQUIRE_FALSE(oracle_missing);
    CHECK_THAT(oracle_missing.error().message(),
               Catch::Contains("no Oracle ODBC driver is registered"));
    CHECK_THAT(oracle_missing.error().message(), Catch::Contains("\"PostgreSQL Unicode\""));
    CHECK(oracle_missing.error().message().find("secret") == std::string::npos);
}

TEST_CASE("odbc: the Oracle dialect's MERGE and DELETE with parameter arrays on PostgreSQL",
          "[integration][odbc][oracle]") {
    const server s = pg_server();
    auto connected = odbc::connect(options_for(s));
    REQUIRE(connected);
    target_session& db = **connected;
    REQUIRE(db.execute("DROP TABLE IF EXISTS odbc_merge", {}));
    // (Never ::casts through ODBC: SOCI takes ":text" for a placeholder.)
    REQUIRE(db.execute("CREATE OR REPLACE VIEW dual AS SELECT CAST('X' AS text) AS dummy", {}));
    REQUIRE(db.execute(
        "CREATE TABLE odbc_merge (k1 VARCHAR(20), k2 NUMERIC(10), v VARCHAR(20), n NUMERIC(12,2), "
        "PRIMARY KEY (k1, k2))",
        {}));
    // The catalog as the Oracle dialect would see it, with PostgreSQL's type names in the casts.
    auto column = [](std::string name, std::string sql_type, std::string type_name, int pk) {
        column_info c;
        c.name = std::move(name);
        c.sql_type = std::move(sql_type);
        c.type_name = std::move(type_name);
        c.pk_position = pk;
        return c;
    };
    schema_snapshot schema;
    schema.schema.parts = {"public"};
    table_info t;
    t.name = "odbc_merge";
    t.qualified.parts = {"public", "odbc_merge"};
    t.columns = {
        column("k1", "VARCHAR(20)", "varchar2", 0), column("k2", "NUMERIC(10)", "number", 1),
        column("v", "VARCHAR(20)", "varchar2", -1), column("n", "NUMERIC(12,2)", "number", -1)};
    order_primary_key_first(t);
    t.index_columns();
    schema.tables.push_back(std::move(t));
    schema.finish();
    const auto d = oracle::make_dialect();

    auto apply = [&](const std::string& payload) {
        auto body = proto::decode_webhook(payload);
        REQUIRE(body);
        auto plan = plan_batch(schema, body->rows, *d, 1000);
        INFO((plan ? std::string() : plan.error().message()));
        REQUIRE(plan);
        REQUIRE(db.begin());
        for (const planned_statement& st : plan->statements) {
            CHECK(st.arrays);
            auto done = run_statement(db, st);
            INFO(st.sql);
            INFO((done ? std::string() : done.error().message()));
            REQUIRE(done);
        }
        REQUIRE(db.commit());
    };
    auto message = [](std::string k1, int k2, std::string after) {
        return fmt::format(R"({{"after":{},"key":["{}",{}],"topic":"odbc_merge",)"
                           R"("updated":"1.0000000000"}})",
                           after, k1, k2);
    };
    // Three inserts in one MERGE execution (one array per column), a NULL among them.
    apply(R"({"payload":[)" + message("a", 1, R"({"k1":"a","k2":1,"v":"one","n":1.5})") + "," +
          message("a", 2, R"({"k1":"a","k2":2,"v":null,"n":4E+2})") + "," +
          message("b", 1, R"({"k1":"b","k2":1,"v":"three","n":-0.25})") + R"(],"length":3})");
    CHECK(rows_of(
              db,
              "SELECT k1, CAST(k2 AS text), v, CAST(n AS text) FROM odbc_merge ORDER BY k1, k2") ==
          std::vector<sql_row>{{"a", "1", "one", "1.50"},
                               {"a", "2", std::nullopt, "400.00"},
                               {"b", "1", "three", "-0.25"}});
    // Updates through WHEN MATCHED, an insert through WHEN NOT MATCHED, deletes by key.
    apply(R"({"payload":[)" + message("a", 1, R"({"k1":"a","k2":1,"v":"uno","n":2})") + "," +
          message("c", 3, R"({"k1":"c","k2":3,"v":"new","n":0})") + "," + message("a", 2, "null") +
          "," + message("b", 1, "null") + R"(],"length":4})");
    CHECK(rows_of(
              db,
              "SELECT k1, CAST(k2 AS text), v, CAST(n AS text) FROM odbc_merge ORDER BY k1, k2") ==
          std::vector<sql_row>{{"a", "1", "uno", "2.00"}, {"c", "3", "new", "0.00"}});
    REQUIRE(db.execute("DROP TABLE odbc_merge", {}));
    REQUIRE(db.execute("DROP VIEW dual", {}));
}
