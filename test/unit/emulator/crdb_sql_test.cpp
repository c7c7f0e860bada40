// The CockroachDB stand-in's SQL layer: which statements are CockroachDB's, what they parse
// into, and the PostgreSQL statements that carry their results.
#include "molt/emulator/crdb_sql.hpp"

#include <catch2/catch.hpp>

using namespace molt;
using namespace molt::emulator::crdb;

namespace {

// Records what it was asked to execute and answers with a fixed result.
struct recording_executor final : executor {
    std::vector<statement> executed;
    statement_result answer;
    int64_t ticks = 0;
    std::string version() override { return "CockroachDB CCL v25.2.0 (it's emulated)"; }
    hlc logical_timestamp() override { return hlc(1759246920563173000 + ticks++, 0); }
    statement_result execute(const statement& s) override {
        executed.push_back(s);
        return answer;
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

TEST_CASE("CREATE DATABASE IF NOT EXISTS and database-qualified CREATE SCHEMA are CockroachDB's",
          "[crdb_sql]") {
    const auto db = parsed_as<create_database>("CREATE DATABASE IF NOT EXISTS \"_replicator\"");
    CHECK(db.name == "_replicator");
    CHECK(db.if_not_exists);
    const auto schema = parsed_as<create_schema>("CREATE SCHEMA IF NOT EXISTS appdb.\"Staging\"");
    CHECK(schema.database == "appdb");
    CHECK(schema.schema == "Staging");
    // PostgreSQL's own forms pass through.
    for (const char* sql : {"CREATE DATABASE x", "CREATE DATABASE x OWNER app",
                            "CREATE SCHEMA IF NOT EXISTS s", "CREATE SCHEMA s AUTHORIZATION app"}) {
        INFO(sql);
        CHECK_FALSE(parse_statement(sql).has_value());
    }
    statement_result instead;
    instead.postgres_sql = "CREATE SCHEMA IF NOT EXISTS \"Staging\"";
    CHECK(to_postgres(instead) == "CREATE SCHEMA IF NOT EXISTS \"Staging\"");
}
