#include "molt/common/log.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

using molt::log::clock_reading;
using molt::log::field;
using molt::log::format;
using molt::log::level;
using molt::log::logger;

namespace {

// 2025-02-20T20:55:44Z (date -u -d ... +%s), shown at UTC-5 as in MOLT's docs.
constexpr clock_reading docs_time{1740084944, -5 * 3600};

struct captured {
    std::vector<std::string> lines;
};

logger make_logger(captured& into, format fmt, level min = level::trace) {
    molt::log::options opts;
    opts.fmt = fmt;
    opts.min_level = min;
    opts.sinks.push_back([&into](std::string_view line) { into.lines.emplace_back(line); });
    opts.clock = [] { return docs_time; };
    return logger(std::move(opts));
}

}  // namespace

TEST_CASE("log: JSON lines match MOLT's documented lines byte for byte", "[log]") {
    captured out;
    logger log = make_logger(out, format::json);
    log.info().msg("starting replicator");
    log.info().msg("staging database name: _replicator_1739303283084207000");
    log.info().msg("creating changefeed on the source CRDB database");
    REQUIRE(out.lines.size() == 3);
    CHECK(out.lines[0] ==
          "{\"level\":\"info\",\"time\":\"2025-02-20T15:55:44-05:00\",\"message\":\"starting "
          "replicator\"}\n");
    CHECK(out.lines[1] ==
          "{\"level\":\"info\",\"time\":\"2025-02-20T15:55:44-05:00\",\"message\":"
          "\"staging database name: _replicator_1739303283084207000\"}\n");
    CHECK(out.lines[2] ==
          "{\"level\":\"info\",\"time\":\"2025-02-20T15:55:44-05:00\",\"message\":"
          "\"creating changefeed on the source CRDB database\"}\n");
}

TEST_CASE("log: fields sit between level and time, in the order given", "[log]") {
    captured out;
    logger log = make_logger(out, format::json);
    log.info()
        .str("type", "summary")
        .str("fetch_id", "f5cb422f-4bb4-4bbd-b2ae-08c4d00d1e7c")
        .num("num_tables", 1)
        .strs("tables", {"public.employees"})
        .dbl("net_duration_ms", 6752.847625)
        .boolean("ok", true)
        .unum("rows", 18446744073709551615ULL)
        .msg("fetch complete");
    REQUIRE(out.lines.size() == 1);
    CHECK(out.lines[0] ==
          "{\"level\":\"info\",\"type\":\"summary\",\"fetch_id\":\"f5cb422f-4bb4-4bbd-b2ae-"
          "08c4d00d1e7c\",\"num_tables\":1,\"tables\":[\"public.employees\"],\"net_duration_ms\":"
          "6752.847625,\"ok\":true,\"rows\":18446744073709551615,\"time\":\"2025-02-20T15:55:44-"
          "05:00\",\"message\":\"fetch complete\"}\n");
}

TEST_CASE("log: errors, levels and escaping", "[log]") {
    captured out;
    logger log = make_logger(out, format::json, level::debug);
    log.trace().msg("hidden");
    log.debug().msg("shown");
    log.error()
        .err(molt::error{molt::errc::io_error, "disk \"full\""})
        .msg("error while running CDC sink");
    log.warn().str("k", "line1\nline2\t\x01 \xff end").msg("quote \" backslash \\");
    REQUIRE(out.lines.size() == 3);
    CHECK(out.lines[0].rfind("{\"level\":\"debug\",", 0) == 0);
    CHECK(out.lines[1] ==
          "{\"level\":\"error\",\"error\":\"disk \\\"full\\\"\",\"time\":\"2025-02-"
          "20T15:55:44-05:00\",\"message\":\"error while running CDC sink\"}\n");
    CHECK(out.lines[2] ==
          "{\"level\":\"warn\",\"k\":\"line1\\nline2\\t\\u0001 \\ufffd end\","
          "\"time\":\"2025-02-20T15:55:44-05:00\",\"message\":\"quote \\\" "
          "backslash \\\\\"}\n");
    CHECK(log.enabled(level::panic));
    CHECK_FALSE(log.enabled(level::trace));
}

