// The emulator's sender keeps the webhook sink's ordering and batching rules. A scripted sink
// stands in for the receiver: it decodes every request, fails some on purpose, and checks the
// rules as requests arrive, so a violation is caught when it happens, not inferred afterwards.
#include "molt/emulator/sender.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "molt/emulator/capture.hpp"
#include "molt/emulator/generator.hpp"
#include "molt/emulator/spec.hpp"
#include "molt/proto/decoder.hpp"
#include "molt/proto/encoder.hpp"

using namespace molt;
using namespace molt::emulator;
using namespace std::chrono_literals;

namespace {

struct received {
    size_t transport = 0;
    std::string body;
    int status = 0;
    bool resolved = false;
    std::vector<std::string> keys;  // topic/key per message
    std::vector<hlc> updated;       // per message
};

/// The messages of a rows body, each as JSON text, in order.
std::vector<std::string> payload_messages(const std::string& body) {
    rapidjson::Document doc;
    doc.Parse(body.data(), body.size());
    REQUIRE_FALSE(doc.HasParseError());
    std::vector<std::string> out;
    if (!doc.HasMember("payload")) {
        return out;
    }
    for (const rapidjson::Value& m : doc["payload"].GetArray()) {
        rapidjson::StringBuffer text;
        rapidjson::Writer<rapidjson::StringBuffer> writer(text);
        m.Accept(writer);
        out.emplace_back(text.GetString(), text.GetSize());
    }
    return out;
}

/// The receiving end. Thread-safe; every transport of a sender posts into one sink.
class scripted_sink {
public:
    explicit scripted_sink(double fail_rate, uint64_t seed = 7)
        : fail_rate_(fail_rate), rng_(seed) {}

    /// With retries that can run out, the sender moves on (restarts) after a failure; only
    /// check that retries repeat their bytes when that cannot happen.
    bool retries_never_exhausted = true;

    /// Called by the test before it hands a transaction to the sender.
    void expect(const transaction& txn) {
        const std::lock_guard<std::mutex> lock(mutex_);
        for (const change& c : txn.changes) {
            added_.push_back({txn.updated, fmt::format("{}/[{}]", table_name(c.table), c.pk)});
            key_hashes[added_.back().second] = c.key_hash;
        }
    }
    void set_tables(std::vector<std::string> names) { tables_ = std::move(names); }

    send_outcome post(size_t transport, const std::string& body, send_mode mode) {
        auto decoded = proto::decode_webhook(body);
        REQUIRE(decoded);
        received r;
        r.transport = transport;
        r.body = body;
        r.resolved = decoded->type == proto::webhook_body::kind::resolved;
        struct row {
            std::string key;
            hlc updated;
            bool deleted;
        };
        std::vector<row> rows;
        // In the order the body has them (the decoder groups them by table).
        for (const std::string& message : payload_messages(body)) {
            const auto one = proto::decode_webhook(proto::encode_payload({&message, 1}));
            REQUIRE(one);
            for (const proto::table_mutations& t : one->rows.tables()) {
                for (const proto::mutation& m : t.mutations) {
                    rows.push_back({fmt::format("{}/{}", t.topic, m.key), m.updated, m.deleted});
                    r.keys.push_back(rows.back().key);
                    r.updated.push_back(m.updated);
                }
            }
        }
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            if (cancelled_.count(transport) != 0) {
                return {0, "context canceled"};
            }
            // A retry carries the bytes of the attempt that failed on this connection.
            if (auto it = failed_.find(transport); it != failed_.end()) {
                if (retries_never_exhausted && it->second != body) {
                    violation("a retry on transport {} sent different bytes", transport);
                }
                failed_.erase(it);
            }
            for (const row& w : rows) {
                if (in_flight_.count(w.key) != 0) {
                    violation("{} is in two requests at once", w.key);
                }
            }
            for (const row& w : rows) {
                in_flight_.insert(w.key);
                in_flight_by_transport_[transport].push_back(w.key);
            }
            // CockroachDB emits resolved timestamps one at a time.
            if (r.resolved && resolved_in_flight_++ > 0) {
                violation("two resolved timestamps in flight at once");
            }
            resolved_by_transport_[transport] = r.resolved;
        }
        // Let other workers run while this request is "being applied" (a resolved timestamp
        // longer: the next one is due meanwhile).
        std::this_thread::sleep_for(r.resolved
                                        ? std::chrono::microseconds(3000)
                                        : std::chrono::microseconds(50 + (body.size() % 200)));

        const std::lock_guard<std::mutex> lock(mutex_);
        if (cancelled_.count(transport) != 0) {
            // The sender gave up on it (a restart): rolled back, as the replicator does when
            // its client has gone; cancel() took it out of flight already.
            return {0, "context canceled"};
        }
        release_locked(transport);
        if (mode == send_mode::drop_midway) {
            r.status = 0;
        } else if (std::uniform_real_distribution<double>(0, 1)(rng_) < fail_rate_) {
            r.status = 503;
        } else {
            r.status = 200;
        }
        if (r.status != 200) {
            failed_[transport] = body;
            requests.push_back(std::move(r));
            return {r.status, r.status == 0 ? "dropped" : ""};
        }
        if (r.resolved) {
            // Every row at or below a resolved timestamp got a 2xx before it.
            const hlc t = decoded->resolved;
            while (checked_ < added_.size() && !(t < added_[checked_].first)) {
                if (acknowledged_.count(added_[checked_]) == 0) {
                    violation("resolved {} arrived before {} at {} was acknowledged", t.to_string(),
                              added_[checked_].second, added_[checked_].first.to_string());
                }
                ++checked_;
            }
            max_resolved = std::max(max_resolved, t);
        }
        // A key's versions arrive in order; only a restart may go back (the order test runs
        // without one). A redelivered request repeats versions already seen, in its own order.
        const bool redelivery = !acknowledged_bodies_.insert(body).second;
        for (const row& w : rows) {
            auto& last = last_version_[w.key];
            if (!redelivery && w.updated < last) {
                regressions += 1;
            }
            last = std::max(last, w.updated);
            acknowledged_.insert({w.updated, w.key});
            if (w.deleted) {
                state.erase(w.key);
            } else {
                state.insert(w.key);
            }
        }
        requests.push_back(std::move(r));
        if (mode == send_mode::abandon) {
            // Applied, but the client stopped waiting: it sends the same bytes again.
            failed_[transport] = body;
            return {0, "abandoned"};
        }
        return {200, ""};
    }

