#include <catch2/catch.hpp>

#include "molt/replicator/dialect/mysql.hpp"

TEST_CASE("mysql: errors are classified by number, not SQLSTATE", "[plan]") {
    using molt::retry_class;
    using molt::replicator::mysql::classify_error_number;
    CHECK(classify_error_number(1213) == retry_class::retry_now);  // deadlock (SQLSTATE 40001)
    CHECK(classify_error_number(1205) == retry_class::retry_now);  // lock wait timeout (HY000)
    CHECK(classify_error_number(2006) == retry_class::reconnect);  // server has gone away
    CHECK(classify_error_number(2013) == retry_class::reconnect);  // lost connection
    CHECK(classify_error_number(1040) == retry_class::reconnect);  // too many connections
    // Commands out of sync (results left unread, e.g. by a userscript's CALL through SOCI): the
    // session cannot take another statement; a new one can.
    CHECK(classify_error_number(2014) == retry_class::reconnect);
    CHECK(classify_error_number(1452) == retry_class::defer);   // FK: no parent row
    CHECK(classify_error_number(1451) == retry_class::defer);   // FK: child row exists
    CHECK(classify_error_number(1054) == retry_class::schema);  // unknown column
    CHECK(classify_error_number(1146) == retry_class::schema);  // unknown table
    CHECK(classify_error_number(1366) == retry_class::fatal);   // incorrect value
    CHECK(classify_error_number(1062) == retry_class::unique);  // duplicate entry
    CHECK(classify_error_number(1406) == retry_class::fatal);   // data too long
}
