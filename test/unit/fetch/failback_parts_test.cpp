// The pure parts of a failback run: table selection, the changefeed statement, progress from
// /_/varz, the replicator's log lines in molt's log.
#include <algorithm>

#include <catch2/catch.hpp>

#include "molt/fetch/catalog.hpp"
#include "molt/fetch/changefeed.hpp"
#include "molt/fetch/child_log.hpp"
#include "molt/fetch/progress.hpp"
#include "molt/fetch/restart_budget.hpp"
#include "molt/fetch/sql_client.hpp"

using namespace molt;
using namespace molt::fetch;

TEST_CASE("tables: filters are anchored POSIX regexes; keys must match", "[catalog]") {
    const std::vector<table_info> source = {
        {"migration_schema", "employees", {"id"}},
        {"migration_schema", "employees_archive", {"id"}},
        {"migration_schema", "orders", {"id", "region"}},
        {"migration_schema", "payments", {"id"}},
        {"migration_schema", "notes", {}},
        {"migration_schema", "only_here", {"id"}},
        {"other", "employees", {"id"}},
    };
    const std::vector<table_info> target = {
        {"migration_schema", "Employees", {"ID"}},
        {"migration_schema", "employees_archive", {"id"}},
        {"migration_schema", "orders", {"region", "id"}},
        {"migration_schema", "payments", {"id"}},
        {"migration_schema", "notes", {"id"}},
        {"other", "employees", {"id"}},
    };
    table_filters f;
    f.schema = "migration_schema";
    f.table = "employees|payments|orders|notes|only_here";
    auto sel = select_tables(source, target, f, dialect::postgres);
    REQUIRE(sel);
    REQUIRE(sel->tables.size() == 2);
    CHECK(sel->tables[0].source.name == "employees");
    CHECK(sel->tables[0].target.name == "Employees");  // case-insensitive by default
    CHECK(sel->tables[1].source.name == "payments");
    REQUIRE(sel->skipped.size() == 3);
    CHECK(sel->skipped[0] ==
          "migration_schema.orders: primary keys differ (source "
          "migration_schema.orders: id, region; target "
          "migration_schema.orders: region, id)");
    CHECK(sel->skipped[1] == "migration_schema.notes: no primary key on the source");
    CHECK(sel->skipped[2].rfind("migration_schema.only_here: missing on the target", 0) == 0);

    f.case_sensitive = true;
    auto strict = select_tables(source, target, f, dialect::postgres);
    REQUIRE(strict);
    CHECK(strict->tables.size() == 1);  // Employees no longer matches employees

    table_filters excl;
    excl.schema = "migration_schema";
    excl.exclusion = ".*_archive|notes|orders|only_here";
    auto ex = select_tables(source, target, excl, dialect::postgres);
    REQUIRE(ex);
    CHECK(ex->tables.size() == 2);
    CHECK(ex->skipped.empty());
}

TEST_CASE("tables: MySQL targets match by name; two source schemas cannot share one", "[catalog]") {
    const std::vector<table_info> source = {{"public", "t", {"id"}}, {"other", "t", {"id"}}};
    const std::vector<table_info> target = {{"molt", "t", {"id"}}};
    table_filters f;
    auto sel = select_tables(source, target, f, dialect::mysql);
    REQUIRE_FALSE(sel);
    CHECK(sel.error().message().find("would both fail back into molt.t") != std::string::npos);
    f.schema = "public";
    auto one = select_tables(source, target, f, dialect::mysql);
    REQUIRE(one);
    REQUIRE(one->tables.size() == 1);
    CHECK(one->tables[0].target.display() == "molt.t");
}

// MOLT's Oracle-to-CockroachDB conversion lower-cases names; Oracle keeps unquoted names in upper
// case: Oracle tables are matched ignoring case even with --case-sensitive.
TEST_CASE("tables: Oracle targets match their upper-case names", "[catalog]") {
    const std::vector<table_info> source = {{"migration_schema", "employees", {"id"}},
                                            {"migration_schema", "payments", {"id", "at"}},
                                            {"public", "employees", {"id"}}};
    const std::vector<table_info> target = {{"MIGRATION_SCHEMA", "EMPLOYEES", {"ID"}},
                                            {"MIGRATION_SCHEMA", "PAYMENTS", {"AT", "ID"}},
                                            {"OTHER", "EMPLOYEES", {"ID"}}};
    table_filters f;
    f.schema = "migration_schema";
    f.case_sensitive = true;
    auto sel = select_tables(source, target, f, dialect::oracle);
    REQUIRE(sel);
    REQUIRE(sel->tables.size() == 1);
    CHECK(sel->tables[0].target.display() == "MIGRATION_SCHEMA.EMPLOYEES");
    REQUIRE(sel->skipped.size() == 1);
    CHECK_THAT(sel->skipped[0], Catch::Contains("primary keys differ"));
    // The same with PostgreSQL rules would match nothing.
    auto pg = select_tables(source, target, f, dialect::postgres);
    REQUIRE(pg);
    CHECK(pg->tables.empty());

    auto ora = conn_url::parse("oracle://C%23%23MIGRATION_USER:p@h:1521/ORCLPDB1");
    REQUIRE(ora);
    CHECK(webhook_path(*ora, "MIGRATION_SCHEMA") == "/MIGRATION_SCHEMA");
    CHECK(target_group(*ora, "MIGRATION_SCHEMA") == "MIGRATION_SCHEMA");
}