    // Results, read after the sender stopped.
    std::vector<std::string> violations;
    std::vector<received> requests;
    std::set<std::string> state;  // keys present, applied in arrival order
    size_t regressions = 0;
    hlc max_resolved;
    std::map<std::string, uint64_t> key_hashes;  // topic/key -> the generator's key hash

    /// transport::cancel(): its request in flight, if any, is abandoned and never applied.
    void cancel(size_t transport) {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (cancelled_.insert(transport).second) {
            release_locked(transport);
        }
    }

private:
    void release_locked(size_t transport) {
        for (const std::string& key : in_flight_by_transport_[transport]) {
            in_flight_.erase(in_flight_.find(key));
        }
        in_flight_by_transport_.erase(transport);
        resolved_in_flight_ -= resolved_by_transport_[transport] ? 1 : 0;
        resolved_by_transport_.erase(transport);
    }

    template <typename... Args>
    void violation(fmt::format_string<Args...> f, Args&&... args) {
        violations.push_back(fmt::format(f, std::forward<Args>(args)...));
    }
    std::string table_name(size_t table) const { return tables_.at(table); }

    double fail_rate_;
    std::mt19937_64 rng_;
    std::mutex mutex_;
    std::vector<std::string> tables_;
    std::vector<std::pair<hlc, std::string>> added_;
    size_t checked_ = 0;
    std::set<std::pair<hlc, std::string>> acknowledged_;
    std::set<std::string> acknowledged_bodies_;
    std::map<size_t, std::string> failed_;
    std::multiset<std::string> in_flight_;
    std::map<size_t, std::vector<std::string>> in_flight_by_transport_;
    std::map<size_t, bool> resolved_by_transport_;
    std::set<size_t> cancelled_;
    int resolved_in_flight_ = 0;
    std::map<std::string, hlc> last_version_;
};

class scripted_transport : public transport {
public:
    scripted_transport(scripted_sink& sink, size_t id) : sink_(sink), id_(id) {}
    send_outcome post(const std::string& body, send_mode mode) override {
        return sink_.post(id_, body, mode);
    }
    void cancel() override { sink_.cancel(id_); }

private:
    scripted_sink& sink_;
    size_t id_;
};

transport_factory connect_to(scripted_sink& sink) {
    auto next = std::make_shared<std::atomic<size_t>>(0);
    return [&sink, next] { return std::make_unique<scripted_transport>(sink, (*next)++); };
}

// A transport that hands each body to a test sink (`post(body)`), and cancel() to its
// `cancel()` when it has one.
template <typename Sink>
class sink_transport : public transport {
public:
    explicit sink_transport(Sink& sink) : sink_(sink) {}
    send_outcome post(const std::string& body, send_mode) override { return sink_.post(body); }
    void cancel() override {
        if constexpr (requires(Sink & s) { s.cancel(); }) {
            sink_.cancel();
        }
    }

private:
    Sink& sink_;
};

workload_spec test_spec() {
    workload_spec spec = default_spec();
    for (table_spec& t : spec.tables) {
        t.foreign_keys.clear();
    }
    return spec;
}

/// Runs `mutations` row changes through a sender into `sink`; returns the sender's statistics
/// and the generator's final state as topic/[key] strings.
struct run_result {
    sender_stats stats;
    bool finished = false;
    std::set<std::string> expected;
    std::vector<size_t> message_bytes;  // each generated message's length, in order
};

run_result run(scripted_sink& sink, sink_settings settings, fault_rates faults, size_t mutations,
               generator_options gen = {}) {
    const workload_spec spec = test_spec();
    std::vector<std::string> names;
    for (const table_spec& t : spec.tables) {
        names.push_back(t.name);
    }
    sink.set_tables(names);
    gen.keys = gen.keys == 1000 ? 50 : gen.keys;  // a small keyspace: many batches share keys
    generator g(spec, gen);
    sender s(settings, faults, connect_to(sink), 42);
    s.start();
    size_t sent = 0;
    std::vector<size_t> bytes;
    while (sent < mutations) {
        const transaction txn = g.next();
        sink.expect(txn);
        s.add(txn);
        sent += txn.changes.size();
        for (const change& c : txn.changes) {
            bytes.push_back(c.message.size());
        }
    }
    run_result out;
    out.message_bytes = std::move(bytes);
    out.finished = s.finish(g.last(), 60s);
    s.stop();
    out.stats = s.stats();
    const auto state = g.final_state();
    for (size_t t = 0; t < state.size(); ++t) {
        for (const auto& [pk, row] : state[t]) {
            out.expected.insert(fmt::format("{}/[{}]", names[t], pk));
        }
    }
    return out;
}

sink_settings fast_settings() {
    sink_settings s;
    s.config.flush.messages = 8;
    s.config.flush.frequency = 2ms;
    s.config.retry.max = 100;  // no restarts from exhausted retries
    s.config.retry.backoff = 100us;
    s.resolved_interval = 5ms;
    s.checkpoint_interval = 5ms;
    s.workers = 8;
    s.restart.initial = 1ms;  // many restarts: they must not add up to minutes
    s.restart.max = 4ms;
    return s;
}

// One worker, one node, no shuffling and no resolved timestamps: requests arrive in generated
// order.
sink_settings one_worker() {
    sink_settings s;
    s.resolved = false;
    s.workers = 1;
    s.order.nodes = 1;
    s.order.shuffle = false;
    return s;
}

