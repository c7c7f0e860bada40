// The CockroachDB stand-in's SQL layer: which statements are CockroachDB's, what they parse
// into, and the PostgreSQL statements that carry their results.
#include "molt/emulator/crdb_sql.hpp"

#include <algorithm>
#include <set>
#include <tuple>

#include <catch2/catch.hpp>

#include "molt/emulator/crdb_databases.hpp"
#include "molt/emulator/crdb_names.hpp"

using namespace molt;
using namespace molt::emulator::crdb;

namespace {

// Records what it was asked to execute and answers with a fixed result. The session is in
// database "appdb" (schemas public, pg_catalog, information_schema, sales) beside the emulated
// database "_replicator" (schemas public, information_schema, staging).
struct recording_executor final : executor {
    std::vector<statement> executed;
    statement_result answer;
    int64_t ticks = 0;
    std::set<std::string, std::less<>> schemas = {"public",
                                                  "pg_catalog",
                                                  "information_schema",
                                                  "sales",
                                                  "_replicator.public",
                                                  "_replicator.information_schema",
                                                  "_replicator.staging"};
    std::vector<std::string> lookups;  // what was asked of the catalog
    std::string version() override { return "CockroachDB CCL v25.2.0 (it's emulated)"; }
    hlc logical_timestamp() override { return hlc(1759246920563173000 + ticks++, 0); }
    statement_result execute(const statement& s) override {
        executed.push_back(s);
        return answer;
    }
    std::vector<created_table> tables;  // CREATE TABLEs noted
    void note_table(const created_table& t) override { tables.push_back(t); }
    std::string current_database() override { return "appdb"; }
    bool schema_exists(std::string_view name) override {
        lookups.emplace_back(name);
        return schemas.count(name) != 0;
    }
    bool database_exists(std::string_view name) override {
        lookups.emplace_back(std::string("database ") + std::string(name));
        const std::string prefix = database_prefix(name);
        return std::any_of(schemas.begin(), schemas.end(),
                           [&](const std::string& s) { return s.rfind(prefix, 0) == 0; });
    }
};

template <typename T>
T parsed_as(std::string_view sql) {
    auto s = parse_statement(sql);
    INFO(sql);
    REQUIRE(s.has_value());
    REQUIRE(std::holds_alternative<T>(*s));
    return std::get<T>(*s);
}

}  // namespace

TEST_CASE("split_statements keeps semicolons inside quotes, dollar quotes and comments",
          "[crdb_sql]") {
    const auto parts = split_statements(
        "SELECT ';' ; SELECT $x$ ; $x$; -- a ; comment\n SELECT \"a;b\" /* ; */ ;;  ");
    REQUIRE(parts.size() == 3);
    CHECK(parts[0] == "SELECT ';' ");
    CHECK(parts[1] == " SELECT $x$ ; $x$");
    CHECK(parts[2] == " -- a ; comment\n SELECT \"a;b\" /* ; */ ");
    CHECK(split_statements("  ; -- nothing\n").empty());
}

TEST_CASE("tokenize: strings unescaped, words as written, numbers whole", "[crdb_sql]") {
    const auto t = tokenize("INTO 'it''s' E'a\\'b' 12.5e3 \"Q\"\"d\" $1");
    REQUIRE(t.size() == 7);
    CHECK(t[0].text == "INTO");
    CHECK(t[1].type == token::kind::string);
    CHECK(t[1].text == "it's");
    CHECK(t[2].text == "a'b");
    CHECK(t[3].type == token::kind::number);
    CHECK(t[3].text == "12.5e3");
    CHECK(t[4].type == token::kind::quoted_ident);
    CHECK(t[4].text == "Q\"d");
    CHECK(t[5].text == "$");
}

TEST_CASE("CockroachDB statements parse; PostgreSQL ones pass through", "[crdb_sql]") {
    CHECK(parsed_as<show_setting>("show cluster setting kv.rangefeed.enabled").name ==
          "kv.rangefeed.enabled");
    parsed_as<show_all_settings>("SHOW ALL CLUSTER SETTINGS");
    parsed_as<show_all_settings>("SHOW CLUSTER SETTINGS");
    const auto set = parsed_as<set_setting>("SET CLUSTER SETTING kv.rangefeed.enabled = true");
    CHECK(set.name == "kv.rangefeed.enabled");
    CHECK(set.value == "true");
    CHECK(parsed_as<set_setting>(
              "SET CLUSTER SETTING kv.closed_timestamp.target_duration TO '1s'::INTERVAL")
              .value == "1s");
    CHECK_FALSE(parsed_as<set_setting>("SET CLUSTER SETTING x.y = DEFAULT").value.has_value());
    CHECK_FALSE(parsed_as<set_setting>("RESET CLUSTER SETTING x.y").value.has_value());

    const auto jobs = parsed_as<show_jobs>("SHOW CHANGEFEED JOBS");
    CHECK(jobs.changefeeds_only);
    CHECK_FALSE(jobs.job.has_value());
    const auto one = parsed_as<show_jobs>("show changefeed job 1101234051444375553");
    CHECK(one.job == 1101234051444375553);
    CHECK_FALSE(parsed_as<show_jobs>("SHOW JOBS").changefeeds_only);
    const auto cancel = parsed_as<control_job>("CANCEL JOB 42");
    CHECK(cancel.what == control_job::action::cancel);
    CHECK(cancel.job == 42);
    CHECK(parsed_as<control_job>("PAUSE JOB 7").what == control_job::action::pause);
    CHECK(parsed_as<control_job>("resume job 7").what == control_job::action::resume);

    for (const char* sql : {"SELECT 1", "SHOW server_version", "SET search_path = public",
                            "SHOW TIME ZONE", "CREATE TABLE t (id int)", "INSERT INTO t VALUES (1)",
                            "RESET ALL", "ALTER TABLE t ADD COLUMN c int"}) {
        INFO(sql);
        CHECK_FALSE(parse_statement(sql).has_value());
    }
}

