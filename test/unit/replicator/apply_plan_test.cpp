#include "molt/replicator/target/apply_plan.hpp"

#include <catch2/catch.hpp>

#include "molt/proto/decoder.hpp"
#include "molt/proto/encoder.hpp"
#include "molt/replicator/dialect/mysql.hpp"
#include "molt/replicator/dialect/postgres.hpp"
#include "molt/test/json_builders.hpp"

#include "plan_test_support.hpp"

using namespace molt::replicator;
using namespace molt::replicator::testing;
using molt::hlc;
using molt::proto::json;
using molt::test::key;
using molt::test::num;
using molt::test::obj;
using molt::test::str;

namespace {

schema_snapshot shop() {
    schema_snapshot s;
    s.schema.parts = {"appdb", "public"};
    // Catalog order puts the child first; finish() must put parents first.
    s.tables.push_back(
        table({"public", "order_lines"},
              {col("order_id", "bigint", "bigint", 0), col("line", "integer", "integer", 1),
               col("qty", "integer", "integer")},
              {"orders"}));
    s.tables.push_back(table(
        {"public", "orders"},
        {col("id", "bigint", "bigint", 0), col("Status", "text", "text"),
         col("note", "text", "text"), col("total", "numeric", "numeric", -1, /*generated=*/true)}));
    s.tables.push_back(table({"public", "no_key"}, {col("v", "text", "text")}));
    s.finish();
    return s;
}

struct msg {
    std::string topic;
    json key;
    json after;  // null: delete
    int64_t t = 1;
    json before = json::null();  // the row before (WITH diff) unless null
};

molt::proto::batch decode(const std::vector<msg>& messages) {
    std::vector<std::string> encoded;
    for (const msg& m : messages) {
        molt::proto::message out;
        out.topic = m.topic;
        out.key = m.key;
        out.after = m.after;
        out.before = m.before;
        out.updated = hlc(m.t, 0);
        molt::proto::message_options options;
        options.diff = !m.before.is_null();
        encoded.push_back(molt::proto::encode_message(out, options));
    }
    auto body = molt::proto::decode_webhook(molt::proto::encode_payload(encoded));
    REQUIRE(body);
    return std::move(body->rows);
}

// A statement's values row by row: as bound, or read back from the column arrays of a
// statement bound by column (PostgreSQL's unnest form: {"a","b\\"c",NULL}).
sql_params row_values(const planned_statement& st) {
    if (st.sql.find("unnest(") == std::string::npos) {
        return st.params;
    }
    std::vector<sql_params> columns;
    for (const auto& p : st.params) {
        REQUIRE(p);
        const std::string& a = *p;
        REQUIRE(a.size() >= 2);
        REQUIRE(a.front() == '{');
        REQUIRE(a.back() == '}');
        sql_params column;
        for (size_t i = 1; i + 1 < a.size();) {
            if (a.compare(i, 4, "NULL") == 0) {
                column.emplace_back(std::nullopt);
                i += 4;
            } else {
                REQUIRE(a[i] == '"');
                std::string v;
                for (++i; a[i] != '"'; ++i) {
                    if (a[i] == '\\') {
                        ++i;
                    }
                    v += a[i];
                }
                column.emplace_back(std::move(v));
                ++i;
            }
            if (a[i] == ',') {
                ++i;
            }
        }
        columns.push_back(std::move(column));
    }
    sql_params out;
    for (size_t r = 0; !columns.empty() && r < columns[0].size(); ++r) {
        for (const auto& c : columns) {
            REQUIRE(c.size() == columns[0].size());
            out.push_back(c[r]);
        }
    }
    return out;
}

std::vector<std::string> sqls(const apply_plan& p) {
    std::vector<std::string> out;
    for (const auto& st : p.statements) {
        out.push_back(st.sql);
    }
    return out;
}

}  // namespace

TEST_CASE("plan: fold per key, deletes before upserts, parents before children", "[plan]") {
    const schema_snapshot s = shop();
    REQUIRE(s.order_of(*s.find_table("orders")) < s.order_of(*s.find_table("order_lines")));
    auto d = postgres::make_dialect();
    const auto batch = decode({
        {"order_lines", key({num(1), num(1)}),
         obj({{"order_id", num(1)}, {"line", num(1)}, {"qty", num(5)}}), 3},
        {"orders", key({num(1)}), obj({{"id", num(1)}, {"status", str("open")}}), 1},
        {"orders", key({num(1)}), obj({{"ID", num(1)}, {"note", str("rush")}}), 2},
        {"orders", key({num(2)}), json::null(), 4},
        {"order_lines", key({num(2), num(7)}), json::null(), 4},
    });
    auto plan = plan_batch(s, batch, *d, 1000);
    REQUIRE(plan);
    CHECK(
        sqls(*plan) ==
        std::vector<std::string>{
            R"(DELETE FROM "public"."order_lines" WHERE ("order_id","line") IN (SELECT * FROM unnest(:p1::bigint[],:p2::integer[])))",
            R"(DELETE FROM "public"."orders" WHERE ("id") IN (SELECT * FROM unnest(:p1::bigint[])))",
            R"(INSERT INTO "public"."orders" ("id","Status","note") SELECT * FROM unnest(:p1::bigint[],:p2::text[],:p3::text[]) ON CONFLICT ("id") DO UPDATE SET ("Status","note") = ROW(excluded."Status",excluded."note"))",
            R"(INSERT INTO "public"."order_lines" ("order_id","line","qty") SELECT * FROM unnest(:p1::bigint[],:p2::integer[],:p3::integer[]) ON CONFLICT ("order_id","line") DO UPDATE SET ("qty") = ROW(excluded."qty"))",
        });
    // The two upserts of order 1 merged column by column; "status" matched "Status". One array
    // parameter per column.
    CHECK(plan->statements[2].params == sql_params{R"({"1"})", R"({"open"})", R"({"rush"})"});
    CHECK(plan->statements[0].params == sql_params{R"({"2"})", R"({"7"})"});
    REQUIRE(plan->tables.size() == 2);
    CHECK(plan->tables[0].table->name == "orders");
    CHECK(plan->tables[0].received == 3);
    CHECK(plan->tables[0].upserts == 1);
    CHECK(plan->tables[0].deletes == 1);
}