namespace {

// A target that answers by the statement's text: the decisions of the Oracle privilege check,
// which no Oracle server here can exercise. `refuse` maps a fragment to the ORA code returned.
class scripted_oracle final : public sql_client {
public:
    std::vector<std::pair<std::string, std::string>> refuse;
    std::string progress_tables = "0";
    std::string create_privileges = "0";
    std::vector<std::string> sent;

    result<sql_rows> query(std::string_view sql) override {
        const std::string text(sql);
        sent.push_back(text);
        code_.clear();
        for (const auto& [fragment, code] : refuse) {
            if (text.find(fragment) != std::string::npos) {
                code_ = code;
                return error{errc::database_error, "--target: ORA-" + code};
            }
        }
        sql_rows out;
        if (text == "SELECT USER FROM DUAL") {
            out.rows.push_back({std::string("MIGRATION_USER")});
        } else if (text.find("SESSION_PRIVS") != std::string::npos) {
            out.rows.push_back({create_privileges});
        } else if (text.find("_replicator_progress'") != std::string::npos) {
            out.rows.push_back({progress_tables});
        }
        return out;
    }
    const std::string& last_error_code() const override { return code_; }
    molt::dialect dialect() const override { return molt::dialect::oracle; }

private:
    std::string code_;
};

}  // namespace

// Oracle's rights are checked by parsing statements (DBMS_SQL.PARSE), never running them; a
// missing DELETE (MOLT's guide grants none) is a warning, the others are problems naming the
// GRANT for the user as Oracle knows it; the progress table is the schema owner's to create.
TEST_CASE("tables: Oracle privileges", "[catalog]") {
    const std::vector<table_pair> tables = {
        {{"migration_schema", "employees", {"id"}}, {"MIGRATION_SCHEMA", "EMPLOYEES", {"ID"}}},
        {{"migration_schema", "payments", {"id"}}, {"MIGRATION_SCHEMA", "PAYMENTS", {"ID"}}}};
    scripted_oracle db;
    db.refuse = {{"DELETE FROM \"MIGRATION_SCHEMA\"", "1031"},
                 {"INSERT INTO \"MIGRATION_SCHEMA\".\"PAYMENTS\"", "1031"}};
    auto problems = check_target_privileges(db, "c##migration_user", tables, true);
    REQUIRE(problems);
    REQUIRE(problems->size() == 2);
    CHECK((*problems)[0] ==
          "--target: user MIGRATION_USER cannot INSERT on MIGRATION_SCHEMA.PAYMENTS: run GRANT "
          "INSERT ON \"MIGRATION_SCHEMA\".\"PAYMENTS\" TO \"MIGRATION_USER\";");
    CHECK_THAT((*problems)[1], Catch::StartsWith("--target: the replicator's progress table "
                                                 "\"MIGRATION_SCHEMA\".\"_replicator_progress\" "
                                                 "is missing"));
    CHECK_THAT((*problems)[1], Catch::Contains("have \"MIGRATION_SCHEMA\" run CREATE TABLE"));
    CHECK_THAT((*problems)[1], Catch::Contains("GRANT SELECT, INSERT, DELETE ON"));
    for (const std::string& sql : db.sent) {
        if (sql.find("INSERT") != std::string::npos || sql.find("DELETE") != std::string::npos ||
            sql.find("UPDATE") != std::string::npos) {
            CHECK_THAT(sql, Catch::StartsWith("DECLARE c INTEGER := DBMS_SQL.OPEN_CURSOR;"));
        }
    }
    // The INSERT probe writes the key only (never a virtual or identity column).
    CHECK(std::any_of(db.sent.begin(), db.sent.end(), [](const std::string& sql) {
        return sql.find(
                   "INSERT INTO \"MIGRATION_SCHEMA\".\"EMPLOYEES\" (\"ID\") SELECT "
                   "\"ID\" FROM") != std::string::npos;
    }));

    // The progress table there, with rights on it: no problem; without: named.
    scripted_oracle ready;
    ready.progress_tables = "1";
    auto fine = check_target_privileges(ready, "u", tables, true);
    REQUIRE(fine);
    CHECK(fine->empty());
    ready.refuse = {{"DELETE FROM \"MIGRATION_SCHEMA\".\"_replicator_progress\"", "1031"}};
    auto no_delete = check_target_privileges(ready, "u", tables, true);
    REQUIRE(no_delete);
    REQUIRE(no_delete->size() == 1);
    CHECK_THAT((*no_delete)[0], Catch::Contains("cannot DELETE on the replicator's progress "
                                                "table"));
    // Immediate mode has no progress table.
    scripted_oracle immediate;
    auto none = check_target_privileges(immediate, "u", tables, false);
    REQUIRE(none);
    CHECK(none->empty());
    // Any other failure is not taken for a missing right.
    scripted_oracle broken;
    broken.refuse = {{"SELECT 1 FROM", "1013"}};
    CHECK_FALSE(check_target_privileges(broken, "u", tables, true));
}