TEST_CASE("CREATE CHANGEFEED: targets, sink and options", "[crdb_sql]") {
    const auto cf = parsed_as<create_changefeed>(
        "CREATE CHANGEFEED FOR TABLE employees, TABLE public.payments, appdb.public.\"Mixed\" "
        "INTO 'webhook-https://h:30004/appdb/public?insecure_tls_skip_verify=true' "
        "WITH updated, resolved = '250ms', min_checkpoint_frequency='250ms', initial_scan = 'no', "
        "webhook_sink_config = '{\"Flush\":{\"Bytes\":1048576,\"Frequency\":\"1s\"}}'");
    REQUIRE(cf.tables.size() == 3);
    CHECK(cf.tables[0] == std::vector<std::string>{"employees"});
    CHECK(cf.tables[1] == std::vector<std::string>{"public", "payments"});
    CHECK(cf.tables[2] == std::vector<std::string>{"appdb", "public", "Mixed"});
    CHECK(cf.sink_uri == "webhook-https://h:30004/appdb/public?insecure_tls_skip_verify=true");
    REQUIRE(cf.options.size() == 5);
    CHECK(cf.options[0].first == "updated");
    CHECK_FALSE(cf.options[0].second.has_value());
    CHECK(cf.options[1].second == "250ms");
    CHECK(cf.options[4].second == "{\"Flush\":{\"Bytes\":1048576,\"Frequency\":\"1s\"}}");

    CHECK(parsed_as<syntax_error>("CREATE CHANGEFEED FOR TABLE t INTO").message ==
          "at or near \"EOF\": syntax error");
    CHECK(parsed_as<syntax_error>("CREATE CHANGEFEED FOR TABLE t INTO 'x' WITH , ").message ==
          "at or near \",\": syntax error");
    CHECK(parsed_as<not_emulated>("CREATE CHANGEFEED FOR TABLE t").what.find("sinkless") !=
          std::string::npos);
    CHECK(parsed_as<not_emulated>("CREATE CHANGEFEED INTO 'x' AS SELECT * FROM t")
              .what.find("CDC queries") != std::string::npos);
    parsed_as<not_emulated>("ALTER DATABASE d CONFIGURE ZONE USING gc.ttlseconds = 300");

    // ALTER CHANGEFEED: ADD and DROP, each with its tables, in order; ADD's own options.
    const auto alter = parsed_as<alter_changefeed>(
        "ALTER CHANGEFEED 1101234051444375553 ADD TABLE orders, public.\"Items\" WITH "
        "initial_scan = 'yes' DROP payments ADD t2 WITH no_initial_scan ADD t3 WITH initial_scan");
    CHECK(alter.job == 1101234051444375553);
    REQUIRE(alter.commands.size() == 4);
    CHECK(alter.commands[0].add);
    CHECK(alter.commands[0].tables ==
          std::vector<std::vector<std::string>>{{"orders"}, {"public", "Items"}});
    REQUIRE(alter.commands[0].options.size() == 1);
    CHECK(alter.commands[0].options[0].first == "initial_scan");
    CHECK(alter.commands[0].options[0].second == "yes");
    CHECK_FALSE(alter.commands[1].add);
    CHECK(alter.commands[1].tables == std::vector<std::vector<std::string>>{{"payments"}});
    CHECK(alter.commands[2].options[0].first == "no_initial_scan");
    CHECK_FALSE(alter.commands[3].options[0].second.has_value());
    CHECK(parsed_as<not_emulated>("ALTER CHANGEFEED 7 SET resolved = '1s'").what ==
          "ALTER CHANGEFEED ... set");
    CHECK(parsed_as<not_emulated>("ALTER CHANGEFEED 7 ADD t UNSET diff").what ==
          "ALTER CHANGEFEED ... unset");
    parsed_as<syntax_error>("ALTER CHANGEFEED 7");
    parsed_as<syntax_error>("ALTER CHANGEFEED x ADD t");
    parsed_as<syntax_error>("ALTER CHANGEFEED 7 RENAME t");
    parsed_as<syntax_error>("ALTER CHANGEFEED 7 DROP t WITH initial_scan");
    parsed_as<not_emulated>("BACKUP INTO 'nodelocal://1/b'");
    parsed_as<not_emulated>("UPSERT INTO t VALUES (1)");
    parsed_as<not_emulated>("SHOW RANGES FROM TABLE t");
    parsed_as<not_emulated>("CANCEL QUERY 'abc'");
}