TEST_CASE("plan: a delete discards earlier upserts; an upsert after a delete re-creates",
          "[plan]") {
    const schema_snapshot s = shop();
    auto d = postgres::make_dialect();
    const auto batch = decode({
        {"orders", key({num(1)}), obj({{"id", num(1)}, {"status", str("a")}, {"note", str("x")}}),
         1},
        {"orders", key({num(1)}), json::null(), 2},
        {"orders", key({num(1)}), obj({{"id", num(1)}, {"status", str("b")}}), 3},
        {"orders", key({num(2)}), obj({{"id", num(2)}, {"status", str("c")}}), 1},
        {"orders", key({num(2)}), json::null(), 2},
    });
    auto plan = plan_batch(s, batch, *d, 1000);
    REQUIRE(plan);
    REQUIRE(plan->statements.size() == 2);
    CHECK(plan->statements[0].type == planned_statement::kind::erase);
    CHECK(row_values(plan->statements[0]) == sql_params{"1", "2"});
    CHECK(plan->statements[1].type == planned_statement::kind::upsert);
    // Only the columns sent after the delete: "note" is not carried over.
    CHECK(plan->statements[1].sql.find("\"note\"") == std::string::npos);
    CHECK(row_values(plan->statements[1]) == sql_params{"1", "b"});
}

TEST_CASE("plan: consistent order writes upserts parents first, then deletes children first",
          "[plan]") {
    const schema_snapshot s = shop();
    auto d = postgres::make_dialect();
    // Line (1,1) moves from order 1 to a new order 2 ... as a delete and an insert, order 1 goes;
    // order 3 is deleted and written again (a whole row: no delete needed).
    const auto batch = decode({
        {"orders", key({num(2)}), obj({{"id", num(2)}, {"status", str("new")}}), 1},
        {"order_lines", key({num(2), num(1)}),
         obj({{"order_id", num(2)}, {"line", num(1)}, {"qty", num(1)}}), 1},
        {"order_lines", key({num(1), num(1)}), json::null(), 1},
        {"orders", key({num(1)}), json::null(), 2},
        {"orders", key({num(3)}), json::null(), 2},
        {"orders", key({num(3)}), obj({{"id", num(3)}, {"status", str("again")}}), 3},
    });
    auto plan = plan_batch(s, batch, *d, 1000, statement_order::upserts_first);
    REQUIRE(plan);
    std::vector<std::string> shape;
    for (const auto& st : plan->statements) {
        std::string line = st.type == planned_statement::kind::upsert ? "upsert " : "delete ";
        line += st.table->name + " ";
        const sql_params values = row_values(st);
        for (size_t i = 0; i < values.size(); ++i) {
            line += (i == 0 ? "" : "/") + values[i].value_or("NULL");
        }
        shape.push_back(line);
    }
    CHECK(shape == std::vector<std::string>{
                       "upsert orders 2/new/3/again",
                       "upsert order_lines 2/1/1",
                       "delete order_lines 1/1",
                       "delete orders 1",
                   });
    REQUIRE(plan->tables.size() == 2);
    CHECK(plan->tables[0].upserts == 2);
    CHECK(plan->tables[0].deletes == 1);

    // The same batch in immediate order: every delete first.
    auto immediate = plan_batch(s, batch, *d, 1000);
    REQUIRE(immediate);
    CHECK(immediate->statements.front().type == planned_statement::kind::erase);
    CHECK(immediate->statements.front().table->name == "order_lines");
}

namespace {

// orders split into families as CockroachDB sends them: "primary" holds the key and status,
// "notes" only note (its messages carry the key in "key" only).
std::string shape_of(const apply_plan& p) {
    std::string out;
    for (const auto& st : p.statements) {
        out += st.type == planned_statement::kind::upsert ? "upsert " : "delete ";
        const sql_params values = row_values(st);
        for (size_t i = 0; i < values.size(); ++i) {
            out += (i == 0 ? "" : "/") + values[i].value_or("NULL");
        }
        out += "; ";
    }
    return out;
}

}  // namespace