void require_no_violations(const scripted_sink& sink) {
    for (const std::string& v : sink.violations) {
        UNSCOPED_INFO(v);
    }
    CHECK(sink.violations.empty());
}

}  // namespace

TEST_CASE("per-key order holds under 8 workers, failures and every fault but replays",
          "[emulator]") {
    scripted_sink sink(/*fail_rate=*/0.2);
    fault_rates faults;
    faults.duplicate = 0.1;
    faults.duplicate_resolved = 0.2;
    faults.split_transaction = 0.2;
    faults.drop_connection = 0.05;
    faults.abandon = 0.05;
    faults.at_least_once = true;  // the counts below are certain, not likely
    generator_options gen;
    gen.phantom_delete_rate = 0.05;
    const run_result r = run(sink, fast_settings(), faults, 5000, gen);

    REQUIRE(r.finished);
    require_no_violations(sink);
    CHECK(sink.regressions == 0);
    CHECK(r.stats.restarts == 0);
    // The faults and failures did happen, or the test proved nothing.
    CHECK(r.stats.retries > 100);
    CHECK(r.stats.duplicates > 0);
    CHECK(r.stats.duplicate_resolved > 0);
    CHECK(r.stats.split_transactions > 0);
    CHECK(r.stats.dropped_connections > 0);
    CHECK(r.stats.abandoned > 0);
    CHECK(r.stats.resolved_sent > 0);
    // Work really overlapped: more transports posted than one.
    std::set<size_t> transports;
    for (const received& q : sink.requests) {
        transports.insert(q.transport);
    }
    CHECK(transports.size() > 1);
    // Applied in arrival order, the receiver ends where the source did.
    CHECK(sink.state == r.expected);
    // Everything is covered by the closing resolved timestamp: no message text is held.
    CHECK(r.stats.text_bytes_held == 0);
}

TEST_CASE("with replays and exhausted retries, no resolved timestamp precedes its rows",
          "[emulator]") {
    scripted_sink sink(/*fail_rate=*/0.3);
    sink.retries_never_exhausted = false;
    sink_settings settings = fast_settings();
    settings.config.retry.max = 1;  // often exhausted: the changefeed restarts
    // Replays in HLC order: a range's checkpoint moves past a key-by-key catch-up only once the
    // whole catch-up is acknowledged, and with 9 % of requests exhausting their retries (one
    // restart per ~11 requests) the catch-ups would never finish, as on CockroachDB.
    settings.order.key_order_replay = false;
    // Checkpoints run ahead of resolved timestamps, and some resolved timestamps are lost: the
    // replays from the saved checkpoint still leave the receiver (durable before its 200) whole.
    settings.resolved_interval = 20ms;
    fault_rates faults;
    faults.replay = 0.2;
    faults.duplicate = 0.05;
    faults.lost_resolved = 0.2;
    faults.at_least_once = true;
    const run_result r = run(sink, settings, faults, 3000);

    REQUIRE(r.finished);
    require_no_violations(sink);
    CHECK(r.stats.restarts > 0);
    CHECK(r.stats.lost_resolved > 0);
    CHECK(sink.regressions > 0);  // replays did send older versions again
    CHECK(sink.state == r.expected);
    CHECK(sink.max_resolved > hlc());
    CHECK(r.stats.text_bytes_held == 0);  // freed while replays went on, and nothing broke
}

TEST_CASE("at_least_once: each enabled fault fires once even where chance and timing would not",
          "[emulator]") {
    fault_rates faults;
    for (double* rate : {&faults.duplicate, &faults.replay, &faults.late_duplicate,
                         &faults.duplicate_resolved, &faults.split_transaction,
                         &faults.drop_connection, &faults.lost_resolved, &faults.abandon}) {
        *rate = 1e-12;  // never by chance
    }
    faults.at_least_once = true;
    generator_options gen;
    gen.at_least_once = true;  // the first transaction has 2+ rows to split
    sink_settings settings = fast_settings();
    // No resolved timestamp before finish(): the replay and the late duplicate are made up there.
    settings.resolved_interval = settings.checkpoint_interval = std::chrono::hours(1);
    {
        scripted_sink sink(0);
        const run_result r = run(sink, settings, faults, 6, gen);
        REQUIRE(r.finished);
        require_no_violations(sink);
        CHECK(r.stats.duplicates == 1);
        CHECK(r.stats.late_duplicates == 1);
        CHECK(r.stats.duplicate_resolved == 1);
        CHECK(r.stats.split_transactions == 1);
        CHECK(r.stats.dropped_connections == 1);
        CHECK(r.stats.lost_resolved == 1);
        CHECK(r.stats.abandoned == 1);
        CHECK(r.stats.restarts == 2);  // the replay, and the restart that lost a resolved
    }
    {
        // Rates of 0 stay off.
        scripted_sink sink(0);
        fault_rates off;
        off.at_least_once = true;
        const run_result r = run(sink, settings, off, 6, gen);
        REQUIRE(r.finished);
        CHECK(r.stats.duplicates + r.stats.restarts + r.stats.late_duplicates +
                  r.stats.duplicate_resolved + r.stats.split_transactions +
                  r.stats.dropped_connections + r.stats.lost_resolved + r.stats.abandoned ==
              0);
    }
}

TEST_CASE("Flush.Messages closes a batch at that many messages", "[emulator]") {
    scripted_sink sink(0);
    sink_settings settings = one_worker();
    settings.config.flush.messages = 5;
    generator_options gen;
    gen.min_rows = gen.max_rows = 1;
    const run_result r = run(sink, settings, {}, 23, gen);
    REQUIRE(r.finished);
    std::vector<size_t> sizes;
    for (const received& q : sink.requests) {
        sizes.push_back(q.keys.size());
    }
    CHECK(sizes == std::vector<size_t>{5, 5, 5, 5, 3});
}

