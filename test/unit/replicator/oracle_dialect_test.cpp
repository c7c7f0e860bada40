// The Oracle dialect without a server: type strings from catalog rows, value conversions (the
// vectors of ../shared/spec/oracle-target.md §4), ORA error classes, bind shapes of a plan, the
// driver choice and the ODBC connection string. The SQL text is locked by golden_sql_test.cpp;
// the ODBC transport runs against real drivers in test/integration/odbc_session_test.cpp.
#include <catch2/catch.hpp>

#include "molt/common/conn_url.hpp"
#include "molt/common/odbc_setup.hpp"
#include "molt/proto/decoder.hpp"
#include "molt/replicator/dialect/oracle.hpp"
#include "molt/replicator/dialect/postgres.hpp"
#include "molt/replicator/target/apply_plan.hpp"
#include "molt/replicator/target/ordered_apply.hpp"

#include "plan_test_support.hpp"

using namespace molt;
using namespace molt::replicator;
using namespace molt::replicator::testing;

namespace {

std::string ok_text(const result<std::string>& r) {
    INFO((r ? std::string() : r.error().message()));
    REQUIRE(r);
    return *r;
}

std::string refused(const result<std::string>& r) {
    REQUIRE_FALSE(r);
    return r.error().message();
}

oracle::catalog_column cat(std::string type, std::optional<long> length = std::nullopt,
                           std::optional<long> precision = std::nullopt,
                           std::optional<long> scale = std::nullopt,
                           std::optional<long> chars = std::nullopt, std::string used = "") {
    return {std::move(type), length, precision, scale, chars, std::move(used)};
}

// Records the statements it is given and succeeds.
class recording_session final : public target_session {
public:
    std::vector<std::string> sql;
    result<void> begin() override { return note("BEGIN"); }
    result<void> commit() override { return note("COMMIT"); }
    void rollback() noexcept override { sql.emplace_back("ROLLBACK"); }
    result<void> execute(const std::string& text, const sql_params& /*params*/) override {
        return note(text);
    }
    result<void> execute_array(const std::string& text, const sql_params& /*params*/,
                               size_t /*rows*/) override {
        return note(text);
    }
    result<std::vector<sql_row>> query(const std::string& text,
                                       const sql_params& /*params*/) override {
        sql.push_back(text);
        return std::vector<sql_row>{};
    }
    result<void> ping() override { return ok(); }

private:
    result<void> note(const std::string& text) {
        sql.push_back(text);
        return ok();
    }
};

}  // namespace

TEST_CASE("oracle: type strings from ALL_TAB_COLS", "[oracle]") {
    using oracle::type_string;
    CHECK(type_string(cat("VARCHAR2", 168, {}, {}, 42, "C")) == "VARCHAR2(42 CHAR)");
    CHECK(type_string(cat("CHAR", 1, {}, {}, 1, "B")) == "CHAR(1 BYTE)");
    CHECK(type_string(cat("VARCHAR2", 10, {}, {}, 10, "B")) == "VARCHAR2(10 BYTE)");
    CHECK(type_string(cat("NUMBER", 22, 4, 2)) == "NUMBER(4,2)");
    CHECK(type_string(cat("NUMBER", 22, {}, 0)) == "NUMBER");  // INTEGER
    CHECK(type_string(cat("NUMBER", 22)) == "NUMBER");
    CHECK(type_string(cat("FLOAT", 22, 126)) == "FLOAT(126)");
    CHECK(type_string(cat("RAW", 16)) == "RAW(16)");
    CHECK(type_string(cat("DATE", 7)) == "DATE");
    CHECK(type_string(cat("TIMESTAMP(6) WITH TIME ZONE", 13, {}, 6)) ==
          "TIMESTAMP(6) WITH TIME ZONE");
    CHECK(type_string(cat("CLOB", 4000)) == "CLOB");
    // Fixed where the original would write invalid SQL: an INTERVAL carries its precision in its
    // name already, and national character types take no BYTE/CHAR qualifier.
    CHECK(type_string(cat("INTERVAL DAY(2) TO SECOND(6)", 11, 2, 6)) ==
          "INTERVAL DAY(2) TO SECOND(6)");
    CHECK(type_string(cat("NVARCHAR2", 20, {}, {}, 10, "C")) == "NVARCHAR2(10)");

    CHECK(oracle::base_type("TIMESTAMP(6) WITH LOCAL TIME ZONE") ==
          "timestamp with local time zone");
    CHECK(oracle::base_type("INTERVAL YEAR(2) TO MONTH") == "interval year to month");
    CHECK(oracle::base_type("VARCHAR2") == "varchar2");
}

