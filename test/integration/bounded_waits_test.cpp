// Waits on a target that does not answer are bounded by the caller's own deadline: a
// black-holed or slow target (molt::test::fault_proxy in front of the real servers) never holds
// a request past its deadline, and never commits after it.
#include <atomic>
#include <regex>
#include <thread>

#include "molt/test/fault_proxy.hpp"

#include "apply_support.hpp"

using namespace molt::replicator;
using namespace molt::replicator::testing;
using clock_type = std::chrono::steady_clock;

namespace {

// The URL of `env`'s server with host and port replaced by the proxy's.
molt::conn_url through(const molt::conn_url& url, const molt::test::fault_proxy& proxy,
                       const std::string& env) {
    const std::string text = molt::test::server_url(env.c_str());
    const std::string host_port = url.host() + ":" + std::to_string(url.port_or_default());
    const size_t at = text.find(host_port);
    REQUIRE(at != std::string::npos);
    std::string via = text;
    via.replace(at, host_port.size(), "127.0.0.1:" + std::to_string(proxy.port()));
    return molt::conn_url::parse(via).value();
}

}  // namespace

TEST_CASE("schema cache: a reader waits for another's introspection only until its deadline",
          "[integration][bounded]") {
    const std::string env = "MOLT_TEST_PG_URL";
    const auto url = molt::conn_url::parse(molt::test::server_url(env.c_str())).value();
    molt::test::fault_proxy proxy(url.host(), url.port_or_default());
    const molt::conn_url via = through(url, proxy, env);
    auto dialect = postgres::make_dialect();
    // Connecting through the black hole takes the connect timeout (at least 2 s).
    session_pool pool([&] { return postgres::connect(via, std::chrono::seconds(2)); }, 4);
    schema_cache schemas(*dialect, pool, std::chrono::seconds(60));
    molt::qualified_name schema;
    schema.parts = {url.database(), "public"};

    proxy.blackhole();
    std::atomic<bool> first_done{false};
    std::thread first([&] {
        auto r = schemas.get(schema, clock_type::now() + std::chrono::seconds(20));
        CHECK_FALSE(r);
        first_done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the first one is connecting
    REQUIRE_FALSE(first_done.load());
    auto second = schemas.get(schema, clock_type::now() + std::chrono::milliseconds(300));
    // The second returned at its own deadline, while the first still waits on the target.
    const bool first_still_waiting = !first_done.load();
    first.join();
    REQUIRE_FALSE(second);
    CHECK(second.error().code() == molt::errc::timeout);
    CHECK(first_still_waiting);

    // Healed: the next reader loads the schema.
    proxy.pass();
    auto healed = schemas.get(schema, clock_type::now() + std::chrono::seconds(20));
    INFO((healed ? std::string() : healed.error().message()));
    CHECK(healed);
}
