#include "molt/fetch/replicator_args.hpp"

#include <catch2/catch.hpp>

using molt::fetch::build_replicator_argv;
using molt::fetch::redacted_replicator_argv;
using molt::fetch::replicator_flag;
using molt::fetch::split_shell_words;
using molt::fetch::user_replicator_flags;

TEST_CASE("replicator flags are split as a shell splits words", "[replicator_args]") {
    using words = std::vector<std::string>;
    const std::pair<const char*, words> cases[] = {
        {"", {}},
        {"   ", {}},
        {"--stagingSchema _replicator_1 --tlsCertificate ./certs/server.crt",
         {"--stagingSchema", "_replicator_1", "--tlsCertificate", "./certs/server.crt"}},
        {"--applyTimeout '1h'", {"--applyTimeout", "1h"}},  // MOLT kept the quotes
        {"--a \"x y\" --b 'p q'", {"--a", "x y", "--b", "p q"}},
        {"--a=\"x y\"", {"--a=x y"}},
        {R"(--a "say \"hi\" \\ \$HOME \n")", {"--a", R"(say "hi" \ $HOME \n)"}},
        {R"(--a x\ y)", {"--a", "x y"}},
        {"--a ''", {"--a", ""}},
        {"\t-v\n-vv  ", {"-v", "-vv"}},
        {"--a 'it''s'", {"--a", "its"}},
    };
    for (const auto& [text, want] : cases) {
        INFO(text);
        auto got = split_shell_words(text);
        REQUIRE(got);
        CHECK(*got == want);
    }
    for (const char* bad : {"--a 'open", "--a \"open", "--a x\\"}) {
        INFO(bad);
        auto got = split_shell_words(bad);
        REQUIRE_FALSE(got);
        CHECK(got.error().message().rfind("--replicator-flags: ", 0) == 0);
    }
}

TEST_CASE("user replicator flags: lookups and MOLT's invalid flag error", "[replicator_args]") {
    auto flags = user_replicator_flags::parse(
        "--stagingSchema s1 --tlsSelfSigned --disableAuthentication=false --bindAddr=:9000 -v");
    REQUIRE(flags);
    CHECK(flags->has("stagingSchema"));
    CHECK(flags->value("stagingSchema") == "s1");
    CHECK(flags->value("bindAddr") == ":9000");
    CHECK_FALSE(flags->value("tlsSelfSigned"));  // followed by a flag: no value
    CHECK(flags->enabled("tlsSelfSigned"));
    CHECK_FALSE(flags->enabled("disableAuthentication"));
    CHECK(flags->has("v"));
    CHECK_FALSE(flags->has("targetConn"));

    auto bad = user_replicator_flags::parse("stagingSchema x");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message() ==
          "--replicator-flags: invalid flag 'stagingSchema' (expected flags such as "
          "--stagingSchema name)");
}

TEST_CASE("molt never passes a flag the user gives, and user flags come last",
          "[replicator_args]") {
    const std::vector<replicator_flag> molt_flags = {
        {"targetConn", "postgres://u:secret@db:5432/molt?sslmode=verify-full", true},
        {"stagingSchema", "_replicator_99", false},
        {"bindAddr", "0.0.0.0:30004", false},
    };
    auto user = user_replicator_flags::parse("--stagingSchema mine --tlsSelfSigned");
    REQUIRE(user);
    CHECK(build_replicator_argv(molt_flags, *user) ==
          std::vector<std::string>{
              "start", "--targetConn", "postgres://u:secret@db:5432/molt?sslmode=verify-full",
              "--bindAddr", "0.0.0.0:30004", "--stagingSchema", "mine", "--tlsSelfSigned"});
    const auto shown = redacted_replicator_argv(molt_flags, *user);
    for (const std::string& w : shown) {
        CHECK(w.find("secret") == std::string::npos);
    }
    CHECK(shown.at(2) == "postgres://u:xxxxx@db:5432/molt?sslmode=verify-full");

    // --targetConnFile stands for --targetConn: molt does not pass both.
    auto from_file = user_replicator_flags::parse("--targetConnFile /run/credentials/targetConn");
    REQUIRE(from_file);
    CHECK(build_replicator_argv(molt_flags, *from_file) ==
          std::vector<std::string>{"start", "--stagingSchema", "_replicator_99", "--bindAddr",
                                   "0.0.0.0:30004", "--targetConnFile",
                                   "/run/credentials/targetConn"});

    // and the other way round: molt's --targetConnFile gives way to the user's --targetConn.
    const std::vector<replicator_flag> from_molt_file = {
        {"targetConnFile", "/tmp/molt-fetch-x/targetConn", false}};
    auto user_conn = user_replicator_flags::parse("--targetConn mysql://u@h:3306/db");
    REQUIRE(user_conn);
    CHECK(build_replicator_argv(from_molt_file, *user_conn) ==
          std::vector<std::string>{"start", "--targetConn", "mysql://u@h:3306/db"});

    auto with_conn = user_replicator_flags::parse("--stagingConn postgres://a:pw@h/db");
    REQUIRE(with_conn);
    for (const std::string& w : redacted_replicator_argv(molt_flags, *with_conn)) {
        CHECK(w.find(":pw@") == std::string::npos);
    }
}
