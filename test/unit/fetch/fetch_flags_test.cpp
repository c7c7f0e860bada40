#include "molt/fetch/fetch_flags.hpp"

#include <cstdio>
#include <fstream>

#include <catch2/catch.hpp>

#include "molt/common/flag_text.hpp"

using molt::describe_problems;
using molt::fetch::parse_fetch_flags;

namespace {

std::vector<std::string_view> args(const std::vector<std::string>& words) {
    return {words.begin(), words.end()};
}

const std::string secure_source = "postgres://root@localhost:26257/defaultdb?sslmode=verify-full";
const std::string secure_target =
    "postgres://postgres:postgres@localhost:5432/molt?sslmode=verify-full";

}  // namespace

TEST_CASE("fetch flags: the seed's insecure command line parses", "[fetch_flags]") {
    const std::vector<std::string> words = {
        "--source",
        "postgres://root@localhost:26257/defaultdb?sslmode=disable",
        "--target",
        "postgres://postgres:postgres@localhost:5432/molt?sslmode=disable",
        "--table-filter",
        "employees|payments",
        "--non-interactive",
        "--logging",
        "debug",
        "--replicator-flags",
        "--tlsSelfSigned --disableAuthentication",
        "--mode",
        "failback",
        "--allow-tls-mode-disable"};
    const auto cmd = parse_fetch_flags(args(words));
    INFO(describe_problems(cmd.problems));
    REQUIRE(cmd.problems.empty());
    CHECK(cmd.config.table_filter == "employees|payments");
    CHECK(cmd.config.logging == molt::log::level::debug);
    CHECK(cmd.config.allow_tls_mode_disable);
    CHECK(cmd.config.non_interactive);
    CHECK(cmd.config.changefeed.host == "localhost");
    CHECK(cmd.config.changefeed.port == 30004);
    CHECK(cmd.config.changefeed.sink_query_parameters == "insecure_tls_skip_verify=true");
    REQUIRE(cmd.config.target);
    CHECK(cmd.config.target->database() == "molt");
}

// The seed's Oracle failback command: an Oracle URL has no sslmode (Oracle's TLS is the
// client's sqlnet.ora), so no --allow-tls-mode-disable is needed for it.
TEST_CASE("fetch flags: the seed's Oracle command line parses", "[fetch_flags]") {
    const std::string path = "fetch_flags_oracle_cf.json";
    std::ofstream(path) << R"({"host": "replicator.example.com", "port": 30004})";
    const auto cmd = parse_fetch_flags(args(
        {"--source", secure_source, "--target",
         "oracle://C%23%23MIGRATION_USER:password@host:1521/ORCLPDB1", "--schema-filter",
         "migration_schema", "--table-filter", "employees|payments|orders", "--replicator-flags",
         "--stagingSchema _replicator_1739996035106984000 --tlsSelfSigned", "--mode", "failback",
         "--changefeeds-path", path}));
    std::remove(path.c_str());
    INFO(describe_problems(cmd.problems));
    REQUIRE(cmd.problems.empty());
    REQUIRE(cmd.config.target);
    CHECK(cmd.config.target->dialect() == molt::dialect::oracle);
    CHECK(cmd.config.target->user() == "C##MIGRATION_USER");
    CHECK(cmd.config.schema_filter == "migration_schema");
}

TEST_CASE("fetch flags: every problem at once, with MOLT's wording", "[fetch_flags]") {
    const std::vector<std::string> words = {
        "--source",       "postgres://root@localhost:26257/defaultdb",  // no sslmode
        "--target",       "mysql://u:secret@tcp(db:3306)/molt",         // no sslmode either
        "--mode",         "data-load",
        "--table-filter", "(",
        "--logging",      "loud",
        "--bogus"};
    const auto cmd = parse_fetch_flags(args(words));
    const std::string text = describe_problems(cmd.problems);
    INFO(text);
    CHECK(cmd.problems.size() == 7);
    CHECK(text.find("unknown flag: --bogus") != std::string::npos);
    CHECK(text.find("--mode data-load: this molt does failback only") != std::string::npos);
    CHECK(text.find("--source: TLS mode is set to an insecure default. If you are unable to "
                    "connect via TLS, use the --allow-tls-mode-disable flag to override this "
                    "check.") != std::string::npos);
    CHECK(text.find("--target: TLS mode is set to an insecure default.") != std::string::npos);
    CHECK(text.find("--table-filter: \"(\" is not a POSIX regular expression") !=
          std::string::npos);
    CHECK(text.find("--logging:") != std::string::npos);
    CHECK(text.find("failback mode needs --changefeeds-path") != std::string::npos);
    CHECK(text.find("secret") == std::string::npos);
}