TEST_CASE("oracle: time values for every Oracle time type", "[oracle]") {
    // Every changefeed time encoding (DATE, TIMESTAMP, TIMESTAMPTZ) into every Oracle time type.
    const std::string date = "2016-01-25";
    const std::string wall = "2016-01-25T10:10:10.123";
    const std::string zoned = "2016-01-25T15:10:10.123Z";
    const std::string offset = "2016-01-25T10:10:10.123-05:00";

    CHECK(ok_text(oracle::date_text(date)) == "2016-01-25 00:00:00");
    CHECK(ok_text(oracle::date_text(wall)) == "2016-01-25 10:10:10");  // fraction dropped
    CHECK(ok_text(oracle::date_text(zoned)) == "2016-01-25 15:10:10");
    CHECK(ok_text(oracle::date_text(offset)) == "2016-01-25 15:10:10");  // in UTC

    CHECK(ok_text(oracle::timestamp_text(date)) == "2016-01-25 00:00:00.000000000");
    CHECK(ok_text(oracle::timestamp_text(wall)) == "2016-01-25 10:10:10.123000000");
    CHECK(ok_text(oracle::timestamp_text(zoned)) == "2016-01-25 15:10:10.123000000");
    CHECK(ok_text(oracle::timestamp_text(offset)) == "2016-01-25 15:10:10.123000000");
    CHECK(ok_text(oracle::timestamp_text("2006-01-02T15:04:05.999999999")) ==
          "2006-01-02 15:04:05.999999999");

    CHECK(ok_text(oracle::timestamp_tz_text(date)) == "2016-01-25 00:00:00.000000000 +00:00");
    CHECK(ok_text(oracle::timestamp_tz_text(wall)) == "2016-01-25 10:10:10.123000000 +00:00");
    CHECK(ok_text(oracle::timestamp_tz_text(zoned)) == "2016-01-25 15:10:10.123000000 +00:00");
    CHECK(ok_text(oracle::timestamp_tz_text(offset)) == "2016-01-25 10:10:10.123000000 -05:00");
    // An offset with seconds (Oracle's are whole minutes) keeps the instant, in UTC.
    CHECK(ok_text(oracle::timestamp_tz_text("2016-01-25T10:10:10+01:00:30")) ==
          "2016-01-25 09:09:40.000000000 +00:00");

    // Across a day, a month and a year boundary when converted to UTC.
    CHECK(ok_text(oracle::timestamp_text("2015-12-31T23:30:00-01:00")) ==
          "2016-01-01 00:30:00.000000000");
    CHECK(ok_text(oracle::date_text("2016-03-01T00:15:00+01:00")) == "2016-02-29 23:15:00");

    CHECK_THAT(refused(oracle::date_text("infinity")), Catch::Contains("infinite"));
    CHECK_THAT(refused(oracle::timestamp_text("2016-13-01T00:00:00")),
               Catch::Contains("not a date"));
    CHECK_THAT(refused(oracle::timestamp_text("2016-01-25T10:10")),
               Catch::Contains("not a timestamp"));
    CHECK_THAT(refused(oracle::timestamp_tz_text("2016-01-25T10:10:10+1")),
               Catch::Contains("offset"));
    CHECK_THAT(refused(oracle::timestamp_text("0000-01-01T00:00:00")),
               Catch::Contains("1 to 9999"));
    CHECK_THAT(refused(oracle::date_text("9999-12-31T23:30:00-01:00")),
               Catch::Contains("1 to 9999"));
}

