// The chunk scheduler: a fixed pool; chunks that share a key never overlap and keep their order;
// disjoint ones run at once; a failure ends the window; an exception does not end the process.
#include "molt/replicator/sequencer/chunk_scheduler.hpp"

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

using namespace molt;
using namespace molt::replicator;
using namespace std::chrono_literals;

namespace {

chunk with_keys(std::initializer_list<const char*> keys) {
    chunk c;
    for (const char* k : keys) {
        c.keys.emplace(0, k);
    }
    c.rows = keys.size();
    return c;
}

// A gate each chunk waits at until the test opens it for that chunk's sequence.
struct gates {
    std::mutex mutex;
    std::condition_variable changed;
    std::set<uint64_t> open;
    std::set<uint64_t> started;
    std::vector<uint64_t> finished;
    int running = 0;
    int most_running = 0;

    bool all_open = false;

    result<void> run(const chunk& c) {
        std::unique_lock<std::mutex> lock(mutex);
        started.insert(c.sequence);
        most_running = std::max(most_running, ++running);
        changed.notify_all();
        changed.wait(lock, [&] { return all_open || open.count(c.sequence) != 0; });
        --running;
        finished.push_back(c.sequence);
        return ok();
    }
    void release(uint64_t sequence) {
        const std::lock_guard<std::mutex> lock(mutex);
        open.insert(sequence);
        changed.notify_all();
    }
    bool wait_started(uint64_t sequence, std::chrono::milliseconds limit = 10s) {
        std::unique_lock<std::mutex> lock(mutex);
        return changed.wait_for(lock, limit, [&] { return started.count(sequence) != 0; });
    }
    void open_all() {
        const std::lock_guard<std::mutex> lock(mutex);
        all_open = true;
        changed.notify_all();
    }
    bool has_started(uint64_t sequence) {
        const std::lock_guard<std::mutex> lock(mutex);
        return started.count(sequence) != 0;
    }
};

// Opens every gate when a test ends early (a failed REQUIRE), so the scheduler's threads can
// finish and be joined: declared after the scheduler, it is destroyed before it.
struct open_on_exit {
    gates& g;
    ~open_on_exit() { g.open_all(); }
};

}  // namespace

TEST_CASE("chunks with a shared key run one after the other, in order", "[sequencer]") {
    gates g;
    chunk_scheduler s(4);
    const open_on_exit opener{g};
    s.begin([&](const chunk& c) { return g.run(c); });
    REQUIRE(s.submit(with_keys({"a", "b"})));
    REQUIRE(g.wait_started(0));
    // The second shares "b": submit waits until the first has finished.
    auto second = std::async(std::launch::async, [&] { return s.submit(with_keys({"b", "c"})); });
    CHECK(second.wait_for(100ms) == std::future_status::timeout);
    CHECK_FALSE(g.has_started(1));
    g.release(0);
    REQUIRE(second.get());
    REQUIRE(g.wait_started(1));
    g.release(1);
    REQUIRE(s.drain());
    CHECK(g.finished == std::vector<uint64_t>{0, 1});
    CHECK(g.most_running == 1);
}

TEST_CASE("disjoint chunks run at once, up to the pool's size", "[sequencer]") {
    gates g;
    chunk_scheduler s(2);
    const open_on_exit opener{g};
    s.begin([&](const chunk& c) { return g.run(c); });
    REQUIRE(s.submit(with_keys({"a"})));
    REQUIRE(s.submit(with_keys({"b"})));
    REQUIRE(g.wait_started(0));
    REQUIRE(g.wait_started(1));  // both at once
    auto third = std::async(std::launch::async, [&] { return s.submit(with_keys({"c"})); });
    CHECK(third.wait_for(100ms) == std::future_status::timeout);  // the pool is full
    g.release(1);
    REQUIRE(third.get());
    REQUIRE(g.wait_started(2));
    g.release(0);
    g.release(2);
    REQUIRE(s.drain());
    CHECK(g.most_running == 2);
    CHECK(s.submitted() == 3);
}

TEST_CASE("a chunk can wait for every earlier chunk of the window", "[sequencer]") {
    gates g;
    chunk_scheduler s(3);
    const open_on_exit opener{g};
    std::atomic<bool> earlier_done_first{false};
    s.begin([&](const chunk& c) -> result<void> {
        if (c.sequence == 1) {
            s.wait_for_earlier(1);
            const std::lock_guard<std::mutex> lock(g.mutex);
            earlier_done_first = g.finished == std::vector<uint64_t>{0};
            return ok();
        }
        return g.run(c);
    });
    REQUIRE(s.submit(with_keys({"a"})));
    REQUIRE(s.submit(with_keys({"b"})));
    REQUIRE(g.wait_started(0));
    g.release(0);
    REQUIRE(s.drain());
    CHECK(earlier_done_first);
}