TEST_CASE("plan: a column family's message sets its own columns, the key from \"key\"",
          "[plan][families]") {
    const schema_snapshot s = shop();
    auto d = postgres::make_dialect();
    // One family per request (immediate mode, one message per request).
    const auto notes = decode({{"orders.notes", key({num(1)}), obj({{"note", str("n")}}), 1}});
    auto plan = plan_batch(s, notes, *d, 1000);
    REQUIRE(plan);
    REQUIRE(plan->statements.size() == 1);
    CHECK(plan->statements[0].sql ==
          "INSERT INTO \"public\".\"orders\" (\"id\",\"note\") SELECT * FROM "
          "unnest(:p1::bigint[],:p2::text[]) "
          "ON CONFLICT (\"id\") DO UPDATE SET (\"note\") = ROW(excluded.\"note\")");
    CHECK(shape_of(*plan) == "upsert 1/n; ");
    const auto primary = decode(
        {{"orders.primary", key({num(1)}), obj({{"id", num(1)}, {"status", str("open")}}), 1}});
    plan = plan_batch(s, primary, *d, 1000);
    REQUIRE(plan);
    CHECK(shape_of(*plan) == "upsert 1/open; ");
}

TEST_CASE("plan: column families fold by HLC across their topics", "[plan][families]") {
    const schema_snapshot s = shop();
    auto d = postgres::make_dialect();
    // Each transaction sends one message per family; the batch groups them by topic, so the
    // second family's delete at 2 comes after the first family's insert at 3 in the batch.
    const auto batch = decode({
        {"orders.primary", key({num(1)}), obj({{"id", num(1)}, {"status", str("a")}}), 1},
        {"orders.primary", key({num(1)}), json::null(), 2},
        {"orders.primary", key({num(1)}), obj({{"id", num(1)}, {"status", str("b")}}), 3},
        {"orders.notes", key({num(1)}), obj({{"note", str("x")}}), 1},
        {"orders.notes", key({num(1)}), json::null(), 2},
        {"orders.notes", key({num(1)}), obj({{"note", str("y")}}), 3},
        // Key 2: inserted, then deleted (both families).
        {"orders.primary", key({num(2)}), obj({{"id", num(2)}, {"status", str("c")}}), 1},
        {"orders.primary", key({num(2)}), json::null(), 2},
        {"orders.notes", key({num(2)}), obj({{"note", str("z")}}), 1},
        {"orders.notes", key({num(2)}), json::null(), 2},
        // Key 3: an update of one family only.
        {"orders.notes", key({num(3)}), obj({{"note", str("w")}}), 4},
    });
    auto immediate = plan_batch(s, batch, *d, 1000);
    REQUIRE(immediate);
    CHECK(shape_of(*immediate) == "delete 1/2; upsert 1/b/y; upsert 3/w; ");
    auto consistent = plan_batch(s, batch, *d, 1000, statement_order::upserts_first);
    REQUIRE(consistent);
    CHECK(shape_of(*consistent) == "upsert 1/b/y; upsert 3/w; delete 2; ");
    REQUIRE(consistent->tables.size() == 1);
    CHECK(consistent->tables[0].received == 11);
    CHECK(consistent->tables[0].upserts == 2);
    CHECK(consistent->tables[0].deletes == 1);
}

TEST_CASE("plan: generated columns are accepted and never written; NULLs bind as NULL", "[plan]") {
    const schema_snapshot s = shop();
    auto d = postgres::make_dialect();
    const auto batch =
        decode({{"orders", key({num(9)}),
                 obj({{"id", num(9)}, {"status", json::null()}, {"total", num(100)}}), 1}});
    auto plan = plan_batch(s, batch, *d, 1000);
    REQUIRE(plan);
    REQUIRE(plan->statements.size() == 1);
    CHECK(plan->statements[0].sql.find("total") == std::string::npos);
    CHECK(plan->statements[0].params == sql_params{R"({"9"})", "{NULL}"});
}

TEST_CASE("plan: topics of several forms find their table", "[plan]") {
    const schema_snapshot s = shop();
    CHECK(resolve_topic(s, "orders") == s.find_table("orders"));
    CHECK(resolve_topic(s, "ORDERS") == s.find_table("orders"));
    CHECK(resolve_topic(s, "appdb.public.orders") == s.find_table("orders"));
    CHECK(resolve_topic(s, "orders.primary") == s.find_table("orders"));
    CHECK(resolve_topic(s, "public.orders") == s.find_table("orders"));
    CHECK(resolve_topic(s, "customers") == nullptr);
}

TEST_CASE("plan: statements are chunked by --flushSize", "[plan]") {
    const schema_snapshot s = shop();
    auto d = postgres::make_dialect();
    std::vector<msg> messages;
    for (int i = 0; i < 5; ++i) {
        messages.push_back(
            {"orders", key({num(i)}), obj({{"id", num(i)}, {"status", str("s")}}), 1});
    }
    auto plan = plan_batch(s, decode(messages), *d, 2);
    REQUIRE(plan);
    REQUIRE(plan->statements.size() == 3);
    CHECK(plan->statements[0].rows == 2);
    CHECK(plan->statements[1].rows == 2);
    CHECK(plan->statements[2].rows == 1);
    CHECK(row_values(plan->statements[2]) == sql_params{"4", "s"});
}