TEST_CASE("results become PostgreSQL statements with the same shape", "[crdb_sql]") {
    statement_result rows;
    rows.columns = {{"job_id", "int8"}, {"status", "text"}};
    rows.rows = {{std::string("1"), std::string("it's running")}, {std::string("2"), std::nullopt}};
    CHECK(to_postgres(rows) ==
          "SELECT * FROM (VALUES ('1'::int8, 'it''s running'::text), ('2'::int8, NULL::text)) "
          "AS crdb_result(\"job_id\", \"status\")");
    rows.rows.clear();
    CHECK(to_postgres(rows) ==
          "SELECT NULL::int8 AS \"job_id\", NULL::text AS \"status\" WHERE false");
    CHECK(to_postgres(statement_result{}) == "DO $crdb_emulator$BEGIN END$crdb_emulator$");
    CHECK(to_postgres(statement_result::failure("55000", "a 'quote' and $crdb_emulator$")) ==
          "DO $crdb_emulator$BEGIN RAISE EXCEPTION USING MESSAGE = 'a ''quote'' and "
          "$crdb_emulator $', ERRCODE = '55000'; END$crdb_emulator$");
}

TEST_CASE("rewrite: CockroachDB's functions become constants; its statements are executed",
          "[crdb_sql]") {
    recording_executor ex;
    CHECK(rewrite_statement("SELECT version(), current_database()", ex) ==
          "SELECT (SELECT 'CockroachDB CCL v25.2.0 (it''s emulated)'::text AS version), "
          "current_database()");
    CHECK(rewrite_statement("select CLUSTER_LOGICAL_TIMESTAMP ( )", ex) ==
          "select (SELECT 1759246920563173000.0000000000::numeric AS cluster_logical_timestamp)");
    // Only calls: not quoted text, not other schemas' functions, not columns.
    for (const char* sql : {"SELECT 'version()'", "SELECT pg_catalog.version()",
                            "SELECT version FROM t", "SELECT \"version\"()"}) {
        INFO(sql);
        CHECK(rewrite_statement(sql, ex) == sql);
    }
    CHECK(ex.executed.empty());

    ex.answer.columns = {{"job_id", "int8"}};
    ex.answer.rows = {{std::string("99")}};
    CHECK(rewrite_query("SET CLUSTER SETTING kv.rangefeed.enabled = true; CREATE CHANGEFEED FOR "
                        "TABLE t INTO 'webhook-https://h/' ; SELECT 1",
                        ex) ==
          "SELECT * FROM (VALUES ('99'::int8)) AS crdb_result(\"job_id\"); SELECT * FROM "
          "(VALUES ('99'::int8)) AS crdb_result(\"job_id\");  SELECT 1");
    REQUIRE(ex.executed.size() == 2);
    CHECK(std::holds_alternative<set_setting>(ex.executed[0]));
    CHECK(std::holds_alternative<create_changefeed>(ex.executed[1]));
    CHECK(rewrite_statement("BACKUP INTO 'x'", ex).find("ERRCODE = '0A000'") != std::string::npos);
    CHECK(rewrite_statement("PAUSE JOB abc", ex).find("ERRCODE = '42601'") != std::string::npos);
    CHECK(ex.executed.size() == 2);
}

TEST_CASE("database statements and database-qualified CREATE SCHEMA are CockroachDB's",
          "[crdb_sql]") {
    const auto db = parsed_as<create_database>("CREATE DATABASE IF NOT EXISTS \"_replicator\"");
    CHECK(db.name == "_replicator");
    CHECK(db.if_not_exists);
    const auto plain = parsed_as<create_database>("create database Staging");
    CHECK(plain.name == "staging");
    CHECK_FALSE(plain.if_not_exists);
    parsed_as<not_emulated>("CREATE DATABASE x OWNER app");
    parsed_as<not_emulated>("CREATE DATABASE x PRIMARY REGION \"us-east1\"");
    const auto schema = parsed_as<create_schema>("CREATE SCHEMA IF NOT EXISTS appdb.\"Staging\"");
    CHECK(schema.database == "appdb");
    CHECK(schema.schema == "Staging");

    const auto drop = parsed_as<drop_database>("DROP DATABASE x");
    CHECK(drop.name == "x");
    CHECK_FALSE(drop.if_exists);
    CHECK_FALSE(drop.restricted);
    CHECK(parsed_as<drop_database>("DROP DATABASE IF EXISTS \"X\" CASCADE").name == "X");
    CHECK(parsed_as<drop_database>("drop database if exists x cascade").if_exists);
    CHECK(parsed_as<drop_database>("DROP DATABASE x RESTRICT").restricted);
    CHECK(parsed_as<syntax_error>("DROP DATABASE x WITH (FORCE)").message ==
          "at or near \"with\": syntax error");
    CHECK(parsed_as<syntax_error>("DROP DATABASE IF x").message ==
          "at or near \"x\": syntax error");

    CHECK_FALSE(parsed_as<show_databases>("SHOW DATABASES").with_comment);
    CHECK(parsed_as<show_databases>("show databases with comment").with_comment);
    CHECK(parsed_as<use_database>("USE _replicator").name == "_replicator");
    CHECK(parsed_as<use_database>("SET database = \"Other\"").name == "Other");
    CHECK(parsed_as<use_database>("SET SESSION database TO 'x'").name == "x");

    // PostgreSQL's own forms pass through.
    for (const char* sql : {"CREATE SCHEMA IF NOT EXISTS s", "CREATE SCHEMA s AUTHORIZATION app",
                            "DROP TABLE x", "DROP SCHEMA s", "SET search_path = s",
                            "SET SESSION AUTHORIZATION app", "SHOW search_path"}) {
        INFO(sql);
        CHECK_FALSE(parse_statement(sql).has_value());
    }
    statement_result instead;
    instead.postgres_sql = "CREATE SCHEMA IF NOT EXISTS \"Staging\"";
    CHECK(to_postgres(instead) == "CREATE SCHEMA IF NOT EXISTS \"Staging\"");
}