TEST_CASE("Flush.Bytes closes a batch once it reaches that many bytes", "[emulator]") {
    scripted_sink sink(0);
    sink_settings settings = one_worker();
    settings.config.flush.bytes = 2000;
    generator_options gen;
    gen.min_rows = gen.max_rows = 1;
    const run_result r = run(sink, settings, {}, 200, gen);
    REQUIRE(r.finished);
    REQUIRE(sink.requests.size() > 2);
    // One worker, one row per transaction: requests carry the messages in generated order.
    size_t next = 0;
    for (size_t i = 0; i < sink.requests.size(); ++i) {
        const size_t n = sink.requests[i].keys.size();
        REQUIRE(next + n <= r.message_bytes.size());
        size_t total = 0;
        for (size_t k = next; k < next + n; ++k) {
            total += r.message_bytes[k];
        }
        next += n;
        if (i + 1 < sink.requests.size()) {
            // Checked after appending: at least Bytes, and one message fewer was below it.
            CHECK(total >= 2000);
            CHECK(total - r.message_bytes[next - 1] < 2000);
        }
    }
    CHECK(next == r.message_bytes.size());
}

TEST_CASE("all-zero Flush sends every message on its own", "[emulator]") {
    scripted_sink sink(0);
    sink_settings settings;
    settings.resolved = false;
    settings.workers = 2;
    const run_result r = run(sink, settings, {}, 50);
    REQUIRE(r.finished);
    REQUIRE(!sink.requests.empty());
    for (const received& q : sink.requests) {
        CHECK(q.keys.size() == 1);
    }
}

TEST_CASE("Flush.Frequency sends a partial batch without waiting for more", "[emulator]") {
    scripted_sink sink(0);
    sink_settings settings = one_worker();
    settings.config.flush.messages = 1000;
    settings.config.flush.frequency = 20ms;
    const workload_spec spec = test_spec();
    sink.set_tables({spec.tables[0].name, spec.tables[1].name});
    generator g(spec, {});
    sender s(settings, {}, connect_to(sink), 1);
    s.start();
    const transaction txn = g.next();
    sink.expect(txn);
    s.add(txn);
    // Far fewer than Messages rows: only Frequency can send them.
    std::this_thread::sleep_for(500ms);
    CHECK(s.stats().rows_acknowledged == txn.changes.size());
    s.stop();
}

namespace {

// Adds a transaction a millisecond to `s` for `how_long`, each announced to `sink` first.
void add_for(sender& s, scripted_sink& sink, generator& g, std::chrono::nanoseconds how_long) {
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < how_long) {
        const transaction txn = g.next();
        sink.expect(txn);
        s.add(txn);
        std::this_thread::sleep_for(1ms);
    }
}

}  // namespace

TEST_CASE("resolved timestamps come no more often than the interval", "[emulator]") {
    scripted_sink sink(0);
    sink_settings settings;
    settings.config.flush.messages = 10;
    settings.resolved_interval = 50ms;
    settings.checkpoint_interval = 100ms;  // the larger of the two governs
    const workload_spec spec = test_spec();
    sink.set_tables({spec.tables[0].name, spec.tables[1].name});
    generator g(spec, {});
    sender s(settings, {}, connect_to(sink), 1);
    s.start();
    add_for(s, sink, g, 1s);
    s.stop();
    const auto resolved = std::count_if(sink.requests.begin(), sink.requests.end(),
                                        [](const received& q) { return q.resolved; });
    require_no_violations(sink);
    CHECK(resolved >= 5);
    CHECK(resolved <= 11);
}

namespace {

// Arrival order of the rows in acknowledged requests.
struct order_counts {
    size_t shuffled_requests = 0;   // requests whose messages are not in HLC order
    size_t overtaken = 0;           // messages that arrived after a newer one (of another key)
    size_t split_transactions = 0;  // HLCs whose rows arrived in more than one request
    size_t lagging_overtaken = 0;   // overtaken messages of the lagging range (range 0)
};

order_counts count_order(const scripted_sink& sink) {
    order_counts out;
    hlc newest;
    std::map<hlc, std::set<size_t>> requests_of;
    for (size_t i = 0; i < sink.requests.size(); ++i) {
        const received& q = sink.requests[i];
        if (q.resolved || q.status != 200) {
            continue;
        }
        out.shuffled_requests += std::is_sorted(q.updated.begin(), q.updated.end()) ? 0 : 1;
        for (size_t m = 0; m < q.updated.size(); ++m) {
            if (q.updated[m] < newest) {
                ++out.overtaken;
                out.lagging_overtaken += range_of(sink.key_hashes.at(q.keys[m])) == 0 ? 1 : 0;
            }
            newest = std::max(newest, q.updated[m]);
            requests_of[q.updated[m]].insert(i);
        }
    }
    for (const auto& [t, requests] : requests_of) {
        out.split_transactions += requests.size() > 1 ? 1 : 0;
    }
    return out;
}

}  // namespace

TEST_CASE("rows cross keys, tables and transactions out of order; each key's stay in order",
          "[emulator]") {
    {
        // Three nodes batching on their own, requests shuffled: the defaults.
        scripted_sink sink(0);
        const run_result r = run(sink, fast_settings(), {}, 3000);
        REQUIRE(r.finished);
        require_no_violations(sink);
        CHECK(sink.regressions == 0);
        CHECK(sink.state == r.expected);
        const order_counts c = count_order(sink);
        CHECK(c.shuffled_requests > 0);
        CHECK(c.overtaken > 0);
        CHECK(c.split_transactions > 0);
    }
    {
        // One node, in order, one worker: rows arrive in HLC order, so the counts can be 0.
        scripted_sink sink(0);
        sink_settings settings = fast_settings();
        settings.workers = 1;
        settings.order.nodes = 1;
        settings.order.shuffle = false;
        const run_result r = run(sink, settings, {}, 3000);
        REQUIRE(r.finished);
        const order_counts c = count_order(sink);
        CHECK(c.shuffled_requests == 0);
        CHECK(c.overtaken == 0);
    }
}