// MySQL sends a statement in one packet (max_allowed_packet): megabyte rows are spread over
// statements of at most about 4 MiB of values, and a larger row goes alone.
TEST_CASE("plan: MySQL statements are chunked by bytes too", "[plan]") {
    const schema_snapshot s = shop();
    auto d = mysql::make_dialect();
    const size_t mib = 1024 * 1024;
    const std::vector<size_t> sizes = {3 * mib / 2, 3 * mib / 2, 3 * mib / 2, 5 * mib, 10};
    std::vector<msg> messages;
    for (size_t i = 0; i < sizes.size(); ++i) {
        const auto id = static_cast<int64_t>(i);
        messages.push_back({"orders", key({num(id)}),
                            obj({{"id", num(id)}, {"status", str(std::string(sizes[i], 'x'))}}),
                            1});
    }
    const molt::proto::batch batch = decode(messages);  // the keys are views into it
    auto plan = plan_batch(s, batch, *d, 1000);
    REQUIRE(plan);
    std::vector<size_t> rows;
    for (const auto& st : plan->statements) {
        rows.push_back(st.rows);
        size_t bytes = 0;
        for (const auto& p : st.params) {
            bytes += p ? p->size() : 0;
        }
        CHECK((st.rows == 1 || bytes <= d->max_statement_bytes()));
    }
    CHECK(rows == std::vector<size_t>{2, 1, 1, 1});
    CHECK(plan->statements[2].key == "[3]");
    CHECK(plan->statements[2].params.at(1)->size() == 5 * mib);

    // Values travel escaped: two rows of 1.5 MiB of quotes (3 MiB each, escaped) do not share
    // a statement, as two of 1.5 MiB of letters did.
    std::vector<msg> quoted;
    for (int64_t id = 0; id < 2; ++id) {
        quoted.push_back({"orders", key({num(id)}),
                          obj({{"id", num(id)}, {"status", str(std::string(3 * mib / 2, '\''))}}),
                          1});
    }
    const molt::proto::batch quoted_batch = decode(quoted);
    auto quoted_plan = plan_batch(s, quoted_batch, *d, 1000);
    REQUIRE(quoted_plan);
    CHECK(quoted_plan->statements.size() == 2);
}

TEST_CASE("plan: errors name the table, the column and the message", "[plan]") {
    const schema_snapshot s = shop();
    auto d = postgres::make_dialect();
    auto unknown_table =
        plan_batch(s, decode({{"customers", key({num(1)}), obj({{"id", num(1)}}), 1}}), *d, 10);
    REQUIRE_FALSE(unknown_table);
    CHECK(unknown_table.error().code() == molt::errc::not_found);
    CHECK(unknown_table.error().message() ==
          "unknown table \"customers\" in target schema appdb.public");

    auto unknown_column = plan_batch(
        s,
        decode({{"orders", key({num(1)}), obj({{"id", num(1)}}), 1},
                {"orders", key({num(2)}), obj({{"id", num(2)}, {"stauts", str("x")}}), 1}}),
        *d, 10);
    REQUIRE_FALSE(unknown_column);
    CHECK(unknown_column.error().code() == molt::errc::invalid_argument);
    CHECK(unknown_column.error().message() ==
          "table public.orders, message 1: the target has no column \"stauts\"");

    // A key column absent from "after" comes from "key" (column families); from neither, it
    // is an error.
    auto missing_pk = plan_batch(
        s,
        decode({{"order_lines", key({num(1)}), obj({{"order_id", num(1)}, {"qty", num(2)}}), 1}}),
        *d, 10);
    REQUIRE_FALSE(missing_pk);
    CHECK(missing_pk.error().message() ==
          "table public.order_lines, message 0: primary key column \"line\" is in neither "
          "\"after\" nor \"key\"");

    auto short_key =
        plan_batch(s, decode({{"order_lines", key({num(1)}), json::null(), 1}}), *d, 10);
    REQUIRE_FALSE(short_key);
    CHECK(short_key.error().message() ==
          "table public.order_lines, message 0: \"key\" has 1 values but the primary key has 2 "
          "columns (schema drift?)");

    auto no_key =
        plan_batch(s, decode({{"no_key", key({num(1)}), obj({{"v", str("x")}}), 1}}), *d, 10);
    REQUIRE_FALSE(no_key);
    CHECK(no_key.error().message() ==
          "table public.no_key has no primary key; the replicator needs one to apply changes");
}

TEST_CASE("postgres: array literals from JSON arrays", "[plan]") {
    CHECK(postgres::array_literal("[1,2,null]").value() == "{1,2,NULL}");
    CHECK(postgres::array_literal(R"(["a b","c\"d","\\x01",null])").value() ==
          R"({"a b","c\"d","\\x01",NULL})");
    CHECK(postgres::array_literal("[]").value() == "{}");
    CHECK(postgres::array_literal("[[1,2],[3,4]]").value() == "{{1,2},{3,4}}");
    CHECK(postgres::array_literal(R"([{"a": 1}])").value() == R"({"{\"a\": 1}"})");
    CHECK_FALSE(postgres::array_literal("{}"));
}