TEST_CASE("an emulated database's schemas: one injective, reversible name each", "[crdb_sql]") {
    CHECK(backend_schema("_replicator_1739996035106984000", "public") ==
          "_replicator_1739996035106984000.public");
    CHECK(database_prefix("_replicator") == "_replicator.");
    CHECK(backend_schema("a.b", "c") == "a%2Eb.c");
    CHECK(backend_schema("a", "b.c") == "a.b%2Ec");
    CHECK(backend_schema("100%", "x") == "100%25.x");
    CHECK_FALSE(emulated_schema("public").has_value());
    CHECK_FALSE(emulated_schema("a.b.c").has_value());
    CHECK_FALSE(emulated_schema("a%2.b").has_value());
    // Every pair of names over an alphabet of the characters that matter, up to 3 long.
    std::vector<std::string> names{""};
    for (size_t len = 1; len <= 3; ++len) {
        const size_t from = names.size();
        for (size_t i = 0; i < from; ++i) {
            if (names[i].size() + 1 == len) {
                for (const char c : {'a', '.', '%', '2', 'E', '5'}) {
                    names.push_back(names[i] + c);
                }
            }
        }
    }
    std::set<std::string> seen;
    for (const std::string& d : names) {
        for (const std::string& sc : names) {
            const std::string b = backend_schema(d, sc);
            INFO(d << " / " << sc << " -> " << b);
            CHECK(seen.insert(b).second);
            CHECK(std::count(b.begin(), b.end(), '.') == 1);
            CHECK(emulated_schema(b) == std::pair{d, sc});
        }
    }
}

TEST_CASE("qualified names in what the replicator's staging store sends to CockroachDB",
          "[crdb_sql]") {
    recording_executor ex;
    // (CockroachDB flavour of replicator/staging/src/staging_store.cpp; SOCI's :pN are $N.)
    const std::string t = "\"_replicator\".\"public\".\"molt_checkpoints\"";
    const std::string m = "\"_replicator.public\".\"molt_checkpoints\"";
    const std::pair<std::string, std::string> cases[] = {
        {"CREATE TABLE IF NOT EXISTS " + t +
             " (group_name TEXT NOT NULL, PRIMARY KEY (group_name))",
         "CREATE TABLE IF NOT EXISTS " + m +
             " (group_name TEXT NOT NULL, PRIMARY KEY (group_name))"},
        {"INSERT INTO " + t +
             " (name, version) VALUES ('staging', 1) ON CONFLICT (name) DO NOTHING",
         "INSERT INTO " + m +
             " (name, version) VALUES ('staging', 1) ON CONFLICT (name) DO NOTHING"},
        {"SELECT version FROM " + t + " WHERE name = 'staging'",
         "SELECT version FROM " + m + " WHERE name = 'staging'"},
        {"SELECT count(*) FROM \"_replicator\".information_schema.tables WHERE table_schema = $1 "
         "AND table_name = $2",
         "SELECT count(*) FROM \"_replicator.information_schema\".tables WHERE table_schema = $1 "
         "AND table_name = $2"},
        {"INSERT INTO " + t +
             " (nanos, logical, key) SELECT * FROM unnest($1::INT8[], "
             "$2::INT4[], $3::TEXT[]) ON CONFLICT (nanos, logical, key) DO NOTHING RETURNING "
             "nanos, "
             "logical, key",
         "INSERT INTO " + m +
             " (nanos, logical, key) SELECT * FROM unnest($1::INT8[], "
             "$2::INT4[], $3::TEXT[]) ON CONFLICT (nanos, logical, key) DO NOTHING RETURNING "
             "nanos, "
             "logical, key"},
        {"SELECT s.nanos, s.key FROM " + t +
             " AS s JOIN unnest($1::INT8[], $2::TEXT[]) AS u (n, "
             "k) ON s.nanos = u.n AND s.key = u.k",
         "SELECT s.nanos, s.key FROM " + m +
             " AS s JOIN unnest($1::INT8[], $2::TEXT[]) AS u (n, "
             "k) ON s.nanos = u.n AND s.key = u.k"},
        {"SELECT source_nanos FROM " + t +
             " WHERE group_name = $1 ORDER BY source_nanos DESC "
             "LIMIT 1 FOR UPDATE",
         "SELECT source_nanos FROM " + m +
             " WHERE group_name = $1 ORDER BY source_nanos DESC "
             "LIMIT 1 FOR UPDATE"},
        {"UPDATE " + t +
             " SET target_applied_at = now() WHERE (source_nanos, source_logical) <= "
             "($2::INT8, $3::INT4)",
         "UPDATE " + m +
             " SET target_applied_at = now() WHERE (source_nanos, source_logical) <= "
             "($2::INT8, $3::INT4)"},
        {"SELECT DISTINCT group_name FROM " + t + " WHERE target_applied_at IS NULL",
         "SELECT DISTINCT group_name FROM " + m + " WHERE target_applied_at IS NULL"},
        {"WITH d AS (DELETE FROM " + t + " WHERE (nanos, key) IN (SELECT nanos, key FROM " + t +
             " ORDER BY nanos LIMIT 10) RETURNING 1) SELECT count(*) FROM d",
         "WITH d AS (DELETE FROM " + m + " WHERE (nanos, key) IN (SELECT nanos, key FROM " + m +
             " ORDER BY nanos LIMIT 10) RETURNING 1) SELECT count(*) FROM d"},
        {"DELETE FROM " + t + " WHERE group_name = $1 AND (a, b) < (SELECT a, b FROM " + t +
             " WHERE group_name = $4 ORDER BY a DESC LIMIT 1)",
         "DELETE FROM " + m + " WHERE group_name = $1 AND (a, b) < (SELECT a, b FROM " + m +
             " WHERE group_name = $4 ORDER BY a DESC LIMIT 1)"},
    };
    for (const auto& [sql, want] : cases) {
        INFO(sql);
        CHECK(rewrite_statement(sql, ex) == want);
    }
    CHECK(ex.executed.empty());
}