TEST_CASE("a lagging range holds resolved timestamps back while other keys run ahead",
          "[emulator]") {
    // One node, in order, one worker: only the lag can reorder rows.
    scripted_sink sink(0);
    sink_settings settings = fast_settings();
    settings.workers = 1;
    settings.order.nodes = 1;
    settings.order.shuffle = false;
    settings.order.lagging_range = 100ms;
    const workload_spec spec = test_spec();
    sink.set_tables({spec.tables[0].name, spec.tables[1].name});
    generator g(spec, {});
    sender s(settings, {}, connect_to(sink), 1);
    s.start();
    add_for(s, sink, g, 500ms);
    REQUIRE(s.finish(g.last(), 10s));
    s.stop();
    // No resolved timestamp came before a lagging row it covers (the sink checks each one), yet
    // some went out while the lagging range was behind.
    require_no_violations(sink);
    CHECK(s.stats().resolved_sent > 2);
    const order_counts c = count_order(sink);
    CHECK(c.lagging_overtaken > 0);
    CHECK(c.overtaken == c.lagging_overtaken);  // the other ranges stayed in HLC order
    CHECK(sink.regressions == 0);
}

namespace {

// A receiver that answers 200 as soon as rows arrive but keeps them only in memory until a
// resolved timestamp covers them (a receiver that is not durable before its 2xx). crash() loses
// what no resolved timestamp covered and refuses requests until recover().
class volatile_sink {
public:
    send_outcome post(const std::string& body) {
        auto decoded = proto::decode_webhook(body);
        REQUIRE(decoded);
        const std::lock_guard<std::mutex> lock(mutex_);
        if (crashed_) {
            return {503, "down"};
        }
        if (decoded->type == proto::webhook_body::kind::resolved) {
            for (auto it = pending_.begin(); it != pending_.end();) {
                if (it->first <= decoded->resolved) {
                    durable.insert(it->second);
                    it = pending_.erase(it);
                } else {
                    ++it;
                }
            }
            return {200, ""};
        }
        for (const proto::table_mutations& t : decoded->rows.tables()) {
            for (const proto::mutation& m : t.mutations) {
                pending_.insert({m.updated, fmt::format("{}/{}", t.topic, m.key)});
                received.insert(m.updated);
            }
        }
        return {200, ""};
    }
    void crash() {
        const std::lock_guard<std::mutex> lock(mutex_);
        crashed_ = true;
        pending_.clear();
        received_before_crash = received;
        received.clear();
    }
    void recover() {
        const std::lock_guard<std::mutex> lock(mutex_);
        crashed_ = false;
    }

    std::set<std::string> durable;  // (topic/key) rows a resolved timestamp made durable
    std::set<hlc> received;         // row HLCs received since the last crash
    std::set<hlc> received_before_crash;

private:
    std::mutex mutex_;
    bool crashed_ = false;
    std::multimap<hlc, std::string> pending_;
};

// One row of table t (key `id`) in a transaction of its own at wall time `wall` (1e9 + id).
transaction one_row(int64_t id, int64_t wall = 0) {
    transaction t;
    t.updated = hlc(wall != 0 ? wall : 1'000'000'000 + id, 0);
    change c;
    c.table = 0;
    c.pk = std::to_string(id);
    c.key_hash = static_cast<uint64_t>(id);
    c.message =
        fmt::format(R"({{"after": {{"id": {0}}}, "key": [{0}], "topic": "t", "updated": "{1}"}})",
                    id, t.updated.to_string());
    t.changes.push_back(c);
    return t;
}

}  // namespace

// Not from the last resolved timestamp delivered: a receiver that acknowledges rows before they
// are durable loses some, as with CockroachDB.
TEST_CASE("a restart replays from the saved checkpoint", "[emulator]") {
    volatile_sink sink;
    sink_settings settings;
    settings.config.flush.messages = 4;
    settings.config.flush.frequency = 2ms;
    settings.config.retry.max = 1;
    settings.config.retry.backoff = 1ms;
    settings.restart.initial = 1ms;
    settings.checkpoint_interval = 5ms;                  // checkpoints run ahead ...
    settings.resolved_interval = std::chrono::hours(1);  // ... of resolved timestamps
    settings.workers = 2;
    sender s(
        settings, {}, [&] { return std::make_unique<sink_transport<volatile_sink>>(sink); }, 3);
    s.start();
    std::vector<transaction> txns;
    for (int64_t i = 1; i <= 40; ++i) {
        txns.push_back(one_row(i));
    }
    for (size_t i = 0; i < 20; ++i) {
        s.add(txns[i]);
    }
    s.advance(txns[19].updated);  // no other transaction shares its HLC
    // The checkpoint passes the first 20 rows; no resolved timestamp has gone out.
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (s.high_water() < txns[19].updated && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(1ms);
    }
    REQUIRE_FALSE(s.high_water() < txns[19].updated);
    CHECK(s.acknowledged_resolved() == hlc());
    // The receiver crashes, losing them; the next request fails twice, so the job restarts.
    sink.crash();
    s.add(txns[20]);
    while (s.stats().restarts == 0 && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(1ms);
    }
    REQUIRE(s.stats().restarts > 0);
    sink.recover();
    for (size_t i = 21; i < txns.size(); ++i) {
        s.add(txns[i]);
    }
    REQUIRE(s.finish(txns.back().updated, 10s));
    s.stop();
    // Nothing at or below the checkpoint was sent again; the rows above it all were.
    CHECK(sink.received_before_crash.size() == 20);
    CHECK(sink.received.size() == 20);
    CHECK(*sink.received.begin() == txns[20].updated);
    // So the first 20 rows are lost at this receiver, as they would be with CockroachDB.
    CHECK(sink.durable.size() == 20);
    CHECK(sink.durable.count("t/[1]") == 0);
    CHECK(sink.durable.count("t/[40]") == 1);
}

TEST_CASE("restart backoff doubles up to its cap, and starts over after a lull", "[emulator]") {
    restart_backoff_settings settings;
    settings.initial = 1s;
    settings.max = 10s;
    settings.reset_after = 60s;
    restart_backoff backoff(settings);
    std::mt19937_64 rng(5);
    auto now = std::chrono::steady_clock::time_point() + 1h;
    auto within = [](std::chrono::nanoseconds d, std::chrono::nanoseconds base) {
        return d >= base * 0.85 && d <= base * 1.15;
    };
    for (const auto expected : {1s, 2s, 4s, 8s, 10s, 10s}) {
        const auto d = backoff.next(now, rng);
        INFO(d.count());
        CHECK(within(d, expected));
        now += 5s;
    }
    CHECK(within(backoff.next(now + 2min, rng), 1s));  // no restart for a while
    CHECK(within(backoff.next(now + 2min + 1s, rng), 2s));
}

namespace {

// Requests whose rows include key 1 never get an answer (a receiver stuck on its target, and
// no client timeout); those with key 2 fail until the first restart. Everything else lands.
class stuck_sink {
public:
    send_outcome post(const std::string& body) {
        std::unique_lock<std::mutex> lock(mutex_);
        if (body.find(R"("key": [1])") != std::string::npos && !restarted_) {
            ++stuck_;
            changed_.notify_all();
            changed_.wait(lock, [&] { return cancelled_; });  // only cancel() ends it
            cancelled_ = false;
            --stuck_;
            return {0, "context canceled"};
        }
        if (body.find(R"("key": [2])") != std::string::npos && !restarted_) {
            return {503, "503 Service Unavailable: "};
        }
        for (size_t at = body.find(R"("key": [)"); at != std::string::npos;
             at = body.find(R"("key": [)", at + 1)) {
            landed.insert(body.substr(at + 8, body.find(']', at) - at - 8));
        }
        changed_.notify_all();
        return {200, ""};
    }
    void cancel() {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (stuck_ > 0) {
            cancelled_ = true;
            restarted_ = true;
            ++cancels;
            changed_.notify_all();
        }
    }
    void wait_stuck() {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stuck_ > 0; });
    }
    bool wait_landed(const std::set<std::string>& keys, std::chrono::nanoseconds timeout) {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] {
            return std::includes(landed.begin(), landed.end(), keys.begin(), keys.end());
        });
    }

    std::set<std::string> landed;
    int cancels = 0;

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    int stuck_ = 0;
    bool cancelled_ = false;
    bool restarted_ = false;
};

}  // namespace