TEST_CASE("error classes per dialect", "[plan]") {
    using molt::retry_class;
    CHECK(postgres::classify_sqlstate("40001") == retry_class::retry_now);
    CHECK(postgres::classify_sqlstate("40P01") == retry_class::retry_now);
    CHECK(postgres::classify_sqlstate("08006") == retry_class::reconnect);
    CHECK(postgres::classify_sqlstate("57P01") == retry_class::reconnect);
    // MySQL sessions at READ COMMITTED unless the server logs statements (error 1665 there).
    CHECK(mysql::read_committed_allowed(false, "STATEMENT"));
    CHECK(mysql::read_committed_allowed(true, "ROW"));
    CHECK(mysql::read_committed_allowed(true, "MIXED"));
    CHECK_FALSE(mysql::read_committed_allowed(true, "STATEMENT"));
    // A prepared statement the server lost (DEALLOCATE ALL): prepared again.
    CHECK(postgres::classify_sqlstate("26000") == retry_class::retry_now);
    CHECK(postgres::classify_sqlstate("53300") == retry_class::reconnect);
    CHECK(postgres::classify_sqlstate("23503") == retry_class::defer);
    CHECK(postgres::classify_sqlstate("42703") == retry_class::schema);
    CHECK(postgres::classify_sqlstate("22P02") == retry_class::fatal);
    CHECK(postgres::classify_sqlstate("23505") == retry_class::unique);
}

TEST_CASE("plan: PostgreSQL binds each column's values as one array, whatever the row count",
          "[plan]") {
    const schema_snapshot s = shop();
    auto d = postgres::make_dialect();
    auto rows = [](int n) {
        std::vector<msg> out;
        for (int i = 1; i <= n; ++i) {
            out.push_back({"orders", key({num(i)}),
                           obj({{"id", num(i)},
                                {"status", i == 2 ? json::null() : str("a\"b\\c,{}NULL")},
                                {"note", str(i == 1 ? "NULL" : "")}}),
                           1});
        }
        return decode(out);
    };
    auto two = plan_batch(s, rows(2), *d, 1000);
    auto three = plan_batch(s, rows(3), *d, 1000);
    REQUIRE(two);
    REQUIRE(three);
    REQUIRE(two->statements.size() == 1);
    REQUIRE(three->statements.size() == 1);
    // One text for every row count: the session prepares it once.
    CHECK(two->statements[0].sql == three->statements[0].sql);
    CHECK(two->statements[0].rows == 2);
    CHECK(two->statements[0].params ==
          sql_params{R"({"1","2"})", R"({"a\"b\\c,{}NULL",NULL})", R"({"NULL",""})"});
}

TEST_CASE("plan: PostgreSQL binds per value where unnest cannot: array and geometry columns",
          "[plan]") {
    schema_snapshot s;
    s.schema.parts = {"appdb", "public"};
    s.tables.push_back(
        table({"public", "tagged"}, {col("id", "bigint", "bigint", 0),
                                     col("tags", "text[]", "text", -1, false, /*array=*/true)}));
    s.tables.push_back(table({"public", "places"}, {col("id", "bigint", "bigint", 0),
                                                    col("at", "geometry", "geometry")}));
    s.finish();
    auto d = postgres::make_dialect();
    const auto batch = decode({
        {"tagged", key({num(1)}), obj({{"id", num(1)}, {"tags", json::array({str("x")})}}), 1},
        {"tagged", key({num(2)}), json::null(), 1},
        {"places", key({num(1)}),
         obj({{"id", num(1)},
              {"at",
               obj({{"coordinates", json::array({num(1), num(2)})}, {"type", str("Point")}})}}),
         1},
    });
    auto plan = plan_batch(s, batch, *d, 1000);
    REQUIRE(plan);
    CHECK(
        sqls(*plan) ==
        std::vector<std::string>{
            // The key alone is scalar: the delete binds by column.
            R"(DELETE FROM "public"."tagged" WHERE ("id") IN (SELECT * FROM unnest(:p1::bigint[])))",
            R"(INSERT INTO "public"."tagged" ("id","tags") VALUES (:p1::bigint,:p2::text[]) ON CONFLICT ("id") DO UPDATE SET ("tags") = ROW(excluded."tags"))",
            R"(INSERT INTO "public"."places" ("id","at") VALUES (:p1::bigint,st_geomfromgeojson(:p2::jsonb)) ON CONFLICT ("id") DO UPDATE SET ("at") = ROW(excluded."at"))",
        });
    CHECK(plan->statements[1].params == sql_params{"1", "{\"x\"}"});
}

// replicator@v1 configureTable's rowLimit, extras and exprs (userscript::configure sets them).
TEST_CASE("plan: a table's row limit replaces --flushSize for it", "[plan][script]") {
    schema_snapshot s = shop();
    const_cast<table_info*>(s.find_table("orders"))->row_limit = 2;
    auto d = postgres::make_dialect();
    std::vector<msg> messages;
    for (int i = 0; i < 5; ++i) {
        messages.push_back(
            {"orders", key({num(i)}), obj({{"id", num(i)}, {"status", str("s")}}), 1});
        messages.push_back({"order_lines", key({num(i), num(1)}),
                            obj({{"order_id", num(i)}, {"line", num(1)}, {"qty", num(i)}}), 1});
    }
    auto plan = plan_batch(s, decode(messages), *d, 1000);
    REQUIRE(plan);
    REQUIRE(plan->statements.size() == 4);
    CHECK(plan->statements[0].rows == 2);
    CHECK(plan->statements[1].rows == 2);
    CHECK(plan->statements[2].rows == 1);
    CHECK(plan->statements[3].table == s.find_table("order_lines"));
    CHECK(plan->statements[3].rows == 5);
}