TEST_CASE("qualified names are read as CockroachDB reads them", "[crdb_sql]") {
    recording_executor ex;
    const std::pair<const char*, const char*> cases[] = {
        // The session's database is PostgreSQL's own schemas.
        {"SELECT * FROM appdb.public.t", "SELECT * FROM public.t"},
        {"SELECT * FROM appdb.information_schema.tables",
         "SELECT * FROM information_schema.tables"},
        {"SELECT * FROM appdb.t", "SELECT * FROM \"public\".t"},
        // a.t: schema a of the session's database if there is one, else database a.
        {"SELECT * FROM sales.t", "SELECT * FROM sales.t"},
        {"SELECT * FROM _replicator.t", "SELECT * FROM \"_replicator.public\".t"},
        {"DELETE FROM _REPLICATOR.t WHERE true", "DELETE FROM \"_replicator.public\".t WHERE true"},
        {"select * from \"_replicator\".\"staging\".\"T\"",
         "select * from \"_replicator.staging\".\"T\""},
        {"SELECT * FROM _replicator . staging . t", "SELECT * FROM \"_replicator.staging\" . t"},
        // Unknown databases map too: PostgreSQL says relation "nodb.public.t" does not exist.
        {"SELECT * FROM nodb.public.t", "SELECT * FROM \"nodb.public\".t"},
        {"SELECT * FROM nodb.t", "SELECT * FROM nodb.t"},
        {"SELECT * FROM \"_Replicator\".t", "SELECT * FROM \"_Replicator\".t"},
        // Strings, comments and columns are not table names.
        {"SELECT '_replicator.public.t', _replicator.x /* FROM _replicator.t */ FROM t -- "
         "_replicator.t",
         "SELECT '_replicator.public.t', _replicator.x /* FROM _replicator.t */ FROM t -- "
         "_replicator.t"},
        {"SELECT extract(year FROM _replicator.ts), substring(a FROM 2) FROM t",
         "SELECT extract(year FROM _replicator.ts), substring(a FROM 2) FROM t"},
        {"SELECT a FROM t WHERE a IS NOT DISTINCT FROM _replicator.b",
         "SELECT a FROM t WHERE a IS NOT DISTINCT FROM _replicator.b"},
        {"SELECT x::pg_catalog.int8 FROM pg_catalog.pg_class",
         "SELECT x::pg_catalog.int8 FROM pg_catalog.pg_class"},
        // FROM lists, joins, subqueries.
        {"SELECT * FROM sales.a, _replicator.b AS b, (SELECT 1 FROM _replicator.c) AS x, "
         "_replicator.staging.d JOIN _replicator.e ON d.k = e.k, f WHERE _replicator.z = 1 "
         "ORDER BY b.k, _replicator.y",
         "SELECT * FROM sales.a, \"_replicator.public\".b AS b, (SELECT 1 FROM "
         "\"_replicator.public\".c) AS x, \"_replicator.staging\".d JOIN "
         "\"_replicator.public\".e ON d.k = e.k, f WHERE _replicator.z = 1 ORDER BY b.k, "
         "_replicator.y"},
        {"SELECT _replicator.public.t.a, appdb.public.u.b FROM _replicator.public.t, "
         "appdb.public.u",
         "SELECT \"_replicator.public\".t.a, public.u.b FROM \"_replicator.public\".t, public.u"},
        {"UPDATE ONLY _replicator.t SET a = 1, b = x.c FROM _replicator.staging.x WHERE t.k = x.k",
         "UPDATE ONLY \"_replicator.public\".t SET a = 1, b = x.c FROM \"_replicator.staging\".x "
         "WHERE t.k = x.k"},
        {"DELETE FROM _replicator.t USING _replicator.u WHERE t.k = u.k",
         "DELETE FROM \"_replicator.public\".t USING \"_replicator.public\".u WHERE t.k = u.k"},
        // DDL.
        {"DROP TABLE IF EXISTS _replicator.a, _replicator.staging.b CASCADE",
         "DROP TABLE IF EXISTS \"_replicator.public\".a, \"_replicator.staging\".b CASCADE"},
        {"TRUNCATE _replicator.a, sales.b", "TRUNCATE \"_replicator.public\".a, sales.b"},
        {"ALTER TABLE _replicator.public.a ADD CONSTRAINT f FOREIGN KEY (x) REFERENCES "
         "_replicator.b (y)",
         "ALTER TABLE \"_replicator.public\".a ADD CONSTRAINT f FOREIGN KEY (x) REFERENCES "
         "\"_replicator.public\".b (y)"},
        {"CREATE UNIQUE INDEX IF NOT EXISTS i ON _replicator.public.a (x)",
         "CREATE UNIQUE INDEX IF NOT EXISTS i ON \"_replicator.public\".a (x)"},
        {"CREATE VIEW _replicator.v AS SELECT a.x FROM _replicator.a JOIN b ON a.x = b.x",
         "CREATE VIEW \"_replicator.public\".v AS SELECT a.x FROM \"_replicator.public\".a "
         "JOIN b ON a.x = b.x"},
        {"DROP SCHEMA IF EXISTS _replicator.staging CASCADE",
         "DROP SCHEMA IF EXISTS \"_replicator.staging\" CASCADE"},
        {"DROP SCHEMA appdb.sales", "DROP SCHEMA sales"},
    };
    for (const auto& [sql, want] : cases) {
        INFO(sql);
        CHECK(rewrite_statement(sql, ex) == want);
    }
    // Both kinds of rewriting in one statement.
    CHECK(rewrite_statement("SELECT version() FROM _replicator.t", ex) ==
          "SELECT (SELECT 'CockroachDB CCL v25.2.0 (it''s emulated)'::text AS version) FROM "
          "\"_replicator.public\".t");
    // Statements without qualified table names ask the catalog nothing.
    ex.lookups.clear();
    (void)rewrite_statement("SELECT s.a, t.b FROM t JOIN u AS s ON s.k = t.k WHERE t.c > 1", ex);
    CHECK(ex.lookups.empty());
}

