// Userscripts without a database: the loader's errors, and the documented examples
// (../shared/spec/userscripts.md §3) as rows in → rows out. The same examples run through the
// HTTP server against PostgreSQL and MariaDB in test/e2e/userscript_test.sh.

#include "molt/replicator/script/userscript.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "molt/proto/decoder.hpp"
#include "molt/proto/encoder.hpp"
#include "molt/replicator/script/script_writer.hpp"

#include "plan_test_support.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using namespace molt;
using namespace molt::replicator;
using molt::replicator::testing::col;
using molt::replicator::testing::table;

namespace {

// A folder of script files, removed at the end.
class script_dir {
public:
    script_dir() {
        char tmpl[] = "/tmp/molt-userscript-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
    }
    ~script_dir() { fs::remove_all(dir_); }
    fs::path write(const std::string& name, const std::string& text) const {
        const fs::path p = dir_ / name;
        fs::create_directories(p.parent_path());
        std::ofstream(p) << text;
        return p;
    }
    [[nodiscard]] const fs::path& path() const { return dir_; }

private:
    fs::path dir_;
};

script::limits quick() {
    script::limits l;
    l.call_timeout = std::chrono::milliseconds(1000);
    l.heap_bytes = size_t{64} << 20;
    return l;
}

std::unique_ptr<script::userscript> load(const script_dir& d, const std::string& text,
                                         const std::string& name = "main.ts") {
    auto s = script::userscript::load(d.write(name, text), quick());
    if (!s) {
        FAIL("load: " << s.error().message());
    }
    return std::move(s).value();
}

std::string load_error(const script_dir& d, const std::string& text,
                       const std::string& name = "main.ts",
                       const script::limits& limits = quick()) {
    auto s = script::userscript::load(d.write(name, text), limits);
    REQUIRE_FALSE(s);
    return s.error().message();
}

// defaultdb.public with the tables the examples use.
schema_snapshot examples_schema() {
    schema_snapshot s;
    s.schema.parts = {"defaultdb", "public"};
    auto t = [&](const std::string& name, std::vector<column_info> cols) {
        s.tables.push_back(table({"defaultdb", "public", name}, std::move(cols)));
    };
    auto text = [](const std::string& n, int pk = -1) { return col(n, "text", "text", pk); };
    t("items", {text("id", 0), text("name"), text("price"), text("qty")});
    t("audit_logs", {text("id", 0), text("msg")});
    t("employees", {text("employee_id", 0), text("employee_name"), text("department"),
                    col("hired", "timestamp with time zone", "timestamp with time zone"),
                    col("hired_day", "date", "date")});
    t("pairs", {text("id1", 0), text("id2", 1), text("name")});
    t("tbl1", {text("id", 0)});
    t("tbl2", {text("id", 0)});
    t("tbl3", {text("id", 0)});
    t("CUSTOMERS", {text("id", 0), text("name")});
    t("table1", {col("msg", "boolean", "boolean", 0), text("dest")});
    t("table2",
      {col("idx", "bigint", "bigint", 0), text("dest"), col("msg", "boolean", "boolean")});
    t("partitioned_target", {col("id", "bigint", "bigint", 0)});
    t("t_1", {col("pk", "bigint", "bigint", 0), text("v")});
    t("arrays", {col("id", "bigint", "bigint", 0),
                 col("vals", "bigint[]", "bigint", -1, false, true), col("doc", "jsonb", "jsonb")});
    t("measures", {col("id", "bigint", "bigint", 0), col("amount", "numeric", "numeric"),
                   col("at", "timestamp with time zone", "timestamp with time zone"),
                   col("doc", "jsonb", "jsonb"), col("flag", "boolean", "boolean")});
    t("orders", {text("id", 0), text("region_code", 1), text("price"), text("qty"), text("total"),
                 text("status_code"), text("status_description"), text("replicated_at"),
                 text("customer_id")});
    s.finish();
    return s;
}

// One message per line: {"topic","key","after"} of the rows a run produced.
std::vector<std::string> run(const script::userscript& s, const std::string& body,
                             unsigned which = script::schema_phase | script::table_phase) {
    auto decoded = proto::decode_webhook(body);
    REQUIRE(decoded);
    const schema_snapshot schema = examples_schema();
    auto out = s.run(schema.schema, schema, decoded->rows, which);
    if (!out) {
        FAIL("run: " << out.error().message());
    }
    std::vector<std::string> lines;
    for (const auto& t : out->tables()) {
        for (const auto& m : t.mutations) {
            std::string line = std::string(t.topic) + " " + std::string(m.key) + " ";
            if (m.deleted) {
                line += "delete";
            } else {
                line += "{";
                for (size_t i = 0; i < m.after.size(); ++i) {
                    line += (i == 0 ? "" : ",") + std::string(m.after[i].name) + ":" +
                            (m.after[i].val.is_null() ? std::string("null")
                                                      : std::string(m.after[i].val.text));
                }
                line += "}";
            }
            lines.push_back(line);
        }
    }
    return lines;
}

std::string run_error(const script::userscript& s, const std::string& body,
                      errc code = errc::invalid_argument) {
    auto decoded = proto::decode_webhook(body);
    REQUIRE(decoded);
    const schema_snapshot schema = examples_schema();
    auto out =
        s.run(schema.schema, schema, decoded->rows, script::schema_phase | script::table_phase);
    REQUIRE_FALSE(out);
    CHECK(out.error().code() == code);
    return out.error().message();
}

// A webhook body of upserts (after given) and deletes (after empty).
struct msg {
    std::string topic;
    std::string key;
    std::string after;  // "" for a delete
};
std::string body(const std::vector<msg>& messages) {
    std::string b = "{\"payload\":[";
    int n = 0;
    for (const msg& m : messages) {
        b += (n == 0 ? "" : ",");
        b += "{\"topic\":\"" + m.topic + "\",\"key\":" + m.key +
             ",\"after\":" + (m.after.empty() ? "null" : m.after) + ",\"updated\":\"" +
             std::to_string(100 + n) + ".0000000000\"}";
        ++n;
    }
    return b + "]}";
}

const std::string header = R"(import * as api from "replicator@v2";
const TARGET_SCHEMA_NAME = "defaultdb.public";
)";

}  // namespace

TEST_CASE("userscript: C1 filters a single table", "[userscript]") {
    script_dir d;
    auto s = load(d, header + R"(
const TABLE_TO_SKIP = "audit_logs";
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => (meta.table === TABLE_TO_SKIP ? null : row),
  onRowDelete: (row, meta) => (meta.table === TABLE_TO_SKIP ? null : row),
});
)");
    CHECK(s->handles_schema(qualified_name{{"defaultdb", "public"}}));
    CHECK_FALSE(s->handles_schema(qualified_name{{"defaultdb", "other"}}));
    CHECK(run(*s, body({{"audit_logs", "[1]", R"({"id":1,"msg":"x"})"},
                        {"audit_logs", "[1]", ""},
                        {"items", "[1]", R"({"id":1,"name":"a"})"},
                        {"items", "[2]", ""}})) ==
          std::vector<std::string>{R"(items [1] {id:1,name:a})", R"(items [2] delete)"});
}

TEST_CASE("userscript: C2 C3 and C10 filter tables and rows", "[userscript]") {
    script_dir d;
    SECTION("C2: a set of tables") {
        auto s = load(d, header + R"(
const TABLES_TO_SKIP = new Set(["audit_logs", "tbl1"]);
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => (TABLES_TO_SKIP.has(meta.table) ? null : row),
  onRowDelete: (row, meta) => (TABLES_TO_SKIP.has(meta.table) ? null : row),
});
)");
        CHECK(run(*s, body({{"audit_logs", "[1]", R"({"id":1})"},
                            {"tbl1", "[1]", ""},
                            {"tbl2", "[2]", R"({"id":2})"}})) ==
              std::vector<std::string>{R"(tbl2 [2] {id:2})"});
    }
    SECTION("C3: rows marked deleted") {
        auto s = load(d, header + R"(
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (row.is_deleted !== undefined && Number(row.is_deleted) === 1) return null;
    return row;
  },
  onRowDelete: (row, meta) => row,
});
)");
        CHECK(run(*s, body({{"audit_logs", "[1]", R"({"id":1,"is_deleted":1})"},
                            {"audit_logs", "[2]", R"({"id":2,"is_deleted":0})"},
                            {"audit_logs", "[3]", R"({"id":3})"},
                            {"audit_logs", "[4]", R"({"id":4,"is_deleted":true})"},
                            {"audit_logs", "[5]", ""}})) ==
              std::vector<std::string>{R"(audit_logs [2] {id:2,is_deleted:0})",
                                       R"(audit_logs [3] {id:3})", R"(audit_logs [5] delete)"});
    }
    SECTION("C10: filter and drop columns on one table") {
        auto s = load(d, header + R"(
const TABLE_TO_EDIT = "items";
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (meta.table !== TABLE_TO_EDIT) return row;
    if (Number(row.is_deleted) === 1) return null;
    const { ssn, credit_card_number, ...rest } = row;
    return rest;
  },
  onRowDelete: (row, meta) => row,
});
)");
        CHECK(
            run(*s,
                body({{"items", "[1]", R"({"id":1,"is_deleted":1,"ssn":"x"})"},
                      {"items", "[2]",
                       R"({"id":2,"is_deleted":0,"ssn":"x","credit_card_number":"y","name":"n"})"},
                      {"audit_logs", "[3]", R"({"id":3,"ssn":"x"})"},
                      {"items", "[4]", ""}})) ==
            std::vector<std::string>{R"(items [2] {id:2,is_deleted:0,name:n})",
                                     R"(items [4] delete)", R"(audit_logs [3] {id:3,ssn:x})"});
    }
}