TEST_CASE("changefeed: path by dialect, sorted tables, the statement", "[changefeed]") {
    auto pg = conn_url::parse("postgres://u@h:5432/molt?sslmode=verify-full");
    auto my = conn_url::parse("mysql://u@tcp(h:3306)/molt");
    REQUIRE(pg);
    REQUIRE(my);
    CHECK(webhook_path(*pg, "migration_schema") == "/molt/migration_schema");
    CHECK(webhook_path(*my, "molt") == "/molt");
    CHECK(target_group(*pg, "public") == "molt.public");
    CHECK(target_group(*my, "molt") == "molt");
    // The replicator's spelling of a checkpoint group: a part holding '.' or '"' is quoted, so
    // molt finds the checkpoint of such a target schema (and an earlier run's staging).
    auto dotted = conn_url::parse("postgres://u@h:5432/my.db?sslmode=verify-full");
    REQUIRE(dotted);
    CHECK(target_group(*dotted, "pub\"lic") == "\"my.db\".\"pub\"\"lic\"");
    auto dotted_my = conn_url::parse("mysql://u@tcp(h:3306)/my.db");
    REQUIRE(dotted_my);
    CHECK(target_group(*dotted_my, "my.db") == "\"my.db\"");

    proto::changefeed_settings s;
    s.sink_query_parameters = "client_cert=AA&client_key=BB&ca_cert=CC";
    const auto spec = make_changefeed_spec(
        s, "/molt/migration_schema",
        {"defaultdb.migration_schema.payments", "defaultdb.migration_schema.employees"});
    CHECK(spec.tables.front() == "defaultdb.migration_schema.employees");
    CHECK(spec.sink_base == "webhook-https://localhost:30004/molt/migration_schema");
    const std::string sql = create_changefeed_sql(spec, s, hlc(1726072415000000000, 3));
    CHECK(sql ==
          "CREATE CHANGEFEED FOR TABLE \"defaultdb\".\"migration_schema\".\"employees\", "
          "\"defaultdb\".\"migration_schema\".\"payments\" INTO "
          "'webhook-https://localhost:30004/molt/"
          "migration_schema?client_cert=AA&client_key=BB&ca_cert=CC' WITH updated, resolved = "
          "'1s', min_checkpoint_frequency = '1s', initial_scan = 'no', webhook_client_timeout = "
          "'10s', cursor = '1726072415000000000.0000000003', webhook_sink_config = "
          "'{\"Flush\":{\"Bytes\":1048576,\"Frequency\":\"1s\"}}'");
}

TEST_CASE("changefeed: a running feed to the same sink and tables is reused", "[changefeed]") {
    proto::changefeed_settings s;
    const auto spec = make_changefeed_spec(s, "/molt/public", {"db.public.a", "db.public.b"});
    changefeed_job same{"1",
                        "running",
                        "",
                        "",
                        "",
                        spec.sink_uri + "&client_key=redacted",
                        {"db.public.b", "db.public.a"}};
    changefeed_job other_sink = same;
    other_sink.id = "2";
    other_sink.sink_uri = "webhook-https://localhost:30005/molt/public";
    changefeed_job other_tables = same;
    other_tables.id = "3";
    other_tables.tables = {"db.public.a"};
    changefeed_job canceled = same;
    canceled.id = "4";
    canceled.status = "canceled";
    CHECK_FALSE(find_reusable_job({other_sink, other_tables, canceled}, spec));
    const auto conflicts = conflicting_jobs({other_sink, other_tables, canceled, same}, spec);
    REQUIRE(conflicts.size() == 1);  // same webhook, other tables: a second stream
    CHECK(conflicts[0].id == "3");
    auto found = find_reusable_job({other_sink, other_tables, canceled, same}, spec);
    REQUIRE(found);
    CHECK(found->id == "1");
}

