// The pure parts of "rows the target refuses" (target/apply/fatal_rows.hpp): which errors the
// DLQ takes per dialect, errors without row values, the stall log's pace.
#include "molt/replicator/target/fatal_rows.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "molt/replicator/dialect/mysql.hpp"
#include "molt/replicator/dialect/postgres.hpp"

using molt::errc;
using molt::error;
using molt::retry_class;
using namespace molt::replicator;

namespace {

error pg_error(std::string_view state) {
    return {errc::database_error,
            fmt::format("upsert on public.t: ERROR:  something (SQLSTATE {})", state),
            postgres::classify_sqlstate(state)};
}

error my_error(unsigned int number) {
    return {errc::database_error, fmt::format("upsert on db.t: something (MySQL error {})", number),
            mysql::classify_error_number(number)};
}

}  // namespace

TEST_CASE("fatal rows: PostgreSQL data errors of one row are diverted, nothing else",
          "[fatal_rows]") {
    const auto d = postgres::make_dialect();
    CHECK(d->row_data_error(pg_error("23502")));        // NOT NULL
    CHECK(d->row_data_error(pg_error("23514")));        // CHECK
    CHECK(d->row_data_error(pg_error("22001")));        // value too long
    CHECK(d->row_data_error(pg_error("22003")));        // out of range
    CHECK(d->row_data_error(pg_error("22P02")));        // invalid text for the type
    CHECK_FALSE(d->row_data_error(pg_error("23505")));  // unique
    CHECK_FALSE(d->row_data_error(pg_error("23503")));  // foreign key
    CHECK_FALSE(d->row_data_error(pg_error("42501")));  // permission denied
    CHECK_FALSE(d->row_data_error(pg_error("42601")));  // syntax
    CHECK_FALSE(d->row_data_error(error{errc::database_error, "no code", retry_class::fatal}));
}

TEST_CASE("fatal rows: MySQL data errors of one row are diverted, nothing else", "[fatal_rows]") {
    const auto d = mysql::make_dialect();
    for (const unsigned int n : {1048U, 1264U, 1292U, 1366U, 1406U, 3819U, 4025U}) {
        INFO(n);
        CHECK(d->row_data_error(my_error(n)));
    }
    for (const unsigned int n : {1062U, 1452U, 1142U, 1064U, 1213U}) {
        INFO(n);
        CHECK_FALSE(d->row_data_error(my_error(n)));
    }
}

TEST_CASE("fatal rows: a DLQ needs a flag to divert, and bad data", "[fatal_rows]") {
    const auto d = postgres::make_dialect();
    molt::metrics::registry metrics;
    const fatal_rows stall(*d, metrics, {});
    CHECK_FALSE(stall.diverts(pg_error("23514")));
    const fatal_rows dlq(*d, metrics, {fatal_row_policy::dlq, "replicator_dlq"});
    CHECK(dlq.diverts(pg_error("23514")));
    CHECK_FALSE(dlq.diverts(pg_error("42501")));
    CHECK_THAT(std::string(stall.remedy()), Catch::Contains("--fatalRowPolicy dlq"));
}

TEST_CASE("fatal rows: errors are logged without the row's values", "[fatal_rows]") {
    CHECK(without_row_values(
              "upsert on public.t: Cannot execute query. Fatal error. ERROR:  new row for relation "
              "\"t\" violates check constraint \"c\"\nDETAIL:  Failing row contains (2, -1, "
              "secret).\n while executing \"INSERT INTO t VALUES (:p1)\" with :p1=\"secret\". "
              "(SQLSTATE 23514)") ==
          "upsert on public.t: Cannot execute query. Fatal error. ERROR:  new row for relation "
          "\"t\" violates check constraint \"c\" (SQLSTATE 23514)");
    CHECK(without_row_values("CONSTRAINT `c` failed for `db`.`t` while executing \"INSERT\" with "
                             ":p1=\"secret\". (MySQL error 4025)") ==
          "CONSTRAINT `c` failed for `db`.`t` (MySQL error 4025)");
    CHECK(without_row_values("plain (SQLSTATE 22001)") == "plain (SQLSTATE 22001)");
}

TEST_CASE("fatal rows: a stall is logged at powers of two and at least once a minute",
          "[fatal_rows]") {
    using std::chrono::seconds;
    stall_log_pacer pacer;
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(pacer.due(1, t0));
    CHECK(pacer.due(2, t0 + seconds(1)));
    CHECK_FALSE(pacer.due(3, t0 + seconds(2)));
    CHECK(pacer.due(4, t0 + seconds(3)));
    CHECK_FALSE(pacer.due(33, t0 + seconds(62)));
    CHECK(pacer.due(34, t0 + seconds(64)));  // a minute after the last line
    CHECK_FALSE(pacer.due(35, t0 + seconds(70)));
    CHECK(pacer.due(64, t0 + seconds(71)));
}
