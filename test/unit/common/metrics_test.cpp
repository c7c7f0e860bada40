#include "molt/common/metrics.hpp"

#include <thread>

#include <catch2/catch.hpp>

TEST_CASE("metrics: Prometheus text exposition", "[metrics]") {
    molt::metrics::registry r;
    auto& codes = r.counter("http_status_codes_total", "HTTP responses by status code", {"code"});
    codes.with({"200"}).add(3);
    codes.with({"400"}).add();
    r.gauge("pool_connections_in_use", "Target connections in use", {"pool"})
        .with({"target"})
        .set(2);
    auto& latency = r.histogram("apply_duration_seconds", "Apply latency", {"table"}, {0.1, 1});
    latency.with({"t\"1"}).observe(0.05);
    latency.with({"t\"1"}).observe(0.5);
    latency.with({"t\"1"}).observe(7);
    CHECK(r.expose() ==
          "# HELP apply_duration_seconds Apply latency\n"
          "# TYPE apply_duration_seconds histogram\n"
          "apply_duration_seconds_count{table=\"t\\\"1\"} 3\n"
          "apply_duration_seconds_sum{table=\"t\\\"1\"} 7.55\n"
          "apply_duration_seconds_bucket{table=\"t\\\"1\",le=\"0.1\"} 1\n"
          "apply_duration_seconds_bucket{table=\"t\\\"1\",le=\"1\"} 2\n"
          "apply_duration_seconds_bucket{table=\"t\\\"1\",le=\"+Inf\"} 3\n"
          "# HELP http_status_codes_total HTTP responses by status code\n"
          "# TYPE http_status_codes_total counter\n"
          "http_status_codes_total{code=\"200\"} 3\n"
          "http_status_codes_total{code=\"400\"} 1\n"
          "# HELP pool_connections_in_use Target connections in use\n"
          "# TYPE pool_connections_in_use gauge\n"
          "pool_connections_in_use{pool=\"target\"} 2\n");
}

TEST_CASE("metrics: a family without children is listed; help and types as declared", "[metrics]") {
    molt::metrics::registry r;
    r.counter("stage_mutations_total", "Mutations staged", {"schema"});
    r.gauge("apply_stalled", "Stalled transactions", {"schema"});
    r.histogram("stage_duration_seconds", "Staging time", {"schema"});
    CHECK(r.expose() ==
          "# HELP apply_stalled Stalled transactions\n"
          "# TYPE apply_stalled gauge\n"
          "# HELP stage_duration_seconds Staging time\n"
          "# TYPE stage_duration_seconds histogram\n"
          "# HELP stage_mutations_total Mutations staged\n"
          "# TYPE stage_mutations_total counter\n");
    // Asking again for a family gives the same one.
    r.counter("stage_mutations_total", "Mutations staged", {"schema"}).with({"a.b"}).add(2);
    CHECK(r.counter("stage_mutations_total", "", {"schema"}).with({"a.b"}).value() == 2);
    auto& h = r.histogram("stage_duration_seconds", "", {"schema"}).with({"a.b"});
    h.observe(0.5);
    h.observe(2);
    CHECK(h.count() == 2);
}

TEST_CASE("metrics: concurrent updates are not lost", "[metrics]") {
    molt::metrics::registry r;
    auto& c = r.counter("c_total", "c", {"k"});
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&c, t] {
            for (int i = 0; i < 10000; ++i) {
                c.with({std::to_string(i % 3)}).add();
            }
            (void)t;
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    CHECK(c.with({"0"}).value() + c.with({"1"}).value() + c.with({"2"}).value() == 40000);
}