TEST_CASE("progress: the replicator's /_/varz", "[progress]") {
    const std::string text =
        "# HELP apply_upserts_total Rows upserted\n"
        "# TYPE apply_upserts_total counter\n"
        "apply_upserts_total{schema=\"molt.public\",table=\"employees\"} 40\n"
        "apply_upserts_total{schema=\"molt.public\",table=\"pay\\\"ments\"} 2\n"
        "apply_deletes_total{schema=\"molt.public\",table=\"employees\"} 2\n"
        "source_lag_seconds{schema=\"molt.public\"} 0.5\n"
        "target_lag_seconds{schema=\"molt.public\"} 1.25\n"
        "checkpoint_committed_time_seconds{schema=\"molt.public\"} 1764489600.123456\n"
        "broken{schema=\"x} 1\n"
        "also_broken 1x\n";
    const auto samples = parse_prometheus_text(text);
    CHECK(samples.size() == 6);
    const auto p = summarize_varz(samples);
    CHECK(p.rows_applied.at("employees") == 42);
    CHECK(p.rows_applied.at("pay\"ments") == 2);
    CHECK(p.total_rows() == 44);
    CHECK(p.source_lag_seconds == 0.5);
    CHECK(p.target_lag_seconds == 1.25);
    CHECK(p.applied_checkpoint_seconds == 1764489600.123456);
}

TEST_CASE("replicator log lines: tagged after the level", "[child_log]") {
    log::level lvl = log::level::trace;
    CHECK(tag_json_line(R"({"level":"warn","time":"t","message":"m"})", "replicator", lvl) ==
          R"({"level":"warn","process":"replicator","time":"t","message":"m"})");
    CHECK(lvl == log::level::warn);
    CHECK(tag_json_line("plain text", "replicator", lvl).empty());
    CHECK(tag_json_line(R"({"level":"nope","message":"m"})", "replicator", lvl).empty());

    std::vector<std::string> lines;
    log::options opts;
    opts.sinks.push_back([&](std::string_view l) { lines.emplace_back(l); });
    opts.clock = [] { return log::clock_reading{0, 0}; };
    log::logger logger(opts);
    relay_child_line(logger, "replicator",
                     R"({"level":"info","targetConn":"postgres://u:hunter2@h/db","message":"x"})");
    relay_child_line(logger, "replicator", R"({"level":"debug","message":"filtered"})");
    relay_child_line(logger, "replicator", "==123== AddressSanitizer: boom");
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] ==
          "{\"level\":\"info\",\"process\":\"replicator\",\"targetConn\":\"postgres://"
          "u:xxxxx@h/db\",\"message\":\"x\"}\n");
    CHECK(lines[1].find("\"process\":\"replicator\"") != std::string::npos);
    CHECK(lines[1].find("AddressSanitizer: boom") != std::string::npos);
}

TEST_CASE("restart budget: backoff doubles to 30 s; a crash loop ends after the limit") {
    using std::chrono::seconds;
    restart_budget budget(7);
    auto t = restart_budget::clock::time_point{};
    budget.ready(t);
    std::vector<int64_t> waits;
    while (auto wait = budget.exited(t += seconds(10))) {
        waits.push_back(wait->count());
    }
    CHECK(waits == std::vector<int64_t>{1, 2, 4, 8, 16, 30, 30});
    CHECK(budget.restarts() == 7);
}

TEST_CASE("restart budget: a replicator up 5 minutes earns a fresh budget") {
    using std::chrono::minutes;
    using std::chrono::seconds;
    restart_budget budget(2);
    auto t = restart_budget::clock::time_point{};
    budget.ready(t);
    REQUIRE(budget.exited(t += seconds(5)) == seconds(1));
    budget.ready(t += seconds(2));
    REQUIRE(budget.exited(t += minutes(6)) == seconds(1));  // a long healthy run: fresh budget
    CHECK(budget.restarts() == 1);
    budget.ready(t += seconds(2));
    CHECK(budget.exited(t += seconds(5)) == seconds(2));
}

TEST_CASE("restart budget: after a long healthy run, replicators that never get ready end molt") {
    // The replicator ran for an hour, then crashed; every restart fails before it is ready
    // (killed after the ready timeout, or exits at startup). The long run must not reset the
    // budget again on every failure.
    using std::chrono::minutes;
    using std::chrono::seconds;
    restart_budget budget(3);
    auto t = restart_budget::clock::time_point{};
    budget.ready(t);
    int restarts = 0;
    t += minutes(60);
    while (budget.exited(t)) {
        ++restarts;
        REQUIRE(restarts <= 3);
        t += minutes(6);  // backoff, then a ready timeout that never saw it ready
    }
    CHECK(restarts == 3);
}