TEST_CASE("userscript: C4 C5 C6 and C9 change columns", "[userscript]") {
    script_dir d;
    SECTION("C4: drop a column of one table") {
        auto s = load(d, header + R"(
const TABLE_TO_EDIT = "items";
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (meta.table === TABLE_TO_EDIT) delete row["qty"];
    return row;
  },
  onRowDelete: (row, meta) => row,
});
)");
        CHECK(run(*s, body({{"items", "[1]", R"({"id":1,"name":"n","price":2,"qty":5})"},
                            {"orders", "[1,\"US\"]", R"({"id":1,"region_code":"US","qty":5})"},
                            {"items", "[1]", ""}})) ==
              std::vector<std::string>{R"(items [1] {id:1,name:n,price:2})", R"(items [1] delete)",
                                       R"(orders [1,"US"] {id:1,region_code:US,qty:5})"});
    }
    SECTION("C5: rename columns, the key too") {
        auto s = load(d, header + R"(
const TABLE_TO_EDIT = "employees";
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (meta.table !== TABLE_TO_EDIT) return row;
    if (row.emp_id !== undefined) { row.employee_id = row.emp_id; delete row.emp_id; }
    if (row.emp_name !== undefined) { row.employee_name = row.emp_name; delete row.emp_name; }
    return row;
  },
  onRowDelete: (row, meta) => {
    if (row.emp_id !== undefined) { row.employee_id = row.emp_id; delete row.emp_id; }
    return row;
  },
});
)");
        CHECK(run(*s,
                  body({{"employees", "[7]", R"({"emp_id":7,"emp_name":"Ann","department":"HR"})"},
                        {"employees", "[7]", ""}})) ==
              std::vector<std::string>{
                  R"(employees [7] {department:HR,employee_id:7,employee_name:Ann})",
                  R"(employees [7] delete)"});
    }
    SECTION("C6: rename a composite primary key") {
        auto s = load(d, header + R"(
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (meta.table !== "pairs") return row;
    row.id1 = row.pk1; row.id2 = row.pk2; delete row.pk1; delete row.pk2;
    return row;
  },
  onRowDelete: (row, meta) => {
    if (row.pk1 !== undefined) row.id1 = row.pk1;
    if (row.pk2 !== undefined) row.id2 = row.pk2;
    return row;
  },
});
)");
        CHECK(run(*s, body({{"pairs", R"(["a","b"])", R"({"pk1":"a","pk2":"b","name":"n"})"},
                            {"pairs", R"(["a","b"])", ""}})) ==
              std::vector<std::string>{R"(pairs ["a","b"] {name:n,id1:a,id2:b})",
                                       R"(pairs ["a","b"] delete)"});
    }
    SECTION("C9: compute a column") {
        auto s = load(d, header + R"(
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (meta.table !== "orders") return row;
    const price = Number(row.price) || 0;
    const qty = Number(row.qty) || 0;
    row.total = (price * qty).toFixed(2);
    return row;
  },
  onRowDelete: (row, meta) => row,
});
)");
        CHECK(
            run(*s, body({{"orders", R"([1,"US"])",
                           R"({"id":1,"region_code":"US","price":2.50,"qty":4})"},
                          {"orders", R"([2,"US"])",
                           R"({"id":2,"region_code":"US","price":"x","qty":4})"},
                          {"orders", R"([3,"US"])", R"({"id":3,"region_code":"US","qty":4})"}})) ==
            std::vector<std::string>{
                R"(orders [1,"US"] {id:1,region_code:US,price:2.50,qty:4,total:10.00})",
                R"(orders [2,"US"] {id:2,region_code:US,price:x,qty:4,total:0.00})",
                R"(orders [3,"US"] {id:3,region_code:US,qty:4,total:0.00})"});
    }
}

TEST_CASE("userscript: C7 and C8 route rows to other tables", "[userscript]") {
    script_dir d;
    SECTION("C7: partitions by id") {
        auto s = load(d, header + R"(
function partition(row, meta) {
  if (meta.table !== "items") return row;
  const id = Number(row.id);
  if (id <= 10000) return { tbl1: [row] };
  if (id <= 20000) return { tbl2: [row] };
  return { tbl3: [row] };
}
api.configureTargetSchema(TARGET_SCHEMA_NAME, { onRowUpsert: partition, onRowDelete: partition });
)");
        CHECK(run(*s, body({{"items", "[5]", R"({"id":5})"},
                            {"items", "[15000]", R"({"id":15000})"},
                            {"items", "[25000]", R"({"id":25000})"},
                            {"items", "[15000]", ""}})) ==
              std::vector<std::string>{R"(tbl1 [5] {id:5})", R"(tbl2 [15000] {id:15000})",
                                       R"(tbl2 [15000] delete)", R"(tbl3 [25000] {id:25000})"});
    }
    SECTION("C8: rename a table") {
        auto s = load(d, header + R"(
const TABLE_MAPPINGS = { customer_table: "CUSTOMERS" };
function rename(row, meta) {
  if (meta.table in TABLE_MAPPINGS) return { [TABLE_MAPPINGS[meta.table]]: [row] };
  return row;
}
api.configureTargetSchema(TARGET_SCHEMA_NAME, { onRowUpsert: rename, onRowDelete: rename });
)");
        CHECK(run(*s, body({{"customer_table", "[1]", R"({"id":1,"name":"a"})"},
                            {"customer_table", "[2]", ""},
                            {"items", "[3]", R"({"id":3})"}})) ==
              std::vector<std::string>{R"(CUSTOMERS [1] {id:1,name:a})", R"(CUSTOMERS [2] delete)",
                                       R"(items [3] {id:3})"});
    }
}

TEST_CASE("userscript: A1 to A4 of the API reference", "[userscript]") {
    script_dir d;
    SECTION("A1 and A2: schema-level handlers") {
        auto s = load(d, header + R"(
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (meta.table === "orders") return { ...row, status_code: String(row.status_code).toUpperCase() };
    if (meta.table === "CUSTOMERS") return row;
    return null;
  },
  onRowDelete: (row, meta) => (meta.table === "items" && Number(row.id) < 100 ? null : row),
});
)");
        CHECK(run(*s, body({{"orders", R"([1,"US"])",
                             R"({"id":1,"region_code":"US","status_code":"new"})"},
                            {"items", "[1]", R"({"id":1})"},
                            {"items", "[5]", ""},
                            {"items", "[150]", ""}})) ==
              std::vector<std::string>{R"(orders [1,"US"] {id:1,region_code:US,status_code:NEW})",
                                       R"(items [150] delete)"});
    }
    SECTION("A3 and A4: table-level handlers") {
        auto s = load(d, header + R"(
const STATUS = { "1": "pending", "2": "processing", "3": "shipped", "4": "delivered", "5": "cancelled" };
api.configureTargetTables(["orders"], {
  onRowUpsert: (row, meta) => {
    row.replicated_at = "at";
    if (row.status_code !== undefined) row.status_description = STATUS[row.status_code] ?? "unknown";
    return row;
  },
  onRowDelete: (keys, meta) => {
    const [orderId, region] = keys;
    if (region === "EU" || parseInt(orderId) >= 1000) return null;
    return keys;
  },
});
)");
        CHECK_FALSE(s->handles_schema(qualified_name{{"defaultdb", "public"}}));
        CHECK(s->handles_tables(qualified_name{{"defaultdb", "public"}}));
        CHECK(
            run(*s,
                body({{"orders", R"([1,"US"])", R"({"id":1,"region_code":"US","status_code":3})"},
                      {"orders", R"([2,"US"])", R"({"id":2,"region_code":"US","status_code":9})"},
                      {"orders", R"([3,"US"])", R"({"id":3,"region_code":"US"})"},
                      {"orders", R"([123,"US"])", ""},
                      {"orders", R"([123,"EU"])", ""},
                      {"orders", R"([1000,"US"])", ""},
                      {"items", "[1]", R"({"id":1})"}})) ==
            std::vector<std::string>{
                R"(orders [1,"US"] {id:1,region_code:US,status_code:3,replicated_at:at,status_description:shipped})",
                R"(orders [2,"US"] {id:2,region_code:US,status_code:9,replicated_at:at,status_description:unknown})",
                R"(orders [3,"US"] {id:3,region_code:US,replicated_at:at})",
                R"(orders [123,"US"] delete)", R"(items [1] {id:1})"});
        // Only the schema phase: the table-level handlers wait for apply time.
        CHECK(run(*s, body({{"orders", R"([1,"US"])", R"({"id":1,"region_code":"US"})"}}),
                  script::schema_phase) ==
              std::vector<std::string>{R"(orders [1,"US"] {id:1,region_code:US})"});
    }
}