TEST_CASE("oracle: intervals numbers and bytes", "[oracle]") {
    CHECK(ok_text(oracle::interval_ds_text("1 day 02:03:04.5")) == "1 02:03:04.500000000");
    CHECK(ok_text(oracle::interval_ds_text("00:00:00")) == "0 00:00:00.000000000");
    CHECK(ok_text(oracle::interval_ds_text("-00:00:01")) == "-0 00:00:01.000000000");
    CHECK(ok_text(oracle::interval_ds_text("3 days")) == "3 00:00:00.000000000");
    // Days and time of different signs make one signed interval.
    CHECK(ok_text(oracle::interval_ds_text("1 day -01:00:00")) == "0 23:00:00.000000000");
    CHECK(ok_text(oracle::interval_ds_text("-2 days +01:00:00")) == "-1 23:00:00.000000000");
    CHECK_THAT(refused(oracle::interval_ds_text("1 year 2 mons 3 days 04:05:06")),
               Catch::Contains("DAY TO SECOND cannot hold"));
    CHECK(ok_text(oracle::interval_ym_text("1 year 2 mons")) == "1-2");
    CHECK(ok_text(oracle::interval_ym_text("-1 years -2 mons")) == "-1-2");
    CHECK(ok_text(oracle::interval_ym_text("14 mons")) == "1-2");
    CHECK_THAT(refused(oracle::interval_ym_text("1 year 3 days")),
               Catch::Contains("YEAR TO MONTH cannot hold"));
    CHECK_THAT(refused(oracle::interval_ds_text("1 fortnight")), Catch::Contains("fortnight"));
    CHECK_THAT(refused(oracle::interval_ds_text("")), Catch::Contains("not an interval"));

    CHECK(ok_text(oracle::plain_number("4E+2")) == "400");
    CHECK(ok_text(oracle::plain_number("1.2E+2")) == "120");
    CHECK(ok_text(oracle::plain_number("1E-7")) == "0.0000001");
    CHECK(ok_text(oracle::plain_number("-1.5E-3")) == "-0.0015");
    CHECK(ok_text(oracle::plain_number("12.345E+1")) == "123.45");
    CHECK(ok_text(oracle::plain_number("528514320239329281")) == "528514320239329281");
    CHECK(ok_text(oracle::plain_number("22.30")) == "22.30");  // scale kept without exponent
    CHECK(ok_text(oracle::plain_number("0E+2")) == "0");
    CHECK_THAT(refused(oracle::plain_number("1e")), Catch::Contains("not a number"));
    CHECK_THAT(refused(oracle::plain_number("1E+")), Catch::Contains("not a number"));
    CHECK_THAT(refused(oracle::plain_number("E5")), Catch::Contains("not a number"));

    CHECK(ok_text(oracle::raw_hex("f47ac10b-58cc-4372-a567-0e02b2c3d479", true)) ==
          "F47AC10B58CC4372A5670E02B2C3D479");
    CHECK(ok_text(oracle::raw_hex("\\x01c2a76e", true)) == "01C2A76E");
    CHECK(ok_text(oracle::raw_hex("\\x", false)) == "");
    CHECK_THAT(refused(oracle::raw_hex("f47ac10b-58cc-4372-a567-0e02b2c3d479", false)),
               Catch::Contains("hex bytes"));
    CHECK_THAT(refused(oracle::raw_hex("\\x0g", false)), Catch::Contains("not valid hex"));
}