TEST_CASE("names CockroachDB refuses get its errors", "[crdb_sql]") {
    recording_executor ex;
    const std::tuple<const char*, const char*, const char*> cases[] = {
        {"CREATE TABLE nodb.public.t (a INT)", "3F000",
         "cannot create \"nodb.public.t\" because the target database or schema does not exist"},
        {"CREATE TABLE nodb.t (a INT)", "3F000",
         "cannot create \"nodb.t\" because the target database or schema does not exist"},
        {"CREATE TABLE IF NOT EXISTS _replicator.nosuch.t (a INT)", "3F000",
         "cannot create \"_replicator.nosuch.t\" because the target database or schema does not "
         "exist"},
        {"create table appdb.\"NoSuch\".t (a int)", "3F000",
         "cannot create \"appdb.\\\"NoSuch\\\".t\" because the target database or schema does "
         "not exist"},
        {"SELECT * FROM a_database_name_that_is_longer_than_postgresql_allows_for_names.public.t",
         "42P01",
         "relation \"a_database_name_that_is_longer_than_postgresql_allows_for_names.public.t\" "
         "does not exist"},
    };
    for (const auto& [sql, code, message] : cases) {
        INFO(sql);
        CHECK(rewrite_statement(sql, ex) == to_postgres(statement_result::failure(code, message)));
    }
    CHECK(rewrite_statement("CREATE TABLE IF NOT EXISTS _replicator.t (a INT)", ex) ==
          "CREATE TABLE IF NOT EXISTS \"_replicator.public\".t (a INT)");
    CHECK(rewrite_statement("CREATE TABLE appdb.t (a INT)", ex) ==
          "CREATE TABLE \"public\".t (a INT)");
}

