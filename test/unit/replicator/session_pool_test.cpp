// The session pool: sessions are reused, and a session that knows its connection is gone is
// closed when its lease ends, even when the caller did not mark it broken.
#include "molt/replicator/target/session_pool.hpp"

#include <catch2/catch.hpp>

using namespace molt;
using namespace molt::replicator;

namespace {

struct fake_session final : target_session {
    bool* dead;
    explicit fake_session(bool* d) : dead(d) {}
    result<void> begin() override { return ok(); }
    result<void> commit() override { return ok(); }
    void rollback() noexcept override {}
    result<void> execute(const std::string&, const sql_params&) override { return ok(); }
    result<std::vector<sql_row>> query(const std::string&, const sql_params&) override {
        return std::vector<sql_row>{};
    }
    result<void> ping() override { return ok(); }
    bool broken() const noexcept override { return *dead; }
};

}  // namespace

TEST_CASE("a session whose connection is gone is not handed out again", "[pool]") {
    int opened = 0;
    bool dead = false;
    session_pool pool(
        [&]() -> result<std::unique_ptr<target_session>> {
            ++opened;
            return std::unique_ptr<target_session>(std::make_unique<fake_session>(&dead));
        },
        2);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    {
        auto lease = pool.acquire(deadline);
        REQUIRE(lease);
    }
    CHECK(pool.idle() == 1);
    {
        auto lease = pool.acquire(deadline);
        REQUIRE(lease);
        CHECK(opened == 1);  // reused
        dead = true;         // the connection went away; nobody calls mark_broken()
    }
    CHECK(pool.idle() == 0);
    dead = false;
    auto lease = pool.acquire(deadline);
    REQUIRE(lease);
    CHECK(opened == 2);  // a new connection
}