TEST_CASE("log: secrets are redacted in messages and fields", "[log]") {
    captured out;
    logger log = make_logger(out, format::json);
    log.debug()
        .str("command",
             "replicator start --targetConn postgres://app:hunter2@db:5432/molt "
             "--stagingConn postgres://root:sesame@crdb:26257/defaultdb")
        .str("password", "hunter2")
        .str("tlsPrivateKey", "-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----")
        .msg("executing CDC sink command with mysql://u:pw@tcp(h:3306)/d");
    REQUIRE(out.lines.size() == 1);
    const std::string& line = out.lines[0];
    CHECK(line.find("hunter2") == std::string::npos);
    CHECK(line.find("sesame") == std::string::npos);
    CHECK(line.find("MIIEv") == std::string::npos);
    CHECK(line.find(":pw@") == std::string::npos);
    CHECK(line ==
          "{\"level\":\"debug\",\"command\":\"replicator start --targetConn "
          "postgres://app:xxxxx@db:5432/molt --stagingConn postgres://root:xxxxx@crdb:26257/"
          "defaultdb\",\"password\":\"xxxxx\",\"tlsPrivateKey\":\"xxxxx\",\"time\":\"2025-02-20T15:"
          "55:44-05:00\",\"message\":\"executing CDC sink command with "
          "mysql://u:xxxxx@tcp(h:3306)/d\"}\n");
}

TEST_CASE("log: console and text forms", "[log]") {
    captured console;
    logger c = make_logger(console, format::console);
    c.info().str("address", "[::]:30004").str("note", "two words").msg("Server listening");
    captured text;
    logger t = make_logger(text, format::text);
    t.info().str("address", "[::]:30004").msg("Server listening");
    t.debug().msg("a\nforged line");
    REQUIRE(console.lines.size() == 1);
    CHECK(console.lines[0] ==
          "2025-02-20T15:55:44-05:00 INF Server listening address=[::]:30004 note=\"two words\"\n");
    REQUIRE(text.lines.size() == 2);
    CHECK(text.lines[0] ==
          "INFO   [Feb 20 15:55:44] Server listening                              "
          "address=[::]:30004\n");
    // A newline in user-controlled text cannot start a new log line.
    CHECK(text.lines[1] == "DEBUG  [Feb 20 15:55:44] a\\nforged line\n");
}

TEST_CASE("log: level and format names", "[log]") {
    CHECK(molt::log::parse_level("trace").value() == level::trace);
    CHECK(molt::log::parse_level("DEBUG").value() == level::debug);
    CHECK(molt::log::parse_level("warning").value() == level::warn);
    CHECK(molt::log::parse_level("panic").value() == level::panic);
    auto bad = molt::log::parse_level("loud");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message() ==
          "unknown log level \"loud\" (expected trace, debug, info, warn, error, fatal or panic)");
    CHECK(molt::log::parse_format("text").value() == format::text);
    CHECK_FALSE(molt::log::parse_format("fluentd"));
    for (level l : {level::trace, level::debug, level::info, level::warn, level::error,
                    level::fatal, level::panic}) {
        CHECK(molt::log::parse_level(molt::log::to_string(l)).value() == l);
    }
}

TEST_CASE("log: a file sink appends whole lines and creates directories", "[log]") {
    const auto dir =
        std::filesystem::temp_directory_path() / ("molt-log-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    const std::string path = (dir / "nested" / "molt.log").string();
    {
        auto sink = molt::log::file_sink(path);
        REQUIRE(sink);
        molt::log::options opts;
        opts.sinks.push_back(*sink);
        opts.clock = [] { return docs_time; };
        logger log(std::move(opts));
        log.info().msg("one");
        log.info().msg("two");
    }
    {
        auto sink = molt::log::file_sink(path);
        REQUIRE(sink);
        (*sink)("three\n");
    }
    std::ifstream in(path);
    std::stringstream contents;
    contents << in.rdbuf();
    CHECK(contents.str() ==
          "{\"level\":\"info\",\"time\":\"2025-02-20T15:55:44-05:00\",\"message\":\"one\"}\n"
          "{\"level\":\"info\",\"time\":\"2025-02-20T15:55:44-05:00\",\"message\":\"two\"}\n"
          "three\n");
    std::filesystem::remove_all(dir);

    auto unwritable = molt::log::file_sink("/proc/molt-no-such-dir/x.log");
    REQUIRE_FALSE(unwritable);
    CHECK(unwritable.error().code() == molt::errc::io_error);
}
