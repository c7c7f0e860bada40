// How --stagingSchema is read on each staging server, and how staging tables are named.
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

TEST_CASE("staging tables: lower case, per target schema, at most 63 bytes", "[staging]") {
    qualified_name pg;
    pg.parts = {"AppDB", "Public"};
    CHECK(staging_store::stage_table(pg, "Orders") == "molt_stage_appdb_public_orders");
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