TEST_CASE("oracle: changefeed values into columns", "[oracle]") {
    auto d = oracle::make_dialect();
    auto bind = [&](const column_info& c, proto::value_kind kind, std::string_view text) {
        return d->bind_value(c, proto::value{kind, text});
    };
    using kind = proto::value_kind;
    const column_info number = col("N", "NUMBER(20)", "number");
    const column_info text = col("T", "VARCHAR2(10 CHAR)", "varchar2");
    const column_info flag = col("F", "NUMBER(1)", "number");
    const column_info binary = col("B", "BINARY_DOUBLE", "binary_double");
    const column_info uuid = col("U", "RAW(16)", "raw");
    const column_info json = col("J", "JSON", "json");
    const column_info stamp = col("S", "TIMESTAMP(6) WITH TIME ZONE", "timestamp with time zone");

    // INT8 beyond 2^53 and DECIMAL in exponent form stay exact.
    CHECK(bind(number, kind::number, "528514320239329281")->value() == "528514320239329281");
    CHECK(bind(number, kind::number, "4E+2")->value() == "400");
    CHECK(bind(flag, kind::boolean, "true")->value() == "1");
    CHECK(bind(flag, kind::boolean, "false")->value() == "0");
    CHECK(bind(text, kind::boolean, "true")->value() == "true");
    CHECK(bind(binary, kind::string, "NaN")->value() == "NaN");
    CHECK(bind(binary, kind::string, "-Infinity")->value() == "-INF");
    CHECK(bind(uuid, kind::string, "f47ac10b-58cc-4372-a567-0e02b2c3d479")->value() ==
          "F47AC10B58CC4372A5670E02B2C3D479");
    CHECK(bind(json, kind::string, "pending")->value() == "\"pending\"");
    CHECK(bind(json, kind::json, "{\"a\":1}")->value() == "{\"a\":1}");
    CHECK(bind(stamp, kind::string, "2025-05-09T21:20:29.203923Z")->value() ==
          "2025-05-09 21:20:29.203923000 +00:00");
    CHECK_FALSE(bind(text, kind::null, "").value().has_value());
    // Characters go as they are: the column, not a CAST, refuses what is too long.
    CHECK(bind(text, kind::string, "much longer than ten")->value() == "much longer than ten");

    auto nan = bind(number, kind::string, "NaN");
    REQUIRE_FALSE(nan);
    CHECK_THAT(nan.error().message(), Catch::Contains("column \"N\" (NUMBER(20))"));
    CHECK_THAT(nan.error().message(), Catch::Contains("BINARY_DOUBLE"));
    auto array = bind(number, kind::json, "[1,2]");
    REQUIRE_FALSE(array);
    CHECK_THAT(array.error().message(), Catch::Contains("no array"));
    auto bad_date = bind(stamp, kind::string, "yesterday");
    REQUIRE_FALSE(bad_date);
    CHECK_THAT(bad_date.error().message(), Catch::Contains("column \"S\""));
}

TEST_CASE("oracle: ORA error classes", "[oracle]") {
    CHECK(odbc_setup::ora_number("[Oracle][ODBC][Ora]ORA-00060: deadlock detected") == 60);
    CHECK(odbc_setup::ora_number("ORA-02291: integrity constraint (A.FK) violated") == 2291);
    CHECK(odbc_setup::ora_number("ORA-1: too short, then ORA-12899: value too large") == 12899);
    CHECK(odbc_setup::ora_number("no number here") == 0);

    CHECK(oracle::classify_ora(1) == retry_class::unique);
    for (const int n : {60, 8177, 54, 30006, 1013}) {
        CHECK(oracle::classify_ora(n) == retry_class::retry_now);
    }
    for (const int n : {2291, 2292}) {
        CHECK(oracle::classify_ora(n) == retry_class::defer);
    }
    for (const int n :
         {3113, 3114, 3135, 12170, 12541, 12514, 12537, 12547, 12571, 1033,  1034,  1089,
          1109, 28,   1012, 2396,  25408, 1092,  12560, 3106,  12152, 12153, 12535, 12543}) {
        CHECK(oracle::classify_ora(n) == retry_class::reconnect);
    }
    CHECK(oracle::classify_ora(942) == retry_class::schema);
    CHECK(oracle::classify_ora(904) == retry_class::schema);
    for (const int n : {1017, 28000, 1031, 1400, 12899, 1438, 1722, 1796, 38104, 30926, 32795}) {
        CHECK(oracle::classify_ora(n) == retry_class::fatal);
    }
    for (const int n : {1400, 12899, 1438, 1722, 1861, 1841, 1465, 2290}) {
        CHECK(oracle::ora_row_data_error(n));
    }
    for (const int n : {1, 60, 2291, 1031, 942, 1796}) {
        CHECK_FALSE(oracle::ora_row_data_error(n));
    }

    auto d = oracle::make_dialect();
    CHECK(d->row_data_error(error{errc::database_error,
                                  "[Oracle][ODBC][Ora]ORA-01400: cannot insert NULL into "
                                  "(\"S\".\"T\".\"V\") (SQLSTATE 23000, native error 1400)"}));
    // The native code alone (a driver that does not write ORA-NNNNN into the text).
    CHECK(d->row_data_error(
        error{errc::database_error, "value too large (SQLSTATE 22001, native error 12899)"}));
    CHECK_FALSE(d->row_data_error(
        error{errc::database_error, "ORA-00001: unique constraint (S.U) violated"}));
}