TEST_CASE("userscript: loading errors name the file line and column", "[userscript]") {
    script_dir d;
    SECTION("syntax error") {
        const std::string e = load_error(d, "const = 3;\n");
        CHECK_THAT(e, Contains("main.ts:1:7: Expected identifier"));
    }
    SECTION("Q1: a ReferenceError at load") {
        const std::string e = load_error(d, header + R"(
api.configureTargetSchema(SCHEMA_NAME, { onRowUpsert: (r) => r, onRowDelete: (r) => r });
)");
        CHECK_THAT(e,
                   Contains("ReferenceError") && Contains("SCHEMA_NAME") && Contains("main.ts:4:"));
    }
    SECTION("a name the API does not have") {
        const std::string e = load_error(d, header + "api.configureTargetSchemas('x', {});\n");
        CHECK_THAT(e, Contains("TypeError") && Contains("configureTargetSchemas"));
    }
    SECTION("one handler of configureTargetSchema") {
        const std::string e =
            load_error(d, header + "api.configureTargetSchema('x', { onRowUpsert: (r) => r });\n");
        CHECK_THAT(e, Contains("onRowDelete is missing"));
    }
    SECTION("imports: a missing file and one outside the folder") {
        CHECK_THAT(load_error(d, "import { x } from './nothere';\nconsole.log(x);\n"),
                   Contains("nothere.ts") && Contains("no such file"));
        CHECK_THAT(load_error(d, "import { x } from '../../etc/passwd';\nconsole.log(x);\n"),
                   Contains("outside the script's folder"));
        CHECK_THAT(
            load_error(d, "import { x } from 'https://example.com/x.ts';\nconsole.log(x);\n"),
            Contains("only files in the script's folder"));
        d.write("lib/inner.ts", "import { y } from '../../up';\nexport const x = y;\n");
        CHECK_THAT(load_error(d, "import { x } from './lib/inner';\nconsole.log(x);\n"),
                   Contains("lib/inner.ts") && Contains("outside the script's folder"));
    }
    SECTION("an endless loop at load") {
        CHECK_THAT(load_error(d, "for (;;) {}\n"), Contains("--userscriptTimeout"));
    }
    SECTION("a huge allocation at load") {
        // Only the heap can end it: filling 64 MiB takes more than a second on a loaded machine.
        script::limits roomy = quick();
        roomy.call_timeout = std::chrono::seconds(300);
        CHECK_THAT(load_error(d, "const a = []; for (;;) a.push(new Array(1e6).fill(1.5));\n",
                              "main.ts", roomy),
                   Contains("--userscriptMaxHeap"));
    }
    SECTION("no such script") {
        auto s = script::userscript::load(d.path() / "none.ts", quick());
        REQUIRE_FALSE(s);
        CHECK_THAT(s.error().message(), Contains("none.ts: no such file"));
    }
}

TEST_CASE("userscript: exception positions are the script's own", "[userscript]") {
    script_dir d;
    CHECK_THAT(load_error(d, "\n\nthrow new Error('x');\n", "main.js"), Contains("main.js:3:"));
    CHECK_THAT(
        load_error(d, "type T = { a: number };\n\nconst t: T = { a: 1 };\nthrow new Error('x');\n"),
        Contains("main.ts:4:"));
}

TEST_CASE("userscript: modules text and JSON imports", "[userscript]") {
    script_dir d;
    d.write("lib/names.ts", "export const SKIP: string = 'audit_logs';\n");
    d.write("lib/greeting.txt", "Hello World!\n");
    d.write("lib/config.json", R"({"label": "json"})");
    auto s = load(d, header + R"(
import { SKIP } from "./lib/names";
import greeting from "./lib/greeting.txt";
import config from "./lib/config.json";
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => (meta.table === SKIP ? null : { ...row, name: greeting.trim() + " " + config.label }),
  onRowDelete: (row) => row,
});
)");
    CHECK(run(*s, body({{"audit_logs", "[1]", R"({"id":1})"}, {"items", "[2]", R"({"id":2})"}})) ==
          std::vector<std::string>{R"(items [2] {id:2,name:Hello World! json})"});
}

TEST_CASE("userscript: handler failures name the script handler table and key", "[userscript]") {
    script_dir d;
    SECTION("an exception") {
        auto s = load(d, header + R"(
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (row.id === "2") throw new Error("boom");
    return row;
  },
  onRowDelete: (row) => row,
});
)");
        const std::string e =
            run_error(*s, body({{"items", "[1]", R"({"id":1})"}, {"items", "[2]", R"({"id":2})"}}));
        CHECK_THAT(e, Contains("main.ts") && Contains("onRowUpsert") && Contains("items") &&
                          Contains(R"(["2"])") && Contains("Error: boom") &&
                          Contains("main.ts:6:"));
    }
    SECTION("wrong return types") {
        auto s = load(d, header + R"(
api.configureTargetSchema(TARGET_SCHEMA_NAME, { onRowUpsert: () => "x", onRowDelete: (r) => r });
api.configureTargetTables(["tbl1"], { onRowDelete: () => ["1", "2"] });
)");
        CHECK_THAT(run_error(*s, body({{"items", "[1]", R"({"id":1})"}})),
                   Contains("returned a string") && Contains("onRowUpsert"));
        CHECK_THAT(run_error(*s, body({{"tbl1", "[1]", ""}})),
                   Contains("returned 2 key values, but table tbl1 has 1 primary key columns"));
    }
    SECTION("a row without its key, and a table the target lacks") {
        auto s = load(d, header + R"(
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) =>
    meta.table === "items" ? { name: "x" } : meta.table === "tbl2" ? { tbl1: [{ x: 1 }] } : { nowhere: [row] },
  onRowDelete: (r) => r,
});
)");
        // Back to its own table, a row keeps the incoming key (a column family's message has
        // its key columns only there); to another table it needs them.
        CHECK(run(*s, body({{"items", "[1]", R"({"id":1})"}})) ==
              std::vector<std::string>{R"(items [1] {name:x})"});
        CHECK_THAT(run_error(*s, body({{"tbl2", "[1]", R"({"id":1})"}})),
                   Contains("returned a row for table tbl1 without its primary key column id"));
        CHECK_THAT(run_error(*s, body({{"tbl1", "[1]", R"({"id":1})"}})),
                   Contains("table nowhere, which target schema defaultdb.public does not have"));
    }
    SECTION("an endless loop in a handler, then the script still runs") {
        auto s = load(d, header + R"(
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row) => { if (row.id === "1") for (;;) {} return row; },
  onRowDelete: (r) => r,
});
)");
        const std::string e =
            run_error(*s, body({{"items", "[1]", R"({"id":1})"}}), errc::unavailable);
        CHECK_THAT(
            e, Contains("onRowUpsert") && Contains(R"(["1"])") && Contains("--userscriptTimeout"));
        CHECK(run(*s, body({{"items", "[2]", R"({"id":2})"}})) ==
              std::vector<std::string>{R"(items [2] {id:2})"});
    }
}

TEST_CASE("userscript: rows table-level handlers refuse are listed when asked", "[userscript]") {
    script_dir d;
    auto s = load(d, header + R"(
api.configureTargetTables(["items"], {
  onRowUpsert: (row) => {
    if (row.id === "2") throw new Error("boom");
    if (row.id === "3") return "x";
    if (row.id === "5") for (;;) {}
    if (row.id === "6") return (async () => { throw new Error("later"); })();
    return row;
  },
  onRowDelete: (keys) => keys,
});
)");
    const schema_snapshot schema = examples_schema();
    auto decoded = proto::decode_webhook(body({{"tbl1", "[9]", R"({"id":9})"},
                                               {"items", "[1]", R"({"id":1})"},
                                               {"items", "[2]", R"({"id":2})"},
                                               {"items", "[3]", R"({"id":3})"},
                                               {"items", "[6]", R"({"id":6})"},
                                               {"items", "[4]", ""}}));
    REQUIRE(decoded);
    SECTION("listed: the others pass") {
        std::vector<refused_row> refused;
        auto out = s->run(schema.schema, schema, decoded->rows, script::table_phase, std::nullopt,
                          &refused);
        REQUIRE(out);
        size_t rows = 0;
        for (const auto& t : out->tables()) {
            rows += t.mutations.size();
        }
        CHECK(rows == 3);  // tbl1 [9], items [1] and the delete of [4]
        REQUIRE(refused.size() == 3);
        const auto& items = decoded->rows.tables()[refused[0].group];
        CHECK(items.topic == "items");
        CHECK(items.mutations[refused[0].index].key == "[2]");
        CHECK_THAT(refused[0].why, Contains("main.ts: onRowUpsert") && Contains("onRowUpsert") &&
                                       Contains(R"(key ["2"] failed: Error: boom)"));
        CHECK(refused[1].group == refused[0].group);
        CHECK(items.mutations[refused[1].index].key == "[3]");
        CHECK_THAT(refused[1].why, Contains("returned a string"));
        // An async handler's rejection is its refusal, not an unhandled one failing the call.
        CHECK(items.mutations[refused[2].index].key == "[6]");
        CHECK_THAT(refused[2].why, Contains("returned a Promise"));
    }
    SECTION("not asked: the first refusal fails the run") {
        auto out = s->run(schema.schema, schema, decoded->rows, script::table_phase);
        REQUIRE_FALSE(out);
        CHECK_THAT(out.error().message(), Contains("Error: boom"));
    }
    SECTION("the time limit is never a row's refusal") {
        auto endless = proto::decode_webhook(body({{"items", "[5]", R"({"id":5})"}}));
        REQUIRE(endless);
        std::vector<refused_row> refused;
        auto out = s->run(schema.schema, schema, endless->rows, script::table_phase, std::nullopt,
                          &refused);
        REQUIRE_FALSE(out);
        CHECK(out.error().code() == errc::unavailable);
        CHECK(refused.empty());
    }
}

