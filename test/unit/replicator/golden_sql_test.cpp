// Golden SQL per dialect: the upsert and delete shapes, locked by files in test/golden/sql/.
// MOLT_UPDATE_GOLDEN=1 rewrites them (and the lint test then fails until it is unset).
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "molt/replicator/dialect/mysql.hpp"
#include "molt/replicator/dialect/oracle.hpp"
#include "molt/replicator/dialect/postgres.hpp"

#include "plan_test_support.hpp"

using namespace molt::replicator;
using namespace molt::replicator::testing;

namespace {

void check_golden(const std::string& dialect, const std::string& name, const std::string& sql) {
    const std::string path = std::string(MOLT_GOLDEN_DIR) + "/sql/" + dialect + "/" + name + ".sql";
    const char* update = std::getenv("MOLT_UPDATE_GOLDEN");
    if (update != nullptr && std::string(update) == "1") {
        std::ofstream(path) << sql << "\n";
        return;
    }
    std::ifstream in(path);
    INFO("golden file " << path << " (MOLT_UPDATE_GOLDEN=1 writes it)");
    REQUIRE(in.good());
    std::stringstream expected;
    expected << in.rdbuf();
    CHECK(expected.str() == sql + "\n");
}

}  // namespace

TEST_CASE("golden SQL: PostgreSQL upsert and delete shapes", "[golden][sql]") {
    auto d = postgres::make_dialect();
    const table_info base =
        table({"public", "employees"},
              {col("id", "bigint", "bigint", 0), col("name", "text", "text"),
               col("salary", "numeric(12,2)", "numeric"),
               col("hired", "timestamp with time zone", "timestamp with time zone")});
    const std::vector<size_t> all = {0, 1, 2, 3};
    check_golden("postgres", "base.upsert", d->upsert_sql(base, all, 2));
    check_golden("postgres", "base.delete", d->delete_sql(base, 2));
    const std::vector<size_t> sparse = {0, 2};
    check_golden("postgres", "sparse.upsert", d->upsert_sql(base, sparse, 1));

    const table_info composite = table(
        {"migration_schema", "Order Lines"},
        {col("qty", "integer", "integer"), col("order_id", "uuid", "uuid", 0),
         col("line", "smallint", "smallint", 1), col("tags", "text[]", "text", -1, false, true),
         col("shape", "geometry", "geometry")});
    const std::vector<size_t> composite_all = {0, 1, 2, 3, 4};
    check_golden("postgres", "composite.upsert", d->upsert_sql(composite, composite_all, 2));
    check_golden("postgres", "composite.delete", d->delete_sql(composite, 2));

    const table_info key_only = table({"public", "tags"}, {col("tag", "text", "text", 0)});
    const std::vector<size_t> key = {0};
    check_golden("postgres", "key_only.upsert", d->upsert_sql(key_only, key, 2));
}

TEST_CASE("golden SQL: MySQL upsert and delete shapes", "[golden][sql]") {
    auto d = mysql::make_dialect();
    const table_info base =
        table({"molt", "employees"},
              {col("id", "bigint(20)", "bigint", 0), col("name", "varchar(64)", "varchar"),
               col("photo", "varbinary(256)", "varbinary"), col("flags", "bit(8)", "bit"),
               col("home", "point", "point")});
    const std::vector<size_t> all = {0, 1, 2, 3, 4};
    check_golden("mysql", "base.upsert", d->upsert_sql(base, all, 2));
    check_golden("mysql", "base.delete", d->delete_sql(base, 2));

    const table_info composite = table(
        {"molt", "order`lines"}, {col("order_id", "char(36)", "char", 0),
                                  col("line", "int(11)", "int", 1), col("qty", "int(11)", "int")});
    const std::vector<size_t> composite_all = {0, 1, 2};
    check_golden("mysql", "composite.upsert", d->upsert_sql(composite, composite_all, 2));
    check_golden("mysql", "composite.delete", d->delete_sql(composite, 2));

    const table_info key_only = table({"molt", "tags"}, {col("tag", "varchar(32)", "varchar", 0)});
    const std::vector<size_t> key = {0};
    check_golden("mysql", "key_only.upsert", d->upsert_sql(key_only, key, 1));
}

