// PostgreSQL NOTICE messages reach the logger (debug, JSON), never stderr raw between log lines.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "molt/common/conn_url.hpp"
#include "molt/common/log.hpp"
#include "molt/replicator/dialect/postgres.hpp"
#include "molt/test/servers.hpp"

namespace {

// Captures what is written to file descriptor 2 while it lives.
class stderr_capture {
public:
    stderr_capture() : file_(std::tmpfile()), saved_(dup(2)) {
        std::fflush(stderr);
        dup2(fileno(file_), 2);
    }
    ~stderr_capture() {
        restore();
        std::fclose(file_);
    }
    stderr_capture(const stderr_capture&) = delete;
    stderr_capture& operator=(const stderr_capture&) = delete;

    std::string text() {
        restore();
        std::string out;
        std::rewind(file_);
        char buffer[4096];
        size_t n = 0;
        while ((n = std::fread(buffer, 1, sizeof buffer, file_)) > 0) {
            out.append(buffer, n);
        }
        return out;
    }

private:
    void restore() {
        if (saved_ >= 0) {
            std::fflush(stderr);
            dup2(saved_, 2);
            close(saved_);
            saved_ = -1;
        }
    }

    std::FILE* file_;
    int saved_;
};

}  // namespace

TEST_CASE("postgres session: NOTICEs are logged at debug level as JSON, not printed on stderr",
          "[integration][postgres]") {
    auto url = molt::conn_url::parse(molt::test::server_url("MOLT_TEST_PG_URL"));
    REQUIRE(url);
    std::vector<std::string> lines;
    molt::log::configure({molt::log::level::debug,
                          molt::log::format::json,
                          {[&lines](std::string_view line) { lines.emplace_back(line); }},
                          {}});
    std::string captured;
    {
        stderr_capture capture;
        auto session = molt::replicator::postgres::connect(*url, std::chrono::seconds(10));
        REQUIRE(session);
        REQUIRE((*session)->execute("CREATE TABLE IF NOT EXISTS molt_notice_check (id INT8)", {}));
        REQUIRE((*session)->execute("CREATE TABLE IF NOT EXISTS molt_notice_check (id INT8)", {}));
        REQUIRE((*session)->execute("DROP TABLE molt_notice_check", {}));
        captured = capture.text();
    }
    molt::log::configure({});
    CHECK(captured.find("already exists") == std::string::npos);
    bool logged = false;
    for (const std::string& line : lines) {
        if (line.find(R"("level":"debug")") != std::string::npos &&
            line.find("relation \\\"molt_notice_check\\\" already exists, skipping") !=
                std::string::npos) {
            logged = true;
            CHECK(line.back() == '\n');
            CHECK(line.find("\\n\"") == std::string::npos);  // the trailing newline is dropped
        }
    }
    CHECK(logged);
}
