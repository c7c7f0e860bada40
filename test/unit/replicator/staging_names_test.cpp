// How --stagingSchema is read on each staging server, and how staging tables are named.
#include <set>

#include <catch2/catch.hpp>

#include "molt/replicator/staging/staging_store.hpp"

using namespace molt;
using namespace molt::replicator;

TEST_CASE("stagingSchema on CockroachDB: db.schema, or one part meaning db.public", "[staging]") {
    auto two = resolve_staging_schema("_replicator.public", false, true, "defaultdb");
    REQUIRE(two);
    CHECK(two->database == "_replicator");
    CHECK(two->schema == "public");
    CHECK(two->qualify("molt_layout") == R"("_replicator"."public"."molt_layout")");

    auto one = resolve_staging_schema("_replicator_1739996035106984000", true, true, "defaultdb");
    REQUIRE(one);
    CHECK(one->database == "_replicator_1739996035106984000");
    CHECK(one->schema == "public");
    CHECK(one->to_string() == "_replicator_1739996035106984000.public");
}

TEST_CASE("stagingSchema on PostgreSQL: a schema of the connected database", "[staging]") {
    auto defaulted = resolve_staging_schema("_replicator.public", false, false, "appdb");
    REQUIRE(defaulted);
    CHECK(defaulted->schema == "_replicator");
    CHECK(defaulted->qualify("t") == R"("_replicator"."t")");

    auto one = resolve_staging_schema("_replicator_1739996035106984000", true, false, "appdb");
    REQUIRE(one);
    CHECK(one->schema == "_replicator_1739996035106984000");

    auto same_db = resolve_staging_schema("appdb.staging", true, false, "appdb");
    REQUIRE(same_db);
    CHECK(same_db->schema == "staging");

    auto other_db = resolve_staging_schema("_replicator.public", true, false, "appdb");
    REQUIRE_FALSE(other_db);
    CHECK_THAT(other_db.error().message(),
               Catch::Contains("cannot reach database \"_replicator\" from database \"appdb\""));

    CHECK_FALSE(resolve_staging_schema("a.b.c", true, false, "appdb"));
}

TEST_CASE("staging tables: readable, per target schema, at most 63 bytes", "[staging]") {
    qualified_name pg;
    pg.parts = {"appdb", "public"};
    CHECK(staging_store::stage_table(pg, "orders") == "molt_stage_appdb_public_orders");
    qualified_name my;
    my.parts = {"appdb"};
    CHECK(staging_store::stage_table(my, "orders") == "molt_stage_appdb_orders");

    const std::string long_a = staging_store::stage_table(pg, std::string(60, 'a') + "x");
    const std::string long_b = staging_store::stage_table(pg, std::string(60, 'a') + "y");
    CHECK(long_a.size() <= 63);
    CHECK(long_b.size() <= 63);
    CHECK(long_a != long_b);
    CHECK(long_a.rfind("molt_stage_appdb_public_aaa", 0) == 0);
}

TEST_CASE("staging tables: one name per target table, whatever the underscores and case",
          "[staging]") {
    // Pairs that the first layout mapped to one staging table.
    qualified_name sales;
    sales.parts = {"sales"};
    qualified_name sales_order;
    sales_order.parts = {"sales_order"};
    CHECK(staging_store::stage_table(sales, "order_items") !=
          staging_store::stage_table(sales_order, "items"));
    qualified_name pg;
    pg.parts = {"appdb", "public"};
    CHECK(staging_store::stage_table(pg, "Users") != staging_store::stage_table(pg, "users"));
    qualified_name upper;
    upper.parts = {"AppDB", "public"};
    CHECK(staging_store::stage_table(upper, "users") != staging_store::stage_table(pg, "users"));
    qualified_name two;
    two.parts = {"a", "b"};
    qualified_name one;
    one.parts = {"a"};
    CHECK(staging_store::stage_table(two, "c_d") != staging_store::stage_table(one, "b_c_d"));

    // Names that are not plain lower-case words stay readable, with a hash of the exact names.
    const std::string items = staging_store::stage_table(sales, "order_items");
    CHECK(items.rfind("molt_stage_sales_order_items__", 0) == 0);
    CHECK(items.size() == std::string("molt_stage_sales_order_items__").size() + 16);
    CHECK(staging_store::stage_table(sales, "order_items") == items);  // stable

    // Many similar names, none shared.
    std::set<std::string> seen;
    const std::vector<std::string> words = {"a", "a_", "_a", "a_b", "A", "A_b", "a__b", "ab"};
    for (const auto& s : words) {
        for (const auto& t : words) {
            qualified_name n;
            n.parts = {s};
            CHECK(seen.insert(staging_store::stage_table(n, t)).second);
        }
    }
}

TEST_CASE("checkpoint groups: one per target schema, even with dots in names", "[staging]") {
    qualified_name pg;
    pg.parts = {"appdb", "public"};
    CHECK(staging_store::group_of(pg) == "appdb.public");
    qualified_name dotted_db;
    dotted_db.parts = {"a.b", "c"};
    qualified_name dotted_schema;
    dotted_schema.parts = {"a", "b.c"};
    CHECK(staging_store::group_of(dotted_db) != staging_store::group_of(dotted_schema));
    qualified_name quoted;
    quoted.parts = {"\"a", "b\""};
    CHECK(staging_store::group_of(quoted) != staging_store::group_of(pg));
    CHECK(staging_store::group_of(dotted_db) == "\"a.b\".c");
}

TEST_CASE("checkpoint groups: schema_of_group inverts group_of", "[staging]") {
    const std::vector<std::vector<std::string>> cases = {
        {"appdb", "public"}, {"appdb"},      {"a.b", "c"}, {"a", "b.c"},
        {"\"", "x"},         {"", "public"}, {"a\"\"b"},   {"Mixed Case", "sch\"ema."},
    };
    for (const auto& parts : cases) {
        qualified_name n;
        n.parts = parts;
        const std::string group = staging_store::group_of(n);
        auto back = staging_store::schema_of_group(group);
        INFO(group);
        REQUIRE(back);
        CHECK(back->parts == parts);
    }
    CHECK_FALSE(staging_store::schema_of_group("a."));
    CHECK_FALSE(staging_store::schema_of_group("\"unterminated"));
    CHECK_FALSE(staging_store::schema_of_group("\"a\"b"));
    CHECK_FALSE(staging_store::schema_of_group(""));
}