TEST_CASE("userscript: without esbuild the error says what to install", "[userscript]") {
    script_dir d;
    const fs::path file = d.write("main.ts", "export {};\n");
    const std::string path = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
    ::setenv("PATH", d.path().c_str(), 1);
    auto s = script::userscript::load(file, quick());
    ::setenv("PATH", path.c_str(), 1);
    REQUIRE_FALSE(s);
    CHECK_THAT(s.error().message(),
               Contains("esbuild is not on PATH") && Contains("apt-get install esbuild"));
}

TEST_CASE("userscript: promises run and a returned promise is refused", "[userscript]") {
    script_dir d;
    auto s = load(d, header + R"(
let ready = "no";
Promise.resolve().then(() => { ready = "yes"; });
(async () => { await null; ready += "!"; })();
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row) => {
    if (row.id === "2") return Promise.resolve(row);
    Promise.resolve().then(() => {});
    return { ...row, name: ready };
  },
  onRowDelete: (row) => row,
});
)");
    CHECK(run(*s, body({{"items", "[1]", R"({"id":1})"}})) ==
          std::vector<std::string>{R"(items [1] {id:1,name:yes!})"});
    CHECK_THAT(run_error(*s, body({{"items", "[2]", R"({"id":2})"}})),
               Contains("returned a Promise"));
}

TEST_CASE("userscript: column families keep their topic and key", "[userscript]") {
    script_dir d;
    auto s = load(d, header + R"(
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => (meta.table === "audit" ? null : { ...row, seen: meta.table }),
  onRowDelete: (row) => row,
});
)");
    CHECK(run(*s, body({{"items.fam", "[1]", R"({"name":"a"})"},
                        {"audit.fam", "[2]", R"({"x":1})"},
                        {"defaultdb.public.audit", "[3]", R"({"x":1})"}})) ==
          std::vector<std::string>{R"(items.fam [1] {name:a,seen:items})"});
}

TEST_CASE("userscript: values and keys keep their exact text", "[userscript]") {
    script_dir d;
    auto s = load(d, header + R"(
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (row.id === "5") return { ...row, id: Number(row.id) };
    if (row.id === "6") return { ...row, id: 7 };
    return row;
  },
  onRowDelete: (row) => row,
});
)");
    // INT8[] elements past 2^53 and a JSONB number pass through exact; a key the handler
    // returns as a number or a string has the incoming text when it reads the same.
    CHECK(
        run(*s, body({{"arrays", "[1]", R"({"id":1,"vals":[9007199254740993,-2],"doc":{"n":1.5}})"},
                      {"arrays", "[2]", R"({"id":2,"doc":9007199254740993})"},
                      {"arrays", "[5]", R"({"id":5})"},
                      {"arrays", "[6]", R"({"id":6})"}})) ==
        std::vector<std::string>{
            R"(arrays [1] {id:1,vals:["9007199254740993","-2"],doc:{"n":1.5}})",
            R"(arrays [2] {id:2,doc:9007199254740993})", R"(arrays [5] {id:5})",
            R"(arrays ["7"] {id:7})"});
}

TEST_CASE("userscript: the memory limit holds against a catching script", "[userscript]") {
    script_dir d;
    script::limits roomy;
    roomy.call_timeout = std::chrono::seconds(20);
    roomy.heap_bytes = size_t{16} << 20;
    auto loaded = script::userscript::load(d.write("main.ts", header + R"(
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row) => {
    const kept = [];
    // Objects fill SpiderMonkey's own heap; array elements are malloc()ed beside it.
    const make = row.id === "1" ? () => ({ a: kept.length }) : () => new Array(1000).fill(kept.length);
    try { for (;;) kept.push(make()); } catch (e) { return row; }
  },
  onRowDelete: (row) => row,
});
)"),
                                           roomy);
    REQUIRE(loaded);
    auto& s = *loaded;
    CHECK_THAT(run_error(*s, body({{"items", "[1]", R"({"id":1})"}}), errc::unavailable),
               Contains("--userscriptMaxHeap"));
    CHECK_THAT(run_error(*s, body({{"items", "[2]", R"({"id":2})"}}), errc::unavailable),
               Contains("--userscriptMaxHeap"));
    CHECK(run(*s, body({{"items", "[3]", ""}})) == std::vector<std::string>{R"(items [3] delete)"});
}

TEST_CASE("userscript: a symbolic link out of the folder is refused", "[userscript]") {
    script_dir d;
    fs::create_directory_symlink("/etc", d.path() / "outside");
    CHECK_THAT(load_error(d, "import t from './outside/hostname.txt';\nconsole.log(t);\n"),
               Contains("outside the script's folder"));
}

// replicator@v1's vectors (../shared/spec/userscripts.md §3, "v1 vectors").
TEST_CASE("userscript v1: configureSource target dispatch and deletesTo", "[userscript]") {
    script_dir d;
    SECTION("passthrough to one table") {
        auto s = load(d, R"(
import * as api from "replicator@v1";
api.configureSource("defaultdb.public", { target: "tbl1" });
)");
        CHECK(run(*s, body({{"anything", "[1]", R"({"id":1})"}, {"anything", "[2]", ""}})) ==
              std::vector<std::string>{R"(tbl1 [1] {id:1})", R"(tbl1 [2] delete)"});
    }
    SECTION("the expander") {
        auto s = load(d, R"(
import * as api from "replicator@v1";
api.configureSource("defaultdb.public", {
  dispatch: (doc, meta) => ({
    table1: [{ dest: "table1", msg: doc.msg }],
    table2: [{ dest: "table2", idx: 0, msg: doc.msg }, { dest: "table2", idx: 1, msg: doc.msg }],
  }),
  deletesTo: (doc, meta) => ({ table1: [doc], table2: [{ idx: 42 }] }),
});
)");
        CHECK(run(*s, body({{"expander", R"(["key"])", R"({"msg":true,"idx":0})"}})) ==
              std::vector<std::string>{R"(table1 [true] {dest:table1,msg:true})",
                                       R"(table2 ["0"] {dest:table2,idx:0,msg:true})",
                                       R"(table2 ["1"] {dest:table2,idx:1,msg:true})"});
        CHECK(run(*s, body({{"table1", R"(["key"])", ""}})) ==
              std::vector<std::string>{R"(table1 ["key"] delete)", R"(table2 ["42"] delete)"});
    }
    SECTION("a delete of a table the target lacks carries its key") {
        auto s = load(d, R"(
import * as api from "replicator@v1";
api.configureSource("defaultdb.public", {
  dispatch: (doc) => null,
  deletesTo: (doc, meta) => {
    if (JSON.stringify(doc) !== '{"__REPLICATION_KEY__":["key"]}') throw new Error(JSON.stringify(doc));
    return { tbl1: [doc] };
  },
});
)");
        CHECK(run(*s, body({{"not_in_target_schema", R"(["key"])", ""}})) ==
              std::vector<std::string>{R"(tbl1 ["key"] delete)"});
    }
    SECTION("partitions routed by meta.table, meta as v1 gives it") {
        auto s = load(d, R"(
import * as api from "cdc-sink@v1";
api.configureSource("defaultdb.public", {
  dispatch: (doc, meta) => {
    if (meta["defaultdb.public"] !== true || meta.nanos !== "101" || meta.logical !== 0) return null;
    return { [meta.table.replace(/_[0-9]+$/, "")]: [doc] };
  },
  deletesTo: "partitioned_target",
});
)");
        CHECK(run(*s, body({{"partitioned_target_1234", "[7]", R"({"id":7})"},
                            {"partitioned_target_1234", "[7]", R"({"id":7})"}})) ==
              std::vector<std::string>{R"(partitioned_target [7] {id:7})"});
    }
}

TEST_CASE("userscript v1: configureTable map deleteKey and ignore", "[userscript]") {
    script_dir d;
    auto s = load(d, R"(
import * as api from "replicator@v1";
api.configureSource("defaultdb.public", { dispatch: (doc) => ({ T_1: [doc] }), deletesTo: "T_1" });
api.configureTable("t_1", { map: (doc) => (doc.pk === "3" ? null : { ...doc, v: "cowbell", extra: "x" }), ignore: { extra: true } });
api.configureTable("tbl1", { deleteKey: () => null });
api.configureTable("defaultdb.public.pairs", { deleteKey: (key) => [key[1], key[0]] });
)");
    CHECK(run(*s, body({{"src", "[1]", R"({"pk":1,"v":"x"})"}, {"src", "[3]", R"({"pk":3})"}})) ==
          std::vector<std::string>{R"(t_1 [1] {pk:1,v:cowbell})"});
    auto decoded = proto::decode_webhook(body({{"tbl1", "[1]", ""}, {"pairs", "[1,2]", ""}}));
    REQUIRE(decoded);
    const schema_snapshot schema = examples_schema();
    auto out = s->run(schema.schema, schema, decoded->rows, script::table_phase);
    REQUIRE(out);
    REQUIRE(out->tables().size() == 1);
    CHECK(out->tables()[0].mutations[0].key == R"(["2","1"])");
}