TEST_CASE("oracle: a schema from catalog rows", "[oracle]") {
    // Columns as introspection returns them, children before parents by name.
    const std::vector<sql_row> columns = {
        {"ORDERS", "ID", "NUMBER", "22", "10", "0", "0", {}, "f", "1"},
        {"ORDERS", "CUSTOMER", "NUMBER", "22", "10", "0", "0", {}, "f", {}},
        {"ORDERS", "NOTE", "VARCHAR2", "400", {}, {}, "100", "C", "f", {}},
        {"ORDERS", "SYS_NC00004$", "NUMBER", "22", {}, {}, "0", {}, "t", {}},
        {"ORDERS", "TOTAL", "NUMBER", "22", {}, {}, "0", {}, "t", {}},
        {"CUSTOMERS", "REGION", "CHAR", "2", {}, {}, "2", "B", "f", "2"},
        {"CUSTOMERS", "ID", "NUMBER", "22", "10", "0", "0", {}, "f", "1"},
    };
    const std::vector<sql_row> fks = {{"ORDERS", "CUSTOMERS"}};
    // Names SOCI's ODBC layer would take for a quote or a placeholder: left out.
    std::vector<sql_row> with_unsafe = columns;
    with_unsafe.push_back({"O'BRIEN", "ID", "NUMBER", "22", "10", "0", "0", {}, "f", "1"});
    with_unsafe.push_back({"TIMES", "AT:UTC", "DATE", "7", {}, {}, "0", {}, "f", "1"});
    auto safe = oracle::snapshot_from_catalog("MIGRATION_SCHEMA", with_unsafe, fks);
    REQUIRE(safe);
    CHECK(safe->tables.size() == 2);
    CHECK(safe->find_table("O'BRIEN") == nullptr);
    CHECK(safe->find_table("TIMES") == nullptr);
    CHECK_FALSE(oracle::snapshot_from_catalog("A:B", columns, fks));

    auto s = oracle::snapshot_from_catalog("MIGRATION_SCHEMA", columns, fks);
    REQUIRE(s);
    REQUIRE(s->tables.size() == 2);
    CHECK(s->tables[0].name == "CUSTOMERS");  // parents first
    CHECK(s->tables[1].name == "ORDERS");
    const table_info& customers = s->tables[0];
    REQUIRE(customers.pk_count == 2);
    CHECK(customers.columns[0].name == "ID");  // key order, not catalog order
    CHECK(customers.columns[1].name == "REGION");
    CHECK(customers.columns[1].sql_type == "CHAR(2 BYTE)");
    const table_info& orders = s->tables[1];
    CHECK(orders.qualified.quoted(dialect::oracle) == "\"MIGRATION_SCHEMA\".\"ORDERS\"");
    CHECK(orders.pk_count == 1);
    CHECK(orders.find_column("note")->sql_type == "VARCHAR2(100 CHAR)");  // any case matches
    CHECK(orders.find_column("customer")->sql_type == "NUMBER(10,0)");
    CHECK(orders.find_column("SYS_NC00004$")->generated);  // hidden
    CHECK(orders.find_column("TOTAL")->generated);         // virtual or identity ALWAYS
    CHECK(s->find_table("orders") == &orders);
}