TEST_CASE("fetch flags: single problems", "[fetch_flags]") {
    const std::string empty_override = "fetch_flags_test_empty.json";
    std::ofstream(empty_override) << "{}";
    const std::pair<std::vector<std::string>, std::string> cases[] = {
        {{"--mode", "failback", "--allow-tls-mode-disable"},
         "required flag(s) \"source\", \"target\" not set"},
        {{"--source", secure_source, "--target", secure_target, "--allow-tls-mode-disable"},
         "--mode failback is required: this molt does failback only"},
        {{"--source", "postgres://root@localhost:26257/defaultdb?sslmode=disable", "--target",
          secure_target, "--mode", "failback", "--changefeeds-path", empty_override},
         "--source: TLS mode is set as insecure (sslmode=disable). If a secure TLS connection "
         "is not possible, enable the --allow-tls-mode-disable flag to override this check."},
        {{"--source", "mysql://u@db/x?sslmode=require&sslrootcert=ca.crt", "--target",
          secure_target, "--mode", "failback", "--allow-tls-mode-disable"},
         "--source must be the CockroachDB cluster (postgres://...), not a MySQL connection "
         "string"},
        {{"--source", secure_source, "--target", secure_target, "--mode", "failback",
          "--allow-tls-mode-disable", "--table-exclusion-filter", ".*"},
         "--table-exclusion-filter may not be .*"},
        {{"--source", secure_source, "--target", secure_target, "--mode", "failback",
          "--allow-tls-mode-disable", "--direct-copy"},
         "--direct-copy is a flag of MOLT's data-movement modes; failback mode does not use it"},
        {{"--source", secure_source, "--target", secure_target, "--mode", "failback",
          "--changefeeds-path", "/nonexistent/cf.json"},
         "--changefeeds-path: cannot read \"/nonexistent/cf.json\""},
        {{"--source", secure_source, "--target", "oracle://C%23%23U:p@h:1521/ORCL?sslmode=require",
          "--mode", "failback", "--allow-tls-mode-disable"},
         "--target: unsupported Oracle connection parameter \"sslmode\""},
        {{"--source", secure_source, "--target", secure_target, "--mode", "failback",
          "--allow-tls-mode-disable", "--progress-interval", "0s"},
         "--progress-interval must be positive"},
        {{"--source", secure_source, "--target", secure_target, "--mode", "failback",
          "--allow-tls-mode-disable", "--source", secure_source},
         "--source is given more than once"},
        {{"--source", secure_source, "--target", secure_target, "--mode", "failback",
          "--allow-tls-mode-disable", "--replicator-flags"},
         "flag needs an argument: --replicator-flags"},
        {{"--source", secure_source, "--target", secure_target, "--mode", "failback",
          "--allow-tls-mode-disable", "stray"},
         "unexpected argument \"stray\""},
    };
    for (const auto& [words, want] : cases) {
        const auto cmd = parse_fetch_flags(args(words));
        const std::string text = describe_problems(cmd.problems);
        INFO(text);
        REQUIRE(cmd.problems.size() == 1);
        CHECK(text.rfind(want, 0) == 0);
    }
    std::remove(empty_override.c_str());
}

TEST_CASE("fetch flags: booleans never take the next word; --help wins", "[fetch_flags]") {
    const auto cmd = parse_fetch_flags(
        args({"--source", secure_source, "--target", secure_target, "--mode", "failback",
              "--allow-tls-mode-disable", "--case-sensitive", "false"}));
    // As pflag: "--case-sensitive false" sets it and leaves "false" as a stray argument.
    REQUIRE(cmd.problems.size() == 1);
    CHECK(cmd.problems[0].rfind("unexpected argument \"false\"", 0) == 0);
    CHECK(parse_fetch_flags(args({"--bogus", "--help"})).help);
    const auto off =
        parse_fetch_flags(args({"--source", secure_source, "--target", secure_target, "--mode",
                                "failback", "--allow-tls-mode-disable", "--case-sensitive=false"}));
    CHECK(off.problems.empty());
    CHECK_FALSE(off.config.case_sensitive);
}

TEST_CASE("fetch flags: --changefeeds-path is merged over the defaults", "[fetch_flags]") {
    const std::string path = "fetch_flags_test_cf.json";
    std::ofstream(path) << R"({"host": "replicator.example.com", "port": 30010,
        "sink_query_parameters": "insecure_tls_skip_verify=true&foo=bar", "resolved": "250ms"})";
    const auto cmd = parse_fetch_flags(args({"--source", secure_source, "--target", secure_target,
                                             "--mode", "failback", "--changefeeds-path", path}));
    std::remove(path.c_str());
    INFO(describe_problems(cmd.problems));
    REQUIRE(cmd.problems.empty());
    CHECK(cmd.config.changefeed.host == "replicator.example.com");
    CHECK(cmd.config.changefeed.port == 30010);
    CHECK(cmd.config.changefeed.resolved == "250ms");
    CHECK(cmd.config.changefeed.min_checkpoint_frequency == "1s");
    CHECK(cmd.config.changefeed.initial_scan == "no");
}