TEST_CASE("a failed chunk fails the window; the next window starts clean", "[sequencer]") {
    chunk_scheduler s(2);
    s.begin([](const chunk& c) -> result<void> {
        if (c.sequence == 0) {
            return error{errc::database_error, "boom"};
        }
        return ok();
    });
    REQUIRE(s.submit(with_keys({"a"})));
    auto drained = s.drain();
    REQUIRE_FALSE(drained);
    CHECK(drained.error().message() == "boom");
    auto refused = s.submit(with_keys({"b"}));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().message() == "boom");

    s.begin([](const chunk&) -> result<void> { return ok(); });
    REQUIRE(s.submit(with_keys({"a"})));
    REQUIRE(s.drain());
}

TEST_CASE("an exception in a chunk fails the window instead of ending the process", "[sequencer]") {
    chunk_scheduler s(1);
    s.begin([](const chunk&) -> result<void> { throw std::runtime_error("unexpected"); });
    REQUIRE(s.submit(with_keys({"a"})));
    auto drained = s.drain();
    REQUIRE_FALSE(drained);
    CHECK_THAT(drained.error().message(), Catch::Contains("unexpected"));
}

TEST_CASE("interrupt wakes a submit that waits and refuses new chunks", "[sequencer]") {
    gates g;
    chunk_scheduler s(1);
    const open_on_exit opener{g};
    s.begin([&](const chunk& c) { return g.run(c); });
    REQUIRE(s.submit(with_keys({"a"})));
    auto waiting = std::async(std::launch::async, [&] { return s.submit(with_keys({"a"})); });
    CHECK(waiting.wait_for(50ms) == std::future_status::timeout);
    s.interrupt();
    auto refused = waiting.get();
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code() == errc::cancelled);
    g.release(0);
    REQUIRE(s.drain());
}

TEST_CASE("chunks commit in order: a later chunk waits for its turn", "[sequencer]") {
    gates g;
    chunk_scheduler s(2);
    const open_on_exit opener{g};
    std::promise<chunk_scheduler::turn> short_wait;
    std::promise<chunk_scheduler::turn> long_wait;
    s.begin([&](const chunk& c) -> result<void> {
        if (c.sequence == 0) {
            return g.run(c);
        }
        short_wait.set_value(s.wait_turn(c.sequence, 50ms));  // the first still runs
        long_wait.set_value(s.wait_turn(c.sequence, 10s));    // until it has finished
        return ok();
    });
    REQUIRE(s.submit(with_keys({"a"})));
    REQUIRE(g.wait_started(0));
    REQUIRE(s.submit(with_keys({"b"})));
    CHECK(short_wait.get_future().get() == chunk_scheduler::turn::not_yet);
    auto later = long_wait.get_future();
    CHECK(later.wait_for(100ms) == std::future_status::timeout);
    g.release(0);
    CHECK(later.get() == chunk_scheduler::turn::yours);
    REQUIRE(s.drain());
}

TEST_CASE("a chunk waiting for its turn is abandoned when stopping", "[sequencer]") {
    gates g;
    chunk_scheduler s(2);
    const open_on_exit opener{g};
    std::promise<chunk_scheduler::turn> waited;
    s.begin([&](const chunk& c) -> result<void> {
        if (c.sequence == 0) {
            return g.run(c);
        }
        waited.set_value(s.wait_turn(c.sequence, 10s));
        return ok();
    });
    REQUIRE(s.submit(with_keys({"a"})));
    REQUIRE(g.wait_started(0));
    REQUIRE(s.submit(with_keys({"b"})));
    auto turn = waited.get_future();
    CHECK(turn.wait_for(100ms) == std::future_status::timeout);
    s.interrupt();
    CHECK(turn.get() == chunk_scheduler::turn::abandoned);
    g.release(0);
    REQUIRE(s.drain());
}

TEST_CASE("a large chunk (keys unknown) runs alone, between the chunks around it", "[sequencer]") {
    gates g;
    chunk_scheduler s(4);
    const open_on_exit opener{g};
    s.begin([&](const chunk& c) { return g.run(c); });
    REQUIRE(s.submit(with_keys({"a"})));
    REQUIRE(g.wait_started(0));
    chunk large;
    large.large = true;
    // It waits for the disjoint chunk before it to finish...
    auto second = std::async(std::launch::async, [&] { return s.submit(std::move(large)); });
    CHECK(second.wait_for(100ms) == std::future_status::timeout);
    g.release(0);
    REQUIRE(second.get());
    REQUIRE(g.wait_started(1));
    // ... and the disjoint chunk after it waits for it.
    auto third = std::async(std::launch::async, [&] { return s.submit(with_keys({"z"})); });
    CHECK(third.wait_for(100ms) == std::future_status::timeout);
    CHECK_FALSE(g.has_started(2));
    g.release(1);
    REQUIRE(third.get());
    g.release(2);
    REQUIRE(s.drain());
    CHECK(g.finished == std::vector<uint64_t>{0, 1, 2});
    CHECK(g.most_running == 1);
}
