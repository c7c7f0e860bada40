#include "molt/test/servers.hpp"

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <catch2/catch.hpp>

namespace molt::test {

std::string server_url(const char* name) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') {
        return value;
    }
    const char* require = std::getenv("MOLT_TEST_REQUIRE_SERVERS");
    if (require != nullptr && std::string_view(require) == "1") {
        FAIL(name << " is not set but MOLT_TEST_REQUIRE_SERVERS=1: the test servers did not "
                     "start (see test/support/db/with-dbs.sh)");
    }
    std::fprintf(stderr,
                 "SKIPPED: %s is not set. Run under test/support/db/with-dbs.sh (./test.sh does "
                 "this) to start throwaway servers.\n",
                 name);
    std::fflush(stderr);
    std::exit(77);
}

}  // namespace molt::test