// The job's error is the outcome of the newest request that answered: an older request that
// succeeds late (it was sent before the sink began failing) does not hide the failure.
TEST_CASE("a late success of an older request does not clear the newer failure", "[emulator]") {
    struct gate_sink {
        send_outcome post(const std::string& body) {
            std::unique_lock<std::mutex> lock(mutex_);
            if (body.find(R"("key": [1])") != std::string::npos) {
                held = true;
                changed_.notify_all();
                changed_.wait(lock, [&] { return released; });
                return {200, ""};
            }
            return {400, "400 Bad Request: unknown schema: nowhere"};
        }
        void wait_held() {
            std::unique_lock<std::mutex> lock(mutex_);
            changed_.wait(lock, [&] { return held; });
        }
        void release() {
            const std::lock_guard<std::mutex> lock(mutex_);
            released = true;
            changed_.notify_all();
        }
        std::mutex mutex_;
        std::condition_variable changed_;
        bool held = false;
        bool released = false;
    } sink;
    sink_settings settings;
    settings.config.retry.backoff = 10s;  // the failed row waits for its retry while we look
    settings.resolved = false;
    settings.workers = 2;
    sender s(
        settings, {}, [&] { return std::make_unique<sink_transport<gate_sink>>(sink); }, 11);
    s.start();
    s.add(one_row(1));
    sink.wait_held();  // sent while the sink still answered
    s.add(one_row(2));
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (s.last_error().empty() && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(1ms);
    }
    REQUIRE(s.last_error() == "400 Bad Request: unknown schema: nowhere");
    sink.release();
    while (s.stats().latencies.empty() && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(1ms);
    }
    REQUIRE(s.stats().latencies.size() == 1);  // row 1's success has been taken in
    CHECK(s.last_error() == "400 Bad Request: unknown schema: nowhere");
    s.stop();
}

// CockroachDB cancels the job's context: requests in flight end with it, and the replay does not
// wait for their answers (the receiver may still be applying them).
TEST_CASE("a restart cancels the requests in flight instead of waiting for them", "[emulator]") {
    stuck_sink sink;
    sink_settings settings;
    settings.config.retry.max = 1;
    settings.config.retry.backoff = 1ms;
    settings.resolved = false;
    settings.workers = 2;
    settings.restart.initial = 1ms;
    sender s(
        settings, {}, [&] { return std::make_unique<sink_transport<stuck_sink>>(sink); }, 9);
    s.start();
    s.add(one_row(1));
    sink.wait_stuck();  // one worker waits for an answer that never comes
    s.add(one_row(2));  // the other exhausts its retries: the changefeed restarts
    REQUIRE(s.finish(one_row(10).updated, 10s));
    s.stop();
    CHECK(sink.cancels == 1);
    const sender_stats st = s.stats();
    CHECK(st.restarts == 1);
    CHECK(st.cancelled == 1);
    CHECK(sink.landed == std::set<std::string>{"1", "2"});
}

// Each node has its own sink I/O workers (changefeed-webhook.md §1.8): one whose requests all
// wait for answers holds back no other node's rows.
TEST_CASE("a node whose workers all wait holds back no other node", "[emulator]") {
    stuck_sink sink;
    sink_settings settings;
    settings.resolved = false;
    settings.workers = 1;
    settings.order.nodes = 2;
    sender s(
        settings, {}, [&] { return std::make_unique<sink_transport<stuck_sink>>(sink); }, 5);
    s.start();
    s.add(one_row(1));
    sink.wait_stuck();  // key 1's node: its only worker waits for ever
    std::set<std::string> other_node;
    for (int64_t k = 3; other_node.size() < 5; ++k) {
        if (range_of(static_cast<uint64_t>(k)) % 2 != range_of(1) % 2) {
            s.add(one_row(k));
            other_node.insert(std::to_string(k));
        }
    }
    CHECK(sink.wait_landed(other_node, 10s));
    s.stop();
}