TEST_CASE("plan: an extras column takes the properties the table has no column for",
          "[plan][script]") {
    schema_snapshot s = shop();
    auto* orders = const_cast<table_info*>(s.find_table("orders"));
    orders->extras = orders->column_index("note");
    auto d = postgres::make_dialect();
    // Column families: a key's properties fold across its messages, the latest value wins;
    // the payload's own value for the extras column is not used.
    const auto batch = decode({
        {"orders", key({num(1)}),
         obj({{"id", num(1)}, {"status", str("a")}, {"size", num(3)}, {"color", str("red")}}), 1},
        {"orders", key({num(1)}), obj({{"id", num(1)}, {"color", str("blue\"")}}), 2},
        {"orders", key({num(2)}), obj({{"id", num(2)}, {"status", str("b")}, {"note", str("n")}}),
         1},
    });
    auto plan = plan_batch(s, batch, *d, 1000);
    REQUIRE(plan);
    REQUIRE(plan->statements.size() == 1);
    CHECK(plan->statements[0].sql.find("\"note\"") != std::string::npos);
    CHECK(row_values(plan->statements[0]) ==
          sql_params{"1", "a", R"({"color":"blue\"","size":3})", "2", "b", "{}"});

    // Without it, such a property is refused, naming it.
    orders->extras = -1;
    auto refused = plan_batch(s, batch, *d, 1000);
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error().message(), Catch::Contains("the target has no column \"color\""));

    // A configuration the table cannot take fails every write of it.
    orders->options_error = "--userscript x.ts: configureTable(\"orders\"): extras names ...";
    auto bad = plan_batch(s, batch, *d, 1000);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message() == orders->options_error);
}

TEST_CASE("plan: exprs write SQL around each value, in upserts and in deletes", "[plan][script]") {
    schema_snapshot s = shop();
    auto* orders = const_cast<table_info*>(s.find_table("orders"));
    orders->columns[0].expr = "$0 + 100";             // id
    orders->columns[1].expr = "concat($0, '-', $0)";  // Status
    orders->columns[2].expr = "'fixed'";              // note: written by every upsert
    const auto batch = decode({
        {"orders", key({num(1)}), obj({{"id", num(1)}, {"status", str("a")}}), 1},
        {"orders", key({num(2)}), json::null(), 1},
    });

    auto pg = postgres::make_dialect();
    auto plan = plan_batch(s, batch, *pg, 1000);
    REQUIRE(plan);
    CHECK(
        sqls(*plan) ==
        std::vector<std::string>{
            R"(DELETE FROM "public"."orders" WHERE ("id") IN (((:p1::bigint + 100)::bigint)))",
            R"(INSERT INTO "public"."orders" ("id","Status","note") VALUES ((:p1::bigint + 100)::bigint,(concat(:p2::text, '-', :p3::text))::text,('fixed')::text) ON CONFLICT ("id") DO UPDATE SET ("Status","note") = ROW(excluded."Status",excluded."note"))"});
    CHECK(plan->statements[0].params == sql_params{"2"});
    CHECK(plan->statements[1].params == sql_params{"1", "a", "a"});

    auto my = mysql::make_dialect();
    auto on_my = plan_batch(s, batch, *my, 1000);
    REQUIRE(on_my);
    CHECK(on_my->statements[1].sql.find("VALUES ((:p1 + 100),(concat(:p2, '-', :p3)),('fixed'))") !=
          std::string::npos);
    CHECK(on_my->statements[1].params == sql_params{"1", "a", "a"});
}

TEST_CASE("plan: a row limit never undoes a caller's single rows", "[plan][script]") {
    schema_snapshot s = shop();
    const_cast<table_info*>(s.find_table("orders"))->row_limit = 5;
    auto d = mysql::make_dialect();
    std::vector<msg> messages;
    for (int i = 0; i < 3; ++i) {
        messages.push_back(
            {"orders", key({num(i)}), obj({{"id", num(i)}, {"status", str("s")}}), 1});
    }
    auto plan = plan_batch(s, decode(messages), *d, 1);
    REQUIRE(plan);
    REQUIRE(plan->statements.size() == 3);
    for (const auto& st : plan->statements) {
        CHECK(st.rows == 1);
        CHECK_FALSE(st.key.empty());
    }
}

TEST_CASE("plan: a key column's expression binds the key once per $0 in deletes",
          "[plan][script]") {
    schema_snapshot s = shop();
    const_cast<table_info*>(s.find_table("orders"))->columns[0].expr = "$0 * $0";
    auto my = mysql::make_dialect();
    auto plan = plan_batch(s, decode({{"orders", key({num(3)}), json::null(), 1}}), *my, 1000);
    REQUIRE(plan);
    REQUIRE(plan->statements.size() == 1);
    CHECK(plan->statements[0].sql ==
          R"(DELETE FROM `public`.`orders` WHERE (`id`) IN (((:p1 * :p2))))");
    CHECK(plan->statements[0].params == sql_params{"3", "3"});
}