TEST_CASE("oracle: a plan binds one array per column", "[oracle]") {
    auto d = oracle::make_dialect();
    schema_snapshot schema;
    schema.schema.parts = {"S"};
    schema.tables.push_back(table({"S", "T"}, {col("ID", "NUMBER(10)", "number", 0),
                                               col("V", "VARCHAR2(10 CHAR)", "varchar2")}));
    schema.finish();
    auto batch = proto::decode_webhook(
        R"({"payload":[)"
        R"({"after":{"id":1,"v":"a"},"key":[1],"topic":"t","updated":"1.0000000000"},)"
        R"({"after":{"id":2,"v":null},"key":[2],"topic":"t","updated":"1.0000000000"},)"
        R"({"after":{"id":3,"v":"c"},"key":[3],"topic":"t","updated":"1.0000000000"},)"
        R"({"after":null,"key":[4],"topic":"t","updated":"1.0000000000"}],"length":4})");
    REQUIRE(batch);
    auto plan = plan_batch(schema, batch->rows, *d, 1000);
    REQUIRE(plan);
    REQUIRE(plan->statements.size() == 2);
    const planned_statement& erase = plan->statements[0];
    CHECK(erase.type == planned_statement::kind::erase);
    CHECK(erase.arrays);
    CHECK(erase.rows == 1);
    CHECK(erase.params == sql_params{"4"});
    const planned_statement& upsert = plan->statements[1];
    CHECK(upsert.arrays);
    CHECK(upsert.rows == 3);
    // Column by column: every row's ID, then every row's V (NULL as nullopt).
    CHECK(upsert.params == sql_params{"1", "2", "3", "a", std::nullopt, "c"});
    CHECK(upsert.sql == d->upsert_sql(schema.tables[0], std::vector<size_t>{0, 1}, 1));
}

// The unique-key and bad-row fallbacks write each source transaction inside a savepoint. Oracle
// has no RELEASE SAVEPOINT (ORA-00900 would stall every fallback): it is never sent there.
TEST_CASE("oracle: the source-order fallback never releases a savepoint", "[oracle]") {
    schema_snapshot schema;
    schema.schema.parts = {"S"};
    schema.tables.push_back(table({"S", "T"}, {col("ID", "NUMBER(10)", "number", 0),
                                               col("V", "VARCHAR2(10 CHAR)", "varchar2")}));
    schema.finish();
    auto batch = proto::decode_webhook(
        R"({"payload":[{"after":{"id":1,"v":"a"},"key":[1],"topic":"t","updated":"1.0000000000"},)"
        R"({"after":null,"key":[2],"topic":"t","updated":"2.0000000000"}],"length":2})");
    REQUIRE(batch);
    auto sent = [&](const target_dialect& d) {
        recording_session db;
        auto applied = apply_in_source_order(db, schema, batch->rows, d, 1000);
        INFO((applied ? std::string() : applied.error().message()));
        REQUIRE(applied);
        CHECK(applied->transactions == 2);
        std::string all;
        for (const std::string& s : db.sql) {
            all += s.substr(0, s.find(' ', s.find(' ') + 1)) + "|";
        }
        return all;
    };
    const std::string oracle_sql = sent(*oracle::make_dialect());
    CHECK_THAT(oracle_sql,
               Catch::Contains("SAVEPOINT molt_tx|MERGE INTO|SAVEPOINT molt_tx|DELETE FROM"));
    CHECK_THAT(oracle_sql, !Catch::Contains("RELEASE"));
    // PostgreSQL releases each one.
    CHECK_THAT(sent(*postgres::make_dialect()), Catch::Contains("RELEASE SAVEPOINT"));
}