namespace {

// Answers 200; its connection counts as idle 20 ms after a request.
class idle_counting_transport : public transport {
public:
    explicit idle_counting_transport(std::atomic<int>& closes) : closes_(closes) {}
    send_outcome post(const std::string&, send_mode) override {
        last_used_ = std::chrono::steady_clock::now();
        open_ = true;
        return {200, ""};
    }
    void cancel() override {}
    std::optional<std::chrono::steady_clock::time_point> close_if_idle(
        std::chrono::steady_clock::time_point now) override {
        if (!open_) {
            return std::nullopt;
        }
        if (now - last_used_ >= 20ms) {
            open_ = false;
            ++closes_;
            return std::nullopt;
        }
        return last_used_ + 20ms;
    }

private:
    std::atomic<int>& closes_;
    std::chrono::steady_clock::time_point last_used_;
    bool open_ = false;
};

}  // namespace

// A changefeed job stops its sender when its feed fails and when it is cancelled: the two can
// come at once.
TEST_CASE("stop() from two threads at once", "[emulator]") {
    for (int round = 0; round < 20; ++round) {
        std::atomic<int> closes{0};
        sender s(
            one_worker(), {}, [&] { return std::make_unique<idle_counting_transport>(closes); },
            static_cast<uint64_t>(round));
        s.start();
        s.add(one_row(1));
        std::thread other([&] { s.stop(); });
        s.stop();
        other.join();
    }
    SUCCEED("no hang, no crash");
}

TEST_CASE("a worker closes its connection once it has been idle for the idle timeout",
          "[emulator]") {
    std::atomic<int> closes{0};
    sink_settings settings = one_worker();
    sender s(
        settings, {}, [&] { return std::make_unique<idle_counting_transport>(closes); }, 7);
    s.start();
    s.add(one_row(1));
    REQUIRE(s.finish(one_row(1).updated, 10s));
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (closes == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
    }
    CHECK(closes == 1);  // one request, one connection, closed once
    s.stop();
}

namespace {

// Refuses the first `refusals` requests (503) (only those with key `only`, when given), and
// records each accepted row as "key@wall".
class refusing_sink {
public:
    explicit refusing_sink(int refusals, std::string only = "")
        : refusals_(refusals), only_(std::move(only)) {}
    send_outcome post(const std::string& body) {
        const std::lock_guard<std::mutex> lock(mutex_);
        std::vector<std::string> rows;
        for (const std::string& message : payload_messages(body)) {
            const auto one = proto::decode_webhook(proto::encode_payload({&message, 1}));
            REQUIRE(one);
            const proto::mutation& m = one->rows.tables().at(0).mutations.at(0);
            rows.push_back(fmt::format("{}@{}", m.key, m.updated.wall()));
        }
        const bool chosen = only_.empty() || std::any_of(rows.begin(), rows.end(), [&](auto& r) {
                                return r.starts_with(only_ + "@");
                            });
        if (chosen && refusals_-- > 0) {
            refused.push_back(std::move(rows));
            return {503, "503 Service Unavailable: "};
        }
        accepted.insert(accepted.end(), rows.begin(), rows.end());
        return {200, ""};
    }
    std::vector<std::vector<std::string>> refused;  // per request
    std::vector<std::string> accepted;

private:
    std::mutex mutex_;
    int refusals_;
    std::string only_;
};

}  // namespace