TEST_CASE("plan: cas and deadlines make upserts conditional, deletes stay as they are",
          "[plan][script]") {
    schema_snapshot s = shop();
    auto* orders = const_cast<table_info*>(s.find_table("orders"));
    orders->cas = {static_cast<size_t>(orders->column_index("status"))};
    orders->deadlines = {{static_cast<size_t>(orders->column_index("note")), 3'600'000'000}};
    const auto batch = decode({
        {"orders", key({num(1)}), obj({{"id", num(1)}, {"status", str("b")}, {"note", str("t")}}),
         1},
        {"orders", key({num(2)}), json::null(), 1},
    });
    auto pg = postgres::make_dialect();
    auto plan = plan_batch(s, batch, *pg, 1000);
    REQUIRE(plan);
    REQUIRE(plan->statements.size() == 2);
    CHECK(plan->statements[0].sql ==
          R"(DELETE FROM "public"."orders" WHERE ("id") IN ((:p1::bigint)))");
    CHECK(
        plan->statements[1].sql ==
        R"(WITH "data"("id","Status","note") AS (VALUES (:p1::bigint,:p2::text,:p3::text)), "deadlined" AS (SELECT * FROM "data" WHERE ("note" > now() - '3600000000 microseconds'::interval)), "current" AS (SELECT "id","__t"."Status" FROM "public"."orders" "__t" JOIN "deadlined" USING ("id")), "action" AS (SELECT "deadlined".* FROM "deadlined" LEFT JOIN "current" USING ("id") WHERE "current"."id" IS NULL OR ("deadlined"."Status") > ("current"."Status")) INSERT INTO "public"."orders" ("id","Status","note") SELECT * FROM "action" ON CONFLICT ("id") DO UPDATE SET ("Status","note") = ROW(excluded."Status",excluded."note"))");
    CHECK(plan->statements[1].params == sql_params{"1", "b", "t"});

    auto my = mysql::make_dialect();
    auto on_my = plan_batch(s, batch, *my, 1000);
    REQUIRE(on_my);
    REQUIRE(on_my->statements.size() == 2);
    CHECK(
        on_my->statements[1].sql ==
        R"(INSERT INTO `public`.`orders` (`id`,`Status`,`note`) WITH `data` AS (SELECT CAST(:p1 AS SIGNED) AS `id`,:p2 AS `Status`,:p3 AS `note`), `deadlined` AS (SELECT * FROM `data` WHERE (`note` > now(6) - INTERVAL 3600000000 MICROSECOND)), `current` AS (SELECT `id`,`__t`.`Status` FROM `public`.`orders` `__t` JOIN `deadlined` USING (`id`)), `action` AS (SELECT `deadlined`.* FROM `deadlined` LEFT JOIN `current` USING (`id`) WHERE `current`.`id` IS NULL OR (`deadlined`.`Status`) > (`current`.`Status`)) SELECT * FROM `action` ON DUPLICATE KEY UPDATE `id`=VALUES(`id`),`Status`=VALUES(`Status`),`note`=VALUES(`note`))");

    // The row must carry the columns it is compared by.
    auto sparse = plan_batch(
        s, decode({{"orders", key({num(1)}), obj({{"id", num(1)}, {"note", str("t")}}), 1}}), *pg,
        1000);
    REQUIRE_FALSE(sparse);
    CHECK_THAT(sparse.error().message(),
               Catch::Contains("the userscript's cas column \"Status\" is not in the row"));
}

// A merge that is never called: the plan only carries it.
class unused_merger final : public row_merger {
public:
    molt::result<std::vector<merge_resolution>> resolve(
        const molt::qualified_name&, const table_info&,
        const std::vector<merge_conflict>&) const override {
        return std::vector<merge_resolution>();
    }
    const std::string& dlq_table() const noexcept override { return name_; }

private:
    std::string name_ = "replicator_dlq";
};

TEST_CASE("plan: a table with a merge reads the rows cas keeps, with each row's documents",
          "[plan][script]") {
    schema_snapshot s = shop();
    auto* orders = const_cast<table_info*>(s.find_table("orders"));
    orders->cas = {static_cast<size_t>(orders->column_index("status"))};
    orders->merger = std::make_shared<unused_merger>();
    msg first{"orders", key({num(1)}), obj({{"id", num(1)}, {"status", str("b")}}), 1};
    first.before = obj({{"id", num(1)}, {"status", str("a")}});
    const auto batch = decode({
        first,
        {"orders", key({num(1)}), obj({{"id", num(1)}, {"status", str("c")}}), 2},
        {"orders", key({num(2)}), obj({{"id", num(2)}, {"status", str("d")}}), 2},
    });
    auto pg = postgres::make_dialect();
    auto plan = plan_batch(s, batch, *pg, 1000);
    REQUIRE(plan);
    REQUIRE(plan->statements.size() == 1);
    const planned_statement& st = plan->statements[0];
    REQUIRE(st.merge);
    CHECK(
        st.merge->conflicts_sql ==
        R"(WITH "data"("__idx__","id","Status") AS (VALUES (0,:p1::bigint,:p2::text),(1,:p3::bigint,:p4::text)), "deadlined" AS (SELECT * FROM "data") SELECT "deadlined"."__idx__", (jsonb_build_object('id',"__t"."id"::text,'Status',"__t"."Status",'note',"__t"."note",'total',"__t"."total"::text)) FROM "deadlined" JOIN "public"."orders" "__t" USING ("id") WHERE (("deadlined"."Status") > ("__t"."Status")) IS NOT TRUE FOR UPDATE OF "__t")");
    CHECK(st.params == sql_params{"1", "c", "2", "d"});
    REQUIRE(st.merge->rows.size() == 2);
    // Key 1: the latest row, with the row before its first change in the batch.
    CHECK(st.merge->rows[0].key == "[1]");
    CHECK(st.merge->rows[0].proposed == R"({"id":"1","Status":"c"})");
    CHECK(st.merge->rows[0].before == R"({"id":"1","Status":"a"})");
    CHECK(st.merge->rows[0].after_text == R"({"Status": "c", "id": 1})");
    CHECK(st.merge->rows[0].updated == molt::hlc(2, 0));
    CHECK(st.merge->rows[1].before == "null");
    CHECK(st.merge->rows[1].before_text == "null");

    auto my = mysql::make_dialect();
    auto on_my = plan_batch(s, batch, *my, 1000);
    REQUIRE(on_my);
    REQUIRE(on_my->statements.size() == 1);
    REQUIRE(on_my->statements[0].merge);
    CHECK(
        on_my->statements[0].merge->conflicts_sql ==
        R"(WITH `data` AS (SELECT 0 AS `__idx__`,CAST(:p1 AS SIGNED) AS `id`,:p2 AS `Status` UNION ALL SELECT 1,CAST(:p3 AS SIGNED),:p4), `deadlined` AS (SELECT * FROM `data`) SELECT `deadlined`.`__idx__`, JSON_OBJECT('id',CAST(`__t`.`id` AS CHAR),'Status',`__t`.`Status`,'note',`__t`.`note`,'total',CAST(`__t`.`total` AS CHAR)) FROM `deadlined` JOIN `public`.`orders` `__t` USING (`id`) WHERE ((`deadlined`.`Status`) > (`__t`.`Status`)) IS NOT TRUE FOR UPDATE)");

    // Without cas, no merge (the writer options refuse it before).
    orders->cas.clear();
    auto plain = plan_batch(s, batch, *pg, 1000);
    REQUIRE(plain);
    CHECK_FALSE(plain->statements[0].merge);
}

TEST_CASE("plan: a merge reads the target's row as a changefeed sends values", "[plan][script]") {
    // MySQL/MariaDB: bytes as \x hex, bits as 0s and 1s of the column's width, JSON and
    // geometries as JSON values, numbers as text.
    schema_snapshot s;
    s.schema.parts = {"appdb"};
    s.tables.push_back(table(
        {"appdb", "typed"},
        {col("id", "int", "int", 0), col("v", "int", "int"), col("b", "varbinary(8)", "varbinary"),
         col("bits", "bit(4)", "bit"), col("j", "json", "json"), col("g", "point", "point"),
         col("f", "double", "double")}));
    s.finish();
    auto* typed = const_cast<table_info*>(s.find_table("typed"));
    typed->cas = {1};
    typed->merger = std::make_shared<unused_merger>();
    auto my = mysql::make_dialect();
    const std::string sql = my->merge_conflicts_sql(*typed, std::vector<size_t>{0, 1}, 1);
    CHECK_THAT(sql, Catch::Contains(
                        "JSON_OBJECT('id',CAST(`__t`.`id` AS CHAR),'v',CAST(`__t`.`v` AS CHAR),'b',"
                        "CONCAT(CONVERT(0x5C78 USING utf8mb4), LOWER(HEX(`__t`.`b`))),'bits',"
                        "LPAD(BIN(`__t`.`bits`), 4, '0'),'j',JSON_EXTRACT(`__t`.`j`, '$'),'g',"
                        "JSON_EXTRACT(ST_AsGeoJSON(`__t`.`g`), '$'),'f',CAST(`__t`.`f` AS CHAR))"));

    // PostgreSQL: jsonb_build_object takes 50 pairs at most: 51 columns in two, joined by ||.
    std::vector<column_info> wide{col("id", "bigint", "bigint", 0)};
    for (int i = 1; i <= 50; ++i) {
        wide.push_back(col("c" + std::to_string(i), "text", "text"));
    }
    schema_snapshot w;
    w.schema.parts = {"appdb", "public"};
    w.tables.push_back(table({"public", "wide"}, std::move(wide)));
    w.finish();
    auto* t = const_cast<table_info*>(w.find_table("wide"));
    t->cas = {1};
    auto pg = postgres::make_dialect();
    const std::string wide_sql = pg->merge_conflicts_sql(*t, std::vector<size_t>{0, 1}, 1);
    CHECK_THAT(wide_sql,
               Catch::Contains(R"((jsonb_build_object('id',"__t"."id"::text,'c1',)") &&
                   Catch::Contains(R"('c49',"__t"."c49") || jsonb_build_object('c50',)") &&
                   Catch::Contains(R"('c50',"__t"."c50")) FROM "deadlined")"));
}