TEST_CASE("userscript v1: rowLimit extras and exprs configure the built-in writer",
          "[userscript]") {
    script_dir d;
    auto s = load(d, R"(
import * as api from "replicator@v1";
api.configureTable("items", { rowLimit: 1 });
api.configureTable("defaultdb.public.orders", { rowLimit: 3, extras: "Status_Description", exprs: { PRICE: "$0 || $0", total: "'fixed'" } });
api.configureTable("otherdb.public.t_1", { rowLimit: 9 });
api.configureTable("pairs", { extras: "nowhere" });
api.configureTable("tbl1", { exprs: { id: "$0" } });
api.configureTable("tbl1", { map: (doc) => doc });
api.configureTable("employees", { cas: ["department", "EMPLOYEE_NAME"], deadlines: { hired: "1h30m", HIRED_DAY: "250ms" } });
api.configureTable("tbl3", { cas: ["id"] });
api.configureTable("audit_logs", { cas: ["msg", "MSG"] });
api.configureTable("CUSTOMERS", { deadlines: { name: "1h" } });
api.configureTable("tbl2", { extras: "id" });
)");
    schema_snapshot schema = examples_schema();
    s->configure(schema, molt::dialect::postgres);
    const table_info& orders = *schema.find_table("orders");
    CHECK(schema.find_table("items")->row_limit == 1);
    CHECK(orders.row_limit == 3);
    CHECK(orders.extras == orders.column_index("status_description"));
    CHECK(orders.find_column("price")->expr == "$0 || $0");
    CHECK(value_params(*orders.find_column("price")) == 2);
    CHECK(orders.find_column("total")->expr == "'fixed'");
    CHECK(value_params(*orders.find_column("total")) == 0);
    CHECK(value_params(*orders.find_column("qty")) == 1);
    CHECK(orders.options_error.empty());
    // Another schema's table, and a later call for the table without options: the defaults.
    CHECK(schema.find_table("t_1")->row_limit == 0);
    CHECK(schema.find_table("tbl1")->find_column("id")->expr.empty());
    const table_info& employees = *schema.find_table("employees");
    CHECK(employees.cas == std::vector<size_t>{2, 1});
    CHECK(employees.deadlines ==
          std::vector<std::pair<size_t, int64_t>>{{3, 5'400'000'000}, {4, 250'000}});
    CHECK(employees.options_error.empty());
    CHECK_THAT(schema.find_table("tbl3")->options_error,
               Contains("cas names column \"id\", which is in the primary key"));
    CHECK_THAT(schema.find_table("audit_logs")->options_error,
               Contains("cas names column \"MSG\" twice"));
    CHECK_THAT(schema.find_table("customers")->options_error,
               Contains("deadlines names column \"name\", which is not a date or timestamp"));
    CHECK_THAT(schema.find_table("tbl2")->options_error,
               Contains("extras names column \"id\", which is in the primary key"));
    CHECK_THAT(schema.find_table("pairs")->options_error,
               Contains("configureTable(\"pairs\"): extras names column \"nowhere\", which the "
                        "table does not have (table defaultdb.public.pairs)"));
    // A number for the extras column goes through the script's handlers a number when they
    // leave it as it came (without extras, numbers come back as their text).
    auto decoded = proto::decode_webhook(body(
        {{"orders", R"(["1","EU"])", R"({"id":"1","region_code":"EU","size":3,"weight":2.50})"}}));
    REQUIRE(decoded);
    for (const bool with_extras : {true, false}) {
        const schema_snapshot plain = examples_schema();
        const schema_snapshot& target = with_extras ? schema : plain;
        auto out = s->run(target.schema, target, decoded->rows, script::table_phase);
        REQUIRE(out);
        REQUIRE(out->tables().size() == 1);
        std::string kinds;
        for (const auto& c : out->tables()[0].mutations[0].after) {
            kinds += std::string(c.name) + "=" + std::string(c.val.text) +
                     (c.val.kind == proto::value_kind::number ? "#" : "") + " ";
        }
        CHECK(kinds == (with_extras ? "id=1 region_code=EU size=3# weight=2.50# "
                                    : "id=1 region_code=EU size=3 weight=2.50 "));
    }

    schema_snapshot on_oracle = examples_schema();
    s->configure(on_oracle, molt::dialect::oracle);
    CHECK_THAT(on_oracle.find_table("orders")->options_error,
               Contains("exprs are not supported on Oracle targets"));
    CHECK(on_oracle.find_table("items")->options_error.empty());
    CHECK_THAT(on_oracle.find_table("employees")->options_error,
               Contains("cas and deadlines are not supported on Oracle targets"));

    CHECK_THAT(load_error(d,
                          "import * as api from 'replicator@v1';\napi.configureTable('t', "
                          "{rowLimit: 0});\n"),
               Contains("configureTable(\"t\"): rowLimit must be a whole number of rows"));
    CHECK_THAT(load_error(d,
                          "import * as api from 'replicator@v1';\napi.configureTable('t', "
                          "{exprs: {v: 5}});\n"),
               Contains("exprs.v must be an SQL expression"));
    CHECK_THAT(load_error(d,
                          "import * as api from 'replicator@v1';\napi.configureTable('t', "
                          "{extras: ''});\n"),
               Contains("extras must name a column"));
    CHECK_THAT(load_error(d,
                          "import * as api from 'replicator@v1';\napi.configureTable('t', "
                          "{deadlines: {ts: '1 hour'}});\n"),
               Contains("deadlines.ts must be a positive duration such as \"1h\""));
    CHECK_THAT(load_error(d,
                          "import * as api from 'replicator@v1';\napi.configureTable('t', "
                          "{cas: 'v'});\n"),
               Contains("cas must be an array of column names"));
}

TEST_CASE("userscript v1: configureSource needs a target and randomUUID is fresh", "[userscript]") {
    script_dir d;
    CHECK_THAT(
        load_error(d, "import * as api from 'replicator@v1';\napi.configureSource('x', {});\n"),
        Contains("one of mapper or target must be set"));
    CHECK_THAT(load_error(d,
                          "import * as api from 'replicator@v1';\napi.configureSource('x', "
                          "{dispatch: () => null});\n"),
               Contains("dispatch needs deletesTo"));
    auto s = load(d, R"(
import * as api from "replicator@v1";
const id = api.randomUUID();
if (!/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id) || id === api.randomUUID()) {
  throw new Error("not a fresh v4 UUID: " + id);
}
)");
    CHECK_FALSE(s->handles_schema(qualified_name{{"defaultdb", "public"}}));
}

// The resolutions of `merge` for one conflict of table items (key [1]; the target's row is
// {id 1, name "t", price "5", qty "1"}), "apply <row>", "dlq <name>" or "drop"; or the error.
std::string resolve_one(const schema_snapshot& schema, const std::string& table,
                        const std::string& before, const std::string& proposed,
                        const std::string& target) {
    const table_info& t = *schema.find_table(table);
    REQUIRE(t.merger);
    auto out = t.merger->resolve(schema.schema, t, {{"[\"1\"]", before, proposed, target}});
    if (!out) {
        return out.error().message();
    }
    REQUIRE(out->size() == 1);
    const merge_resolution& r = out->front();
    return r.type == merge_resolution::kind::apply ? "apply " + r.value
           : r.type == merge_resolution::kind::dlq ? "dlq " + r.value
                                                   : std::string("drop");
}