TEST_CASE("database statements become PostgreSQL statements of the session's transaction",
          "[crdb_sql]") {
    auto run = [](const statement& s) {
        auto r = execute_database_statement(s, "appdb");
        REQUIRE(r.has_value());
        return *r;
    };
    auto error_of = [&](const statement& s) {
        const statement_result r = run(s);
        REQUIRE(r.error.has_value());
        return std::pair{r.error->sqlstate, r.error->message};
    };
    const statement_result created = run(create_database{"_replicator_1739996035106984000", true});
    REQUIRE(created.postgres_sql.has_value());
    const std::string& sql = *created.postgres_sql;
    CHECK(sql.rfind("DO $crdb_emulator$BEGIN", 0) == 0);
    CHECK(sql.find("CREATE SCHEMA \"_replicator_1739996035106984000.public\";") !=
          std::string::npos);
    CHECK(sql.find("CREATE VIEW \"_replicator_1739996035106984000.information_schema\".tables") !=
          std::string::npos);
    CHECK(sql.find("already exists") == std::string::npos);  // IF NOT EXISTS: no error
    CHECK(run(create_database{"x", false}).postgres_sql->find("database \"x\" already exists") !=
          std::string::npos);
    // The session's own database exists already.
    CHECK_FALSE(run(create_database{"appdb", true}).error.has_value());
    CHECK(error_of(create_database{"appdb", false}) ==
          std::pair<std::string, std::string>{"42P04", "database \"appdb\" already exists"});
    CHECK(error_of(create_database{std::string(45, 'd'), true}).first == "0A000");
    CHECK(error_of(create_database{"", true}).first == "42602");

    CHECK(error_of(drop_database{"appdb", false, false}).first == "0A000");
    const std::string dropped = *run(drop_database{"x", false, true}).postgres_sql;
    CHECK(dropped.find("database \"x\" does not exist") != std::string::npos);
    CHECK(dropped.find("database \"x\" is not empty and RESTRICT was specified") !=
          std::string::npos);
    CHECK(dropped.find("DROP SCHEMA %I CASCADE") != std::string::npos);
    CHECK(run(drop_database{"x", true, false}).postgres_sql->find("RESTRICT") == std::string::npos);

    CHECK(run(create_schema{"appdb", "s", true}).postgres_sql ==
          "CREATE SCHEMA IF NOT EXISTS \"s\"");
    CHECK(error_of(create_schema{"appdb", "a.b", false}).first == "0A000");
    const std::string in_other = *run(create_schema{"_replicator", "staging", false}).postgres_sql;
    CHECK(in_other.find("database \"_replicator\" does not exist") != std::string::npos);
    CHECK(in_other.find("schema \"staging\" already exists") != std::string::npos);
    CHECK(in_other.find("CREATE SCHEMA \"_replicator.staging\";") != std::string::npos);

    const std::string shown = *run(show_databases{}).postgres_sql;
    for (const char* column : {"database_name", "owner", "primary_region", "secondary_region",
                               "regions", "survival_goal"}) {
        CHECK(shown.find(column) != std::string::npos);
    }
    CHECK(shown.find("survival_goal FROM") != std::string::npos);
    CHECK(run(show_databases{true}).postgres_sql->find("d.comment FROM") != std::string::npos);

    CHECK_FALSE(run(use_database{"appdb"}).error.has_value());
    CHECK(error_of(use_database{"_replicator"}).first == "0A000");
    CHECK_FALSE(execute_database_statement(show_jobs{}, "appdb").has_value());
}

TEST_CASE("DO blocks pick a tag their body does not hold; names print as CockroachDB's",
          "[crdb_sql]") {
    CHECK(do_block("BEGIN END") == "DO $crdb_emulator$BEGIN END$crdb_emulator$");
    CHECK(do_block("BEGIN RAISE '$crdb_emulator$'; END") ==
          "DO $crdb_emulator1$BEGIN RAISE '$crdb_emulator$'; END$crdb_emulator1$");
    CHECK(display_name({"a", "Mixed", "x.y", "_r1", "1a"}) == "a.\"Mixed\".\"x.y\"._r1.\"1a\"");
}

TEST_CASE(
    "a simple-query batch: schemas and databases made by earlier statements exist for "
    "later ones",
    "[crdb_sql]") {
    recording_executor ex;
    auto refused = [](const std::string& sql) {
        return sql.find("ERRCODE = '3F000'") != std::string::npos;
    };
    // PostgreSQL runs the batch only after the whole string is rewritten, as CockroachDB runs
    // it statement by statement: the table goes into the new schema.
    const std::string created = rewrite_query(
        "CREATE SCHEMA migration_schema; CREATE TABLE migration_schema.employees "
        "(id INT8 PRIMARY KEY)",
        ex);
    CHECK_FALSE(refused(created));
    CHECK(created.find("CREATE TABLE migration_schema.employees (id INT8 PRIMARY KEY)") !=
          std::string::npos);
    // IF NOT EXISTS, quoted names, the current database named, AUTHORIZATION.
    const std::string quoted = rewrite_query(
        "create schema if not exists \"Mixed\" authorization app; create table "
        "appdb.\"Mixed\".t (a int); CREATE SCHEMA Folded; CREATE TABLE folded.t (a INT)",
        ex);
    CHECK_FALSE(refused(quoted));
    CHECK(quoted.find("create table \"Mixed\".t (a int)") != std::string::npos);
    // A database-qualified schema, and a new database's public schema.
    const std::string emulated = rewrite_query(
        "CREATE DATABASE newdb; CREATE TABLE newdb.t (a INT); CREATE SCHEMA _replicator.later; "
        "CREATE TABLE _replicator.later.t (a INT)",
        ex);
    CHECK_FALSE(refused(emulated));
    CHECK(emulated.find("CREATE TABLE \"newdb.public\".t (a INT)") != std::string::npos);
    CHECK(emulated.find("CREATE TABLE \"_replicator.later\".t (a INT)") != std::string::npos);
    // Only later statements of the same batch: not earlier ones, not the next query.
    CHECK(refused(rewrite_query("CREATE TABLE early.t (a INT); CREATE SCHEMA early", ex)));
    CHECK(refused(rewrite_statement("CREATE TABLE migration_schema.t2 (a INT)", ex)));
    CHECK(refused(rewrite_query("SELECT 1; CREATE TABLE migration_schema.t2 (a INT)", ex)));
}

TEST_CASE("CREATE CHANGEFEED: column family targets", "[crdb_sql][families]") {
    const auto cf = parsed_as<create_changefeed>(
        "CREATE CHANGEFEED FOR TABLE fam FAMILY f1, TABLE public.fam FAMILY \"F 2\", other "
        "INTO 'webhook-https://h/' WITH resolved");
    REQUIRE(cf.tables.size() == 3);
    REQUIRE(cf.families.size() == 3);
    CHECK(cf.tables[1] == std::vector<std::string>{"public", "fam"});
    CHECK(cf.families[0] == "f1");
    CHECK(cf.families[1] == "F 2");
    CHECK_FALSE(cf.families[2].has_value());
    parsed_as<syntax_error>("CREATE CHANGEFEED FOR TABLE fam FAMILY INTO 'webhook-https://h/'");
    CHECK(parsed_as<not_emulated>("ALTER CHANGEFEED 7 ADD fam FAMILY f1").what ==
          "column family targets in ALTER CHANGEFEED");
}