TEST_CASE("golden SQL: Oracle upsert delete session and catalog statements", "[golden][sql]") {
    auto d = oracle::make_dialect();
    // The original's fixture (pk0, pk1, val0, val1), with Oracle's own type strings and every
    // conversion the dialect writes.
    const table_info base = table(
        {"schema", "table"},
        {col("pk0", "VARCHAR2(256 CHAR)", "varchar2", 0), col("pk1", "NUMBER(10)", "number", 1),
         col("val0", "VARCHAR2(256 CHAR)", "varchar2"), col("val1", "NUMBER(12,2)", "number"),
         col("at", "TIMESTAMP(6) WITH TIME ZONE", "timestamp with time zone"),
         col("day", "DATE", "date"), col("wall", "TIMESTAMP(9)", "timestamp"),
         col("id", "RAW(16)", "raw"), col("doc", "CLOB", "clob"),
         col("wait", "INTERVAL DAY(2) TO SECOND(6)", "interval day to second"),
         col("ratio", "BINARY_DOUBLE", "binary_double")});
    const std::vector<size_t> all = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    check_golden("oracle", "base.upsert", d->upsert_sql(base, all, 2));
    check_golden("oracle", "base.delete", d->delete_sql(base, 2));
    const std::vector<size_t> sparse = {0, 1, 3};
    check_golden("oracle", "sparse.upsert", d->upsert_sql(base, sparse, 1));

    // A primary-key-only table: nothing to update when the key exists.
    const table_info key_only =
        table({"MIGRATION_SCHEMA", "TAGS"}, {col("TAG", "VARCHAR2(32 CHAR)", "varchar2", 0)});
    const std::vector<size_t> key = {0};
    check_golden("oracle", "key_only.upsert", d->upsert_sql(key_only, key, 1));
    check_golden("oracle", "key_only.delete", d->delete_sql(key_only, 1));

    std::string init;
    for (const std::string& statement : oracle::session_init()) {
        init += statement + "\n";
    }
    init.pop_back();
    check_golden("oracle", "session_init", init);

    // Composite keys of time and bytes, names that need their quotes, every row of a table
    // that is all key.
    const table_info composite = table(
        {"MIGRATION_SCHEMA", "Order Lines"},
        {col("qty", "NUMBER(10)", "number"), col("placed", "DATE", "date", 0),
         col("order id", "RAW(16)", "raw", 1), col("line", "NUMBER(5)", "number", 2),
         col("note", "NVARCHAR2(100)", "nvarchar2"),
         col("span", "INTERVAL YEAR(2) TO MONTH", "interval year to month"),
         col("ratio", "BINARY_FLOAT", "binary_float"), col("blob", "BLOB", "blob"),
         col("local", "TIMESTAMP(6) WITH LOCAL TIME ZONE", "timestamp with local time zone")});
    const std::vector<size_t> composite_all = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    check_golden("oracle", "composite.upsert", d->upsert_sql(composite, composite_all, 3));
    check_golden("oracle", "composite.delete", d->delete_sql(composite, 3));
    const table_info all_key =
        table({"MIGRATION_SCHEMA", "PAIRS"},
              {col("A", "NUMBER(19)", "number", 0), col("B", "VARCHAR2(10 BYTE)", "varchar2", 1)});
    const std::vector<size_t> both = {0, 1};
    check_golden("oracle", "all_key.upsert", d->upsert_sql(all_key, both, 2));

    std::string introspection;
    for (const std::string& statement : oracle::introspection_sql()) {
        introspection += statement + "\n";
    }
    introspection.pop_back();
    check_golden("oracle", "introspection", introspection);

    const molt::qualified_name owner{{"MIGRATION_SCHEMA"}};
    const progress_statements progress = d->progress_sql(owner, "_replicator_progress");
    check_golden("oracle", "progress",
                 progress.create + "\n" + progress.insert + "\n" + progress.present + "\n" +
                     progress.select + "\n" + progress.clear);
    const table_info dlq =
        table({"MIGRATION_SCHEMA", "REPLICATOR_DLQ"}, {col("EVENT", "NUMBER", "number", 0)});
    check_golden("oracle", "dlq",
                 d->dlq_ddl(owner, "replicator_dlq") + "\n" + d->dlq_insert_sql(dlq));
}