TEST_CASE("userscript v1: merge and standardMerge resolve the rows cas did not write",
          "[userscript]") {
    script_dir d;
    auto s = load(d, R"(
import * as api from "replicator@v1";
api.configureTable("items", { cas: ["qty"], merge: api.standardMerge() });
api.configureTable("measures", { cas: ["flag"], merge: api.standardMerge() });
api.configureTable("audit_logs", { cas: ["msg"], merge: api.standardMerge((op) => ({ apply: { msg: op.unmerged.join("+") + ":" + op.target.msg } })) });
api.configureTable("tbl1", { cas: ["id2"] });
api.configureTable("pairs", { cas: ["name"], merge: (op) => {
  switch (op.proposed.name) {
    case "dlq": return { dlq: "later" };
    case "drop": return { drop: true };
    case "five": return 5;
    case "two": return { drop: true, dlq: "x" };
    case "key": return { apply: { id2: "7" } };
    case "throw": throw new Error("no way for " + op.target.name);
    case "async": return Promise.resolve({ drop: true });
    default: return { apply: { name: op.target.name + "/" + op.proposed.name + "/" + (op.before === undefined ? "none" : op.before.name) } };
  }
} });
)");
    schema_snapshot schema = examples_schema();
    s->configure(schema, molt::dialect::postgres, "my_dlq");
    const table_info& items = *schema.find_table("items");
    REQUIRE(items.merger);
    CHECK(items.merger->dlq_table() == "my_dlq");
    CHECK_FALSE(schema.find_table("tbl1")->merger);

    // standardMerge: a column only the batch changed is taken (price; qty too: in a text
    // column "1.0" is not "1"), one only the target changed is kept (name).
    CHECK(resolve_one(schema, "items", R"({"id":"1","name":"b","price":"4","qty":"1"})",
                      R"({"id":"1","name":"b","price":"6","qty":"1.0"})",
                      R"({"id":"1","name":"t","price":"4","qty":"1"})") ==
          R"(apply {"id":"1","name":"t","price":"6","qty":"1.0"})");
    // Values compared by their column's type: a numeric 1.50 is 1.5, a timestamp 1 µs later is
    // another, documents whatever their keys' order, a BOOL true is MySQL's 1.
    CHECK(resolve_one(schema, "measures",
                      R"({"id":"1","amount":"1.5","at":"2024-01-01T00:00:00.123456Z",)"
                      R"("doc":{"a":1,"b":2},"flag":true})",
                      R"({"id":"1","amount":"1.50","at":"2024-01-01T00:00:00.123457Z",)"
                      R"("doc":{"b":2,"a":1},"flag":true})",
                      R"({"id":"1","amount":"1.5","at":"2024-01-01 01:00:00.123456+01:00",)"
                      R"("doc":{"a":1,"b":2,"c":3},"flag":"1"})") ==
          R"(apply {"id":"1","amount":"1.5","at":"2024-01-01T00:00:00.123457Z",)"
          R"("doc":{"a":1,"b":2,"c":3},"flag":"1"})");
    // Exponents are read exactly (not as doubles); offsets without colons, no fraction. Only
    // the columns the batch writes are written.
    CHECK(resolve_one(schema, "measures",
                      R"({"id":"1","amount":"12345678901234567890","at":"2024-01-01T00:00:00Z"})",
                      R"({"id":"1","amount":"1.2345678901234567891E+19",)"
                      R"("at":"2024-01-01T00:00:01Z"})",
                      R"({"id":"1","amount":"12345678901234567890",)"
                      R"("at":"2023-12-31 16:00:00-0800","doc":null,"flag":"0"})") ==
          R"(apply {"id":"1","amount":"1.2345678901234567891E+19","at":"2024-01-01T00:00:01Z"})");
    // Without the row before (no diff): as the original, the target's row is kept.
    CHECK(resolve_one(schema, "items", "null", R"({"id":"1","name":"b","price":"6","qty":"1"})",
                      R"({"id":"1","name":"t","price":"4","qty":"1"})") ==
          R"(apply {"id":"1","name":"t","price":"4","qty":"1"})");
    // Both changed price, without a fallback: an error naming the column.
    CHECK_THAT(resolve_one(schema, "items", R"({"id":"1","name":"b","price":"4","qty":"1"})",
                           R"({"id":"1","name":"b","price":"6","qty":"1"})",
                           R"({"id":"1","name":"b","price":"5","qty":"1"})"),
               Contains("standardMerge cannot merge column price"));
    // No target row (deleted since): the proposed row.
    CHECK(resolve_one(schema, "items", "null", R"({"id":"1","name":"b","price":"6","qty":"1"})",
                      "{}") == R"(apply {"id":"1","name":"b","price":"6","qty":"1"})");
    // The fallback sees the unmerged columns.
    CHECK(resolve_one(schema, "audit_logs", R"({"id":"1","msg":"a"})", R"({"id":"1","msg":"b"})",
                      R"({"id":"1","msg":"c"})") == R"(apply {"id":"1","msg":"msg:c"})");

    // A merge function: apply is laid over the proposed row; before is undefined without one.
    const std::string target = R"({"id1":"1","id2":"2","name":"t"})";
    auto pairs = [&](const std::string& name, const std::string& before = "null") {
        return resolve_one(schema, "pairs", before,
                           R"({"id1":"1","id2":"2","name":")" + name + "\"}", target);
    };
    CHECK(pairs("p") == R"(apply {"id1":"1","id2":"2","name":"t/p/none"})");
    CHECK(pairs("p", R"({"id1":"1","id2":"2","name":"b"})") ==
          R"(apply {"id1":"1","id2":"2","name":"t/p/b"})");
    CHECK(pairs("dlq") == "dlq later");
    CHECK(pairs("drop") == "drop");
    CHECK_THAT(pairs("five"), Contains("merge of configureTable on table pairs, key [\"1\"]") &&
                                  Contains("expected a MergeResult"));
    CHECK_THAT(pairs("two"), Contains("one of apply, dlq or drop"));
    CHECK_THAT(pairs("key"), Contains("changes key column id2"));
    CHECK_THAT(pairs("throw"), Contains("no way for t") && Contains("pairs"));
    CHECK_THAT(pairs("async"), Contains("returned a Promise"));

    // Oracle: refused with the cas it needs.
    schema_snapshot on_oracle = examples_schema();
    s->configure(on_oracle, molt::dialect::oracle);
    CHECK_THAT(on_oracle.find_table("items")->options_error,
               Contains("cas and deadlines are not supported on Oracle targets"));
    CHECK_FALSE(on_oracle.find_table("items")->merger);

    CHECK_THAT(load_error(d,
                          "import * as api from 'replicator@v1';\napi.configureTable('t', {merge: "
                          "() => ({ drop: true })});\n"),
               Contains("configureTable(\"t\"): merge needs cas"));
    CHECK_THAT(load_error(d,
                          "import * as api from 'replicator@v1';\napi.configureTable('t', {cas: "
                          "['v'], merge: 'mine'});\n"),
               Contains("merge must be a function or standardMerge()"));
    CHECK_THAT(load_error(d, "import * as api from 'replicator@v1';\napi.standardMerge(3);\n"),
               Contains("standardMerge: the fallback must be a merge function"));
}

TEST_CASE("userscript v1: setOptions records flags while the script loads", "[userscript]") {
    script_dir d;
    auto s = load(d, R"(
import * as api from "replicator@v1";
api.setOptions({ hello: "world", flushSize: 7, immediate: true });
api.setOptions({ hello: "again" });
)");
    // In order, values as text; names are checked by replicator start (unknown option).
    using option = std::pair<std::string, std::string>;
    CHECK(s->options() ==
          std::vector<option>{
              {"hello", "world"}, {"flushSize", "7"}, {"immediate", "true"}, {"hello", "again"}});
    CHECK_THAT(
        load_error(d, "import * as api from 'replicator@v1';\napi.setOptions({a: null});\n"),
        Contains("setOptions: option \"a\" must be a string (or a number or boolean), not null"));
    CHECK_THAT(load_error(d, "import * as api from 'replicator@v1';\napi.setOptions('a=b');\n"),
               Contains("setOptions: the argument must be an object"));
    auto none = load(d, "import * as api from 'replicator@v1';\n");
    CHECK(none->options().empty());
    // Only while the script loads: a handler that calls it fails its row.
    auto late = load(d, R"(
import * as api from "replicator@v1";
api.configureTable("tbl1", { map: (doc) => { api.setOptions({ flushSize: "1" }); return doc; } });
)");
    auto decoded = proto::decode_webhook(body({{"tbl1", "[1]", R"({"id":1})"}}));
    REQUIRE(decoded);
    const schema_snapshot schema = examples_schema();
    auto out = late->run(schema.schema, schema, decoded->rows, script::table_phase);
    REQUIRE_FALSE(out);
    CHECK_THAT(out.error().message(),
               Contains("setOptions can only be called while the script loads"));
    CHECK(late->options().empty());
}

TEST_CASE("userscript: keys and JSON values keep their exact text through a script",
          "[userscript]") {
    script_dir d;
    auto s = load(d, header + R"(
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => (meta.table === "tbl3x" ? { tbl1: [row] } : row),
  onRowDelete: (row) => row,
});
)");
    // "$&" and friends in a key; a JSONB document with a number past 2^53 and a 1.50; a bare
    // JSONB number; the same through a table the target lacks, routed to one it has.
    CHECK(run(*s, body({{"items", R"(["a$$b$&c$'d"])", R"({"id":"a$$b$&c$'d"})"},
                        {"arrays", "[2]", R"({"id":2,"doc":{"n":9007199254740993,"p":1.50}})"},
                        {"arrays", "[3]", R"({"id":3,"doc":12.50})"}})) ==
          std::vector<std::string>{R"(items ["a$$b$&c$'d"] {id:a$$b$&c$'d})",
                                   R"(arrays [2] {id:2,doc:{"n":9007199254740993,"p":1.50}})",
                                   R"(arrays [3] {id:3,doc:12.50})"});
    CHECK(run(*s, body({{"tbl3x", "[4]", R"({"id":4,"extra":{"big":9007199254740993}})"}})) ==
          std::vector<std::string>{R"(tbl1 [4] {id:4,extra:{"big":9007199254740993}})"});
}

TEST_CASE("userscript: a key of another shape stays the changefeed's", "[userscript]") {
    script_dir d;
    auto s = load(d, header + R"(
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row) => row,
  onRowDelete: (row, meta) => {
    if (row.id !== undefined) throw new Error("the region became the id: " + row.id);
    return row;
  },
});
)");
    // A REGIONAL BY ROW source keys items by (region, id); the target by id alone. The key
    // goes on as it came, for the applier to refuse as without a script (schema drift).
    CHECK(run(*s, body({{"items", R"(["us-east1",5])", ""}})) ==
          std::vector<std::string>{R"(items ["us-east1",5] delete)"});
}