TEST_CASE("CREATE TABLE: FAMILY clauses are taken out and remembered", "[crdb_sql][families]") {
    auto created = [](std::string_view sql) {
        auto r = parse_create_table(sql);
        INFO(sql);
        REQUIRE(r.has_value());
        REQUIRE(std::holds_alternative<created_table>(*r));
        return std::get<created_table>(*r);
    };
    auto refused = [](std::string_view sql) {
        auto r = parse_create_table(sql);
        INFO(sql);
        REQUIRE(r.has_value());
        REQUIRE(std::holds_alternative<sql_error>(*r));
        return std::get<sql_error>(*r);
    };
    // Named and unnamed families; columns no family names go to the first (primary) family.
    auto t = created(
        "CREATE TABLE IF NOT EXISTS public.Fam (id INT8 PRIMARY KEY, a TEXT, \"B\" TEXT "
        "CHECK (length(\"B\") > 0), c NUMERIC(10, 2), d TEXT, FAMILY f1 (id, a), FAMILY "
        "(\"B\", c), CONSTRAINT u UNIQUE (a, d)) WITH (fillfactor = 90)");
    CHECK(t.name == std::vector<std::string>{"public", "fam"});
    CHECK(t.families ==
          std::vector<column_family>{{"f1", {"id", "a", "d"}}, {"fam_1_B_c", {"B", "c"}}});
    CHECK(t.sql ==
          "CREATE TABLE IF NOT EXISTS public.Fam (id INT8 PRIMARY KEY, a TEXT, \"B\" TEXT "
          "CHECK (length(\"B\") > 0), c NUMERIC(10, 2), d TEXT, CONSTRAINT u UNIQUE (a, d)) "
          "WITH (fillfactor = 90)");
    t = created("create temp table t (FAMILY (id), id int primary key, v text)");
    CHECK(t.name == std::vector<std::string>{"t"});
    CHECK(t.families == std::vector<column_family>{{"fam_0_id", {"id", "v"}}});
    CHECK(t.sql == "create temp table t (id int primary key, v text)");
    // Without FAMILY clauses: nothing to take out, one family (none recorded).
    t = created("CREATE TABLE t (id INT PRIMARY KEY, family_name TEXT)");
    CHECK(t.families.empty());
    CHECK(t.sql == "CREATE TABLE t (id INT PRIMARY KEY, family_name TEXT)");
    CHECK(created("CREATE TABLE t AS SELECT 1").families.empty());
    CHECK_FALSE(parse_create_table("CREATE INDEX i ON t (family)").has_value());
    CHECK_FALSE(parse_create_table("SELECT 1").has_value());

    CHECK(refused("CREATE TABLE t (id INT PRIMARY KEY, FAMILY f (id, x))").message ==
          "column \"x\" does not exist");
    CHECK(refused("CREATE TABLE t (id INT PRIMARY KEY, v INT, FAMILY f (id), FAMILY g (id, v))")
              .message == "column \"id\" is in more than one family");
    CHECK(refused("CREATE TABLE t (id INT PRIMARY KEY, v INT, FAMILY f (id), FAMILY f (v))")
              .message == "family \"f\" already exists");
    CHECK(refused("CREATE TABLE t (id INT PRIMARY KEY, FAMILY f id)").sqlstate == "42601");
    CHECK(refused("CREATE TABLE t (id INT PRIMARY KEY, v INT FAMILY f)").sqlstate == "0A000");
}

TEST_CASE("rewrite: CREATE TABLE reaches PostgreSQL without families, the executor notes them",
          "[crdb_sql][families]") {
    recording_executor ex;
    CHECK(rewrite_query("CREATE TABLE _replicator.t (id INT PRIMARY KEY, v TEXT, FAMILY p (id), "
                        "FAMILY q (v)); SELECT 1",
                        ex) ==
          "CREATE TABLE \"_replicator.public\".t (id INT PRIMARY KEY, v TEXT);  SELECT 1");
    REQUIRE(ex.tables.size() == 1);
    CHECK(ex.tables[0].name == std::vector<std::string>{"_replicator.public", "t"});
    CHECK(ex.tables[0].families == std::vector<column_family>{{"p", {"id"}}, {"q", {"v"}}});
    // Without families the table is noted too (a name created again forgets its families).
    CHECK(rewrite_statement("CREATE TABLE t (id INT PRIMARY KEY)", ex) ==
          "CREATE TABLE t (id INT PRIMARY KEY)");
    REQUIRE(ex.tables.size() == 2);
    CHECK(ex.tables[1].families.empty());
    const std::string refused =
        rewrite_statement("CREATE TABLE t (id INT PRIMARY KEY, FAMILY f (x))", ex);
    CHECK(refused.find("RAISE EXCEPTION") != std::string::npos);
    CHECK(refused.find("42703") != std::string::npos);
    CHECK(ex.tables.size() == 2);
}