// A catch-up scan goes key by key, each key's versions oldest first.
TEST_CASE("a restart replays key by key, not in HLC order", "[emulator]") {
    refusing_sink sink(2);  // the first request and its one retry: the changefeed restarts
    sink_settings settings;
    settings.config.retry.max = 1;
    settings.config.retry.backoff = 1ms;
    settings.restart.initial = 1ms;
    settings.resolved = false;
    settings.workers = 1;
    settings.order.nodes = 1;
    settings.order.shuffle = false;
    settings.config.flush.messages = 1000;
    settings.checkpoint_interval = 5ms;  // flushes the open batch: every row in one request
    sender s(
        settings, {}, [&] { return std::make_unique<sink_transport<refusing_sink>>(sink); }, 4);
    // Keys 1 to 4, each written three times, in turn.
    std::vector<std::string> by_key;
    int64_t wall = 1'000'000'000;
    for (int round = 0; round < 3; ++round) {
        for (int64_t key = 1; key <= 4; ++key) {
            s.add(one_row(key, ++wall));
        }
    }
    for (int64_t key = 1; key <= 4; ++key) {
        for (int round = 0; round < 3; ++round) {
            by_key.push_back(fmt::format("[{}]@{}", key, 1'000'000'001 + round * 4 + (key - 1)));
        }
    }
    s.start();
    REQUIRE(s.finish(hlc(wall, 0), 10s));
    s.stop();
    CHECK(s.stats().restarts == 1);
    // First sent in HLC order, ...
    REQUIRE(sink.refused.size() == 2);
    CHECK(sink.refused[0].front() == "[1]@1000000001");
    CHECK(sink.refused[0].back() == "[4]@1000000012");
    CHECK_FALSE(sink.refused[0] == by_key);
    // ... replayed key by key (one_row's key hash is the key).
    CHECK(sink.accepted == by_key);
}

namespace {

// Answers 200 and records, in arrival order, each row's HLC and each resolved timestamp, with the
// wall time it arrived.
class arrival_sink {
public:
    struct arrival {
        bool resolved = false;
        hlc at;
        int64_t wall = 0;
    };
    send_outcome post(const std::string& body) {
        auto decoded = proto::decode_webhook(body);
        REQUIRE(decoded);
        const std::lock_guard<std::mutex> lock(mutex_);
        const int64_t now = wall_clock_nanos();
        if (decoded->type == proto::webhook_body::kind::resolved) {
            arrivals.push_back({true, decoded->resolved, now});
        }
        for (const proto::table_mutations& t : decoded->rows.tables()) {
            for (const proto::mutation& m : t.mutations) {
                arrivals.push_back({false, m.updated, now});
            }
        }
        return {200, ""};
    }
    size_t resolved_count() {
        const std::lock_guard<std::mutex> lock(mutex_);
        return static_cast<size_t>(std::count_if(arrivals.begin(), arrivals.end(),
                                                 [](const arrival& a) { return a.resolved; }));
    }
    std::vector<arrival> arrivals;

private:
    std::mutex mutex_;
};

}  // namespace

// A range resolves time only up to kv.closed_timestamp.target_duration behind the wall clock,
// published every kv.rangefeed.closed_timestamp_refresh_interval: rows go out at once, their
// resolved timestamps that much later.
TEST_CASE("resolved timestamps trail the wall clock by the closed timestamp", "[emulator]") {
    constexpr int64_t target = 300'000'000;
    constexpr int64_t refresh = 100'000'000;
    arrival_sink sink;
    sink_settings settings;
    settings.resolved_interval = 10ms;
    settings.checkpoint_interval = 10ms;
    settings.closed_timestamp.target = std::chrono::nanoseconds(target);
    settings.closed_timestamp.refresh = std::chrono::nanoseconds(refresh);
    sender s(
        settings, {}, [&] { return std::make_unique<sink_transport<arrival_sink>>(sink); }, 4);
    s.start();
    hlc last;
    std::set<int64_t> row_walls;
    for (int64_t i = 1; i <= 30; ++i) {
        const transaction t = one_row(i, wall_clock_nanos());
        last = t.updated;
        row_walls.insert(last.wall());
        s.add(t);
        std::this_thread::sleep_for(20ms);
    }
    REQUIRE(s.finish(last, 10s));
    s.stop();
    CHECK(s.rows_acknowledged_at());
    std::vector<std::pair<hlc, int64_t>> resolved;  // value, arrival
    for (const arrival_sink::arrival& a : sink.arrivals) {
        if (a.resolved) {
            resolved.emplace_back(a.at, a.wall);
        }
    }
    REQUIRE(resolved.size() >= 2);
    CHECK(resolved.back().first == last);  // the closing one
    for (const auto& [value, arrived] : resolved) {
        INFO(value.to_string() << " arrived at " << arrived);
        CHECK(value.wall() <= arrived - target);
        // A published closed timestamp, or just below a row not acknowledged yet (a slow
        // answer), or the closing one.
        if (!(value == last) && row_walls.count(value.wall() + 1) == 0) {
            CHECK(value.logical() == 0);
            CHECK(value.wall() % refresh == 0);
        }
    }
}

// Unrelated transactions can share an HLC, and the workload's next transaction may take the one
// just sent: until it is added, that HLC is not resolved.
TEST_CASE("a transaction sharing the HLC of the one before lands above every resolved timestamp",
          "[emulator]") {
    arrival_sink sink;
    sink_settings settings;
    settings.resolved_interval = 5ms;
    settings.checkpoint_interval = 5ms;
    sender s(
        settings, {}, [&] { return std::make_unique<sink_transport<arrival_sink>>(sink); }, 4);
    s.start();
    const transaction first = one_row(1);
    s.add(first);
    // Resolved timestamps go out meanwhile.
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (sink.resolved_count() == 0 && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(1ms);
    }
    REQUIRE(sink.resolved_count() >= 1);
    std::this_thread::sleep_for(50ms);  // ten resolved intervals
    transaction second = one_row(2);
    second.updated = first.updated;
    second.changes[0].message =
        fmt::format(R"({{"after": {{"id": 2}}, "key": [2], "topic": "t", "updated": "{}"}})",
                    first.updated.to_string());
    s.add(second);
    REQUIRE(s.finish(first.updated, 10s));
    s.stop();
    hlc resolved;
    for (const arrival_sink::arrival& a : sink.arrivals) {
        if (a.resolved) {
            resolved = std::max(resolved, a.at);
        } else {
            INFO("a row at " << a.at.to_string() << " after resolved " << resolved.to_string());
            CHECK(resolved < a.at);
        }
    }
}

// CockroachDB saves span checkpoints ahead of the high-water mark: a restart does not send a
// range's rows again when that range had them all acknowledged.
TEST_CASE("a restart replays each range from its own checkpoint", "[emulator]") {
    int64_t a = 1;
    int64_t b = 2;
    while (range_of(static_cast<uint64_t>(b)) == range_of(static_cast<uint64_t>(a))) {
        ++b;
    }
    refusing_sink sink(2, fmt::format("[{}]", b));  // b's request and its retry: a restart
    sink_settings settings;
    settings.config.retry.max = 1;
    settings.config.retry.backoff = 100ms;  // the checkpoints are saved meanwhile
    settings.restart.initial = 1ms;
    settings.resolved = false;
    settings.workers = 2;
    settings.checkpoint_interval = 5ms;
    sender s(
        settings, {}, [&] { return std::make_unique<sink_transport<refusing_sink>>(sink); }, 4);
    s.start();
    s.add(one_row(b, 1'000'000'001));
    s.add(one_row(a, 1'000'000'002));
    s.advance(hlc(1'000'000'002, 0));  // no other transaction shares a's HLC
    REQUIRE(s.finish(hlc(1'000'000'002, 0), 10s));
    s.stop();
    CHECK(s.stats().restarts == 1);
    // a, above the job's checkpoint (b held it back) but at or below its range's, went once.
    std::vector<std::string> accepted = sink.accepted;
    std::sort(accepted.begin(), accepted.end());
    std::vector<std::string> once{fmt::format("[{}]@1000000002", a),
                                  fmt::format("[{}]@1000000001", b)};
    std::sort(once.begin(), once.end());
    CHECK(accepted == once);
}