TEST_CASE("userscript: undefined columns are NULL and partial keys are refused", "[userscript]") {
    script_dir d;
    auto s = load(d, header + R"(
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row) => (row.id === "1" ? { ...row, name: undefined } : { region_code: "EU", x: 1 }),
  onRowDelete: (row) => row,
});
)");
    CHECK(run(*s, body({{"items", "[1]", R"({"id":1,"name":"a"})"}})) ==
          std::vector<std::string>{R"(items [1] {id:1,name:null})"});
    CHECK_THAT(run_error(*s, body({{"orders", R"([2,"US"])", R"({"id":2,"region_code":"US"})"}})),
               Contains("without its primary key column id"));
}

TEST_CASE("userscript: promise failures fail the call and leave nothing queued", "[userscript]") {
    script_dir d;
    SECTION("an async configuration that throws at load") {
        CHECK_THAT(load_error(d, header + R"(
(async () => {
  await null;
  throw new Error("late");
})();
)"),
                   Contains("a promise was rejected and nothing handled it: late"));
    }
    SECTION("an endless promise job, then the script runs on") {
        auto s = load(d, header + R"(
api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row) => {
    if (row.id === "1") { Promise.resolve().then(() => { for (;;) {} }); Promise.resolve().then(() => { for (;;) {} }); }
    if (row.id === "2") Promise.reject(new Error("dropped"));
    return row;
  },
  onRowDelete: (row) => row,
});
)");
        CHECK_THAT(run_error(*s, body({{"items", "[1]", R"({"id":1})"}}), errc::unavailable),
                   Contains("--userscriptTimeout"));
        CHECK_THAT(run_error(*s, body({{"items", "[2]", R"({"id":2})"}})),
                   Contains("a promise was rejected and nothing handled it: dropped"));
        CHECK(run(*s, body({{"items", "[3]", R"({"id":3})"}})) ==
              std::vector<std::string>{R"(items [3] {id:3})"});
    }
}

namespace {

// A transaction for the write conversation without a database: it records what the script asks
// for and answers queries from `answers` (by SQL text); `refuse` fails statements containing
// it with `refusal`. The real statements run in test/e2e/userscript_test.sh.
class recording_host final : public script::write_host {
public:
    std::vector<std::string> log;  // "query <sql> [params]", "exec …", "write <topic> <key> …"
    std::map<std::string, std::vector<sql_row>> answers;
    std::string refuse;
    error refusal{errc::database_error, "refused (SQLSTATE 23502)", retry_class::fatal};
    bool usable_after_failure = true;
    bool failed = false;

    result<std::vector<sql_row>> run(const script::write_request& r) override {
        if (r.type == script::write_request::kind::write) {
            auto decoded = proto::decode_webhook(r.body);
            REQUIRE(decoded);
            for (const auto& t : decoded->rows.tables()) {
                for (const auto& m : t.mutations) {
                    std::string line = "write " + std::string(t.topic) + " " + std::string(m.key);
                    line += m.deleted ? " delete" : " upsert";
                    for (const auto& c : m.after) {
                        line += " " + std::string(c.name) + "=" + std::string(c.val.text);
                    }
                    log.push_back(line);
                }
            }
        } else {
            std::string line = r.type == script::write_request::kind::query ? "query " : "exec ";
            line += r.sql;
            for (const auto& p : r.params) {
                line += " [" + p.value_or("NULL") + "]";
            }
            log.push_back(line);
        }
        const std::string text = r.type == script::write_request::kind::write ? r.body : r.sql;
        if (!refuse.empty() && text.find(refuse) != std::string::npos) {
            failed = true;
            return refusal;
        }
        if (auto it = answers.find(r.sql); it != answers.end()) {
            return it->second;
        }
        return std::vector<sql_row>();
    }
    result<void> usable() override {
        if (usable_after_failure) {
            return ok();
        }
        return error{errc::database_error, "current transaction is aborted (SQLSTATE 25P02)",
                     retry_class::fatal};
    }
};

result<void> write_rows(const script::userscript& s, const std::string& body,
                        script::write_host& host,
                        std::chrono::milliseconds budget = std::chrono::seconds(10)) {
    auto decoded = proto::decode_webhook(body);
    REQUIRE(decoded);
    const schema_snapshot schema = examples_schema();
    return s.write(schema.schema, schema, dialect::postgres, decoded->rows, host,
                   std::chrono::steady_clock::now() + budget);
}

}  // namespace

TEST_CASE("userscript: SQL placeholders become the sessions' own", "[userscript]") {
    auto bound = [](std::string_view sql, dialect d, size_t params) {
        auto b = script::bind_placeholders(sql, d, params);
        REQUIRE(b);
        std::string out = b->sql + " |";
        for (const size_t p : b->order) {
            out += " " + std::to_string(p);
        }
        return out;
    };
    auto refused = [](std::string_view sql, dialect d, size_t params) {
        auto b = script::bind_placeholders(sql, d, params);
        REQUIRE_FALSE(b);
        CHECK(b.error().retry() == retry_class::fatal);
        return b.error().message();
    };
    // Out of order and repeated: each occurrence its own parameter, in the order they appear.
    CHECK(bound("UPDATE t SET v = $2 WHERE id = $1 AND id <= $1", dialect::postgres, 2) ==
          "UPDATE t SET v = :p1 WHERE id = :p2 AND id <= :p3 | 1 0 0");
    CHECK(bound("SELECT '$1', \"a$1\", $$ $1 $$, $q$ $2 $q$, x$1, E'\\' $1', $1::int8 -- $3\n$2",
                dialect::postgres, 2) ==
          "SELECT '$1', \"a$1\", $$ $1 $$, $q$ $2 $q$, x$1, E'\\' $1', :p1::int8 -- $3\n:p2 | 0 1");
    CHECK(bound("INSERT INTO t VALUES (?, '?', `?`, \"it\\\"s ?\", ?) /* ? */ # ?", dialect::mysql,
                2) == "INSERT INTO t VALUES (:p1, '?', `?`, \"it\\\"s ?\", :p2) /* ? */ # ? | 0 1");
    CHECK(bound("SELECT 'it''s ?', ?;  ", dialect::oracle, 1) == "SELECT 'it''s ?', :p1;   | 0");
    CHECK(bound("ROLLBACK TO SAVEPOINT dlq", dialect::postgres, 0) ==
          "ROLLBACK TO SAVEPOINT dlq |");
    CHECK(bound("SELECT 1;\n-- done\n", dialect::postgres, 0) == "SELECT 1;\n-- done\n |");
    CHECK_THAT(refused("SELECT $3", dialect::postgres, 2),
               Contains("$3 has no parameter (2 given)"));
    CHECK_THAT(refused("SELECT $2", dialect::postgres, 2),
               Contains("parameter 1 is given but $1 is not in the statement"));
    CHECK_THAT(refused("SELECT ?, ?", dialect::mysql, 1), Contains("more ? placeholders"));
    CHECK_THAT(refused("SELECT ?", dialect::mysql, 2), Contains("2 parameters given for 1 ?"));
    CHECK_THAT(refused("SELECT $0", dialect::postgres, 0), Contains("count from $1"));
    // What would end the replicator's transaction, and more than one statement.
    for (const char* sql : {"COMMIT", " /* x */ commit work", "ROLLBACK", "begin", "END",
                            "START TRANSACTION", "PREPARE TRANSACTION 'x'", "ABORT"}) {
        CHECK_THAT(refused(sql, dialect::postgres, 0), Contains("would end the replicator's"));
    }
    CHECK_THAT(refused("create table dlq (id int)", dialect::mysql, 0),
               Contains("CREATE would end the replicator's transaction"));
    CHECK_THAT(refused("SET autocommit = 1", dialect::mysql, 0), Contains("SET would end"));
    CHECK(bound("CREATE TEMP TABLE x (id int)", dialect::postgres, 0) ==
          "CREATE TEMP TABLE x (id int) |");
    CHECK_THAT(refused("SELECT 1; COMMIT", dialect::postgres, 0),
               Contains("one statement per call"));
    CHECK_THAT(refused("UPDATE t SET v = 1; DELETE FROM t", dialect::mysql, 0),
               Contains("one statement per call"));
}

TEST_CASE("userscript: configureTargetTables onWrite is told apart", "[userscript]") {
    script_dir d;
    auto s = load(d, header + R"(
api.configureTargetTables(["orders"], { onWrite: async (rows) => { await api.write(rows); } });
api.configureTargetTables(["public.items"], { onRowUpsert: (r) => r });
)");
    const qualified_name schema{{"defaultdb", "public"}};
    CHECK(s->writes(schema));
    CHECK(s->writes(schema, "orders"));
    CHECK(s->writes(schema, "ORDERS"));
    CHECK_FALSE(s->writes(schema, "items"));
    CHECK_FALSE(s->writes(qualified_name{{"db"}}, "items"));
    CHECK_THAT(load_error(d, header + "api.configureTargetTables(['t'], {onWrite: 1});\n"),
               Contains("onWrite is not a function"));
    // getTX() and write() outside onWrite.
    auto outside = load(d, header + R"(
api.configureTargetTables(["items"], { onRowUpsert: (r) => { api.getTX(); return r; } });
)");
    CHECK_THAT(run_error(*outside, body({{"items", "[\"1\"]", R"({"id":"1"})"}})),
               Contains("getTX() can only be called inside onWrite"));
}

TEST_CASE("userscript: A5 onWrite reads and writes in the transaction", "[userscript]") {
    script_dir d;
    auto s = load(d, header + R"(
api.configureTargetTables(["orders"], {
  onWrite: async (rows) => {
    const tx = api.getTX();
    for (const row of rows) {
      if (row.action === "delete") { await api.write([row]); continue; }
      const found = [...await tx.query("SELECT id FROM target_db.target_schema.customers WHERE id = $1", row.data.customer_id)];
      if (found.length === 0) {
        console.warn("Skipping order: missing customer_id", row.data.id);
        continue;
      }
      await api.write([row]);
      await tx.exec("UPDATE target_db.target_schema.customers SET num_orders = COALESCE(num_orders, 0) + 1 WHERE id = $1", row.data.customer_id);
    }
  },
});
)");
    recording_host host;
    host.answers["SELECT id FROM target_db.target_schema.customers WHERE id = $1"] = {
        {std::optional<std::string>("7")}};
    REQUIRE(write_rows(
        *s,
        body({{"orders", R"(["1","US"])", R"({"id":"1","region_code":"US","customer_id":"7"})"},
              {"orders", R"(["2","US"])", ""}}),
        host));
    const std::vector<std::string> want = {
        "query SELECT id FROM target_db.target_schema.customers WHERE id = $1 [7]",
        R"(write orders ["1","US"] upsert id=1 region_code=US customer_id=7)",
        "exec UPDATE target_db.target_schema.customers SET num_orders = COALESCE(num_orders, 0) "
        "+ 1 WHERE id = $1 [7]",
        R"(write orders ["2","US"] delete)"};
    CHECK(host.log == want);
    // The customer is missing: the order is not written.
    recording_host none;
    REQUIRE(write_rows(
        *s,
        body({{"orders", R"(["3","US"])", R"({"id":"3","region_code":"US","customer_id":"8"})"}}),
        none));
    CHECK(none.log.size() == 1);
}

TEST_CASE("userscript: C11 onWrite diverts refused rows with savepoints", "[userscript]") {
    script_dir d;
    auto s = load(d, header + R"(
const DLQ_TABLE = "defaultdb.public.dlq";
const quoted = DLQ_TABLE.split(".").map((p) => `"${p}"`).join(".");
api.configureTargetSchema(TARGET_SCHEMA_NAME, { onRowUpsert: (row) => row, onRowDelete: (row) => row });
api.configureTargetTables(["items"], {
  onWrite: async (rows) => {
    const tx = api.getTX();
    await tx.exec("SAVEPOINT dlq_checkpoint");
    try {
      await api.write(rows);
    } catch (e) {
      if (!e.toString().includes("SQLSTATE 23502")) throw e;
      await tx.exec("ROLLBACK TO SAVEPOINT dlq_checkpoint");
      for (const row of rows) {
        await tx.exec("SAVEPOINT dlq_row");
        try {
          await api.write([row]);
        } catch (err) {
          if (!err.toString().includes("SQLSTATE 23502")) throw err;
          await tx.exec("ROLLBACK TO SAVEPOINT dlq_row");
          await tx.exec(`INSERT INTO ${quoted} (stmt, err) VALUES ($1, $2)`, JSON.stringify(row), err.toString());
        }
      }
    }
  },
});
)");
    recording_host host;
    host.refuse = "\"name\":null";  // the row whose name is NULL
    const std::string rows = body({{"items", R"(["1"])", R"({"id":"1","name":"a"})"},
                                   {"items", R"(["2"])", R"({"id":"2","name":null})"},
                                   {"items", R"(["3"])", R"({"id":"3","name":"c"})"}});
    REQUIRE(write_rows(*s, rows, host));
    REQUIRE(host.log.size() == 13);
    CHECK(host.log[0] == "exec SAVEPOINT dlq_checkpoint");
    CHECK(host.log[4] == "exec ROLLBACK TO SAVEPOINT dlq_checkpoint");
    CHECK(host.log[8] == R"(write items ["2"] upsert id=2 name=)");
    CHECK(host.log[9] == "exec ROLLBACK TO SAVEPOINT dlq_row");
    CHECK_THAT(
        host.log[10],
        Contains(
            R"(INSERT INTO "defaultdb"."public"."dlq" (stmt, err) VALUES ($1, $2) [{"action":"upsert","data":{"id":"2","name":null})"));
    CHECK_THAT(host.log[10], Contains("[Error: refused (SQLSTATE 23502)]"));
    CHECK(host.log[12] == R"(write items ["3"] upsert id=3 name=c)");

    // Another error fails the batch, naming the script, the handler and the table.
    recording_host other;
    other.refuse = "\"name\":null";
    other.refusal =
        error{errc::database_error, "duplicate key (SQLSTATE 23505)", retry_class::unique};
    auto failed = write_rows(*s, rows, other);
    REQUIRE_FALSE(failed);
    CHECK(failed.error().retry() == retry_class::unique);  // the statement's, passed on
    CHECK_THAT(failed.error().message(),
               Contains("onWrite of configureTargetTables on table items failed: Error: "
                        "duplicate key (SQLSTATE 23505)"));

    // Caught and ignored where the transaction cannot go on: not committed.
    auto careless = load(d, header + R"(
api.configureTargetTables(["items"], {
  onWrite: async (rows) => { try { await api.write(rows); } catch (e) {} },
});
)");
    recording_host aborted;
    aborted.refuse = "\"name\":null";
    aborted.usable_after_failure = false;
    auto lost = write_rows(*careless, rows, aborted);
    REQUIRE_FALSE(lost);
    CHECK_THAT(lost.error().message(), Contains("the transaction cannot commit"));
}

TEST_CASE("userscript: onWrite failures and limits", "[userscript]") {
    script_dir d;
    const std::string rows = body({{"items", R"(["1"])", R"({"id":"1","name":"a"})"}});
    recording_host host;
    auto never = load(d, header + R"(
api.configureTargetTables(["items"], { onWrite: () => new Promise(() => {}) });
)");
    auto hung = write_rows(*never, rows, host);
    REQUIRE_FALSE(hung);
    CHECK_THAT(hung.error().message(), Contains("its promise never settles"));

    auto endless = load(d, header + R"(
api.configureTargetTables(["items"], { onWrite: async () => { await api.getTX().query("SELECT 1"); for (;;) {} } });
)");
    auto stopped = write_rows(*endless, rows, host);
    REQUIRE_FALSE(stopped);
    CHECK(stopped.error().code() == errc::timeout);
    CHECK(stopped.error().retry() == retry_class::none);
    CHECK_THAT(stopped.error().message(),
               Contains("onWrite of configureTargetTables on table items"));

    auto wrong = load(d, header + R"(
api.configureTargetTables(["items"], { onWrite: () => 42 });
)");
    auto refused = write_rows(*wrong, rows, host);
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error().message(), Contains("returned a number"));

    // A statement that ends the transaction ends the write, whatever the handler does.
    auto catching = load(d, header + R"(
let later = null;
api.configureTargetTables(["items"], {
  onWrite: async (rows) => { later = api.getTX(); try { await api.write(rows); } catch (e) {} },
});
api.configureTargetTables(["tbl1"], { onWrite: async () => { await later.exec("SELECT 1"); } });
)");
    recording_host deadlock;
    deadlock.refuse = "items";
    deadlock.refusal =
        error{errc::database_error, "deadlock detected (SQLSTATE 40P01)", retry_class::retry_now};
    auto retried = write_rows(*catching, rows, deadlock);
    REQUIRE_FALSE(retried);
    CHECK(retried.error().retry() == retry_class::retry_now);
    // A transaction object kept past its write refuses.
    recording_host fine;
    REQUIRE(write_rows(*catching, rows, fine));
    auto stale = write_rows(*catching, body({{"tbl1", R"(["1"])", R"({"id":"1"})"}}), fine);
    REQUIRE_FALSE(stale);
    CHECK_THAT(stale.error().message(), Contains("the transaction of this onWrite call has ended"));
}

TEST_CASE("userscript v1: apply with getTX", "[userscript]") {
    script_dir d;
    auto s = load(d, R"(
import * as api from "replicator@v1";
api.configureSource("defaultdb.public", { target: "t_1" });
api.configureTable("t_1", {
  apply: async (ops) => {
    const tx = api.getTX();
    const big = [...await tx.query("SELECT (1<<60)::INT8")][0][0];
    // soft deletes: a delete becomes an upsert of the row before it, marked
    await tx.apply(ops.map((op) => op.action === "delete"
      ? { action: "upsert", data: { ...op.before, v: big }, pk: op.pk }
      : { ...op, data: { pk: String(2 * Number(op.data.pk)), v: JSON.stringify(op) } }));
  },
});
)");
    recording_host host;
    host.answers["SELECT (1<<60)::INT8"] = {{std::optional<std::string>("1152921504606846976")}};
    const std::string rows =
        R"({"payload":[{"topic":"t_1","key":[5],"after":{"pk":5,"v":"x"},"updated":"1.0"},)"
        R"({"topic":"t_1","key":[6],"after":null,"before":{"pk":6,"v":"y"},"updated":"2.0"}]})";
    REQUIRE(write_rows(*s, rows, host));
    REQUIRE(host.log.size() == 3);
    CHECK(
        host.log[1] ==
        R"(write t_1 ["10"] upsert pk=10 v={"action":"upsert","before":null,"data":{"pk":"5","v":"x"},"meta":null,"pk":["5"]})");
    CHECK(host.log[2] == R"(write t_1 ["6"] upsert pk=6 v=1152921504606846976)");
}
