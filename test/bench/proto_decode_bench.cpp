// proto_decode_bench: decodes a realistic ~1 MiB changefeed batch (mixed types, thousands of
// rows, three tables, deletes) with molt::proto::decode_webhook, and parses the same bytes with
// RapidJSON's plain DOM parser as the baseline, in the same run. Prints MB/s, rows/s and the
// ratio (target: decode >= 0.7x the plain parse).
//
//   cmake --preset bench && cmake --build --preset bench --target proto_decode_bench
//   build/bench/bench/proto_decode_bench [iterations]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "molt/proto/crdb_types.hpp"
#include "molt/proto/decoder.hpp"
#include "molt/proto/encoder.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using molt::proto::column_type_from_name;
using molt::proto::json;

json pg(std::string_view type, std::string_view text) {
    return molt::proto::value_from_pg_text(column_type_from_name(type), text).value();
}

// Rows of an orders-like table, a customers table and an events table with JSONB, in the
// text CockroachDB sends; about 1 MiB in total.
std::string make_batch(size_t target_bytes, size_t& rows) {
    std::mt19937_64 rng(42);
    auto pick = [&](uint64_t n) { return rng() % n; };
    static const char* names[] = {"Ada Lovelace",    "Grace Hopper", "Édouard Lucas",
                                  "李小龙",          "Zoë O'Brien",  "Søren \"the\" Kierkegaard",
                                  "Anna-Lena Müller"};
    std::vector<std::string> messages;
    size_t bytes = 0;
    int64_t wall = 1'732'600'000'000'000'000;
    for (size_t i = 0; bytes < target_bytes; ++i) {
        molt::proto::message m;
        wall += static_cast<int64_t>(pick(1000000));
        m.updated = molt::hlc(wall, static_cast<int32_t>(pick(3) == 0 ? pick(5) : 0));
        const uint64_t id = 528514320239329281ULL + i * 7919;
        switch (i % 3) {
        case 0:
            m.topic = "orders";
            m.key = json::array({json::number(std::to_string(id))});
            m.after = json::object({
                {"id", json::number(std::to_string(id))},
                {"customer_id", json::number(static_cast<int64_t>(pick(100000)))},
                {"amount", pg("numeric(12,2)", std::to_string(pick(10000000)) + "." +
                                                   std::to_string(10 + pick(90)))},
                {"price", pg("float8", std::to_string(static_cast<double>(pick(1000000)) / 128.0))},
                {"status", json::string(pick(2) ? "open" : "shipped")},
                {"created_at", pg("timestamptz", "2026-11-26 12:" + std::to_string(10 + pick(50)) +
                                                     ":00.123456+00")},
                {"paid", json::boolean(pick(2) == 0)},
                {"note", pick(5) == 0 ? json::null()
                                      : json::string("deliver to the back door, ring twice")},
            });
            break;
        case 1:
            m.topic = "customers";
            m.key = json::array({json::string("f47ac10b-58cc-4372-a567-" +
                                              std::to_string(100000000000 + pick(899999999999)))});
            m.after =
                pick(10) == 0
                    ? json::null()
                    : json::object({
                          {"id", m.key.items()[0]},
                          {"name", json::string(names[pick(std::size(names))])},
                          {"email",
                           json::string("user" + std::to_string(pick(1000000)) + "@example.com")},
                          {"avatar", pg("bytea", "\\x0123456789abcdef0123456789abcdef")},
                          {"born", json::string("1990-0" + std::to_string(1 + pick(9)) + "-15")},
                          {"balance", pg("numeric", "123456789012345678901234.5678")},
                      });
            break;
        default:
            m.topic = "events";
            m.key = json::array({json::number(std::to_string(id)),
                                 json::string("region-" + std::to_string(pick(5)))});
            m.after = json::object({
                {"id", json::number(std::to_string(id))},
                {"region", m.key.items()[1]},
                {"payload",
                 pg("jsonb",
                    R"({"kind": "click", "x": )" + std::to_string(pick(2000)) +
                        R"(, "y": 1.5e2, "tags": ["a", "b", null], "meta": {"ua": "Mozilla/5.0", "ok": true}})")},
                {"at", pg("timestamp", "2026-11-26 12:00:00.5")},
                {"score", pg("float4", "0.1")},
            });
            break;
        }
        messages.push_back(molt::proto::encode_message(m));
        bytes += messages.back().size() + 1;
    }
    rows = messages.size();
    return molt::proto::encode_payload(messages);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    const int iterations = argc > 1 ? std::max(5, std::atoi(argv[1])) : 40;
    size_t rows = 0;
    const std::string body = make_batch(1 << 20, rows);
    const double mb = static_cast<double>(body.size()) / (1024.0 * 1024.0);

    // Validity first: both must accept the body.
    {
        rapidjson::Document doc;
        doc.Parse(body.c_str(), body.size());
        auto decoded = molt::proto::decode_webhook(body);
        if (doc.HasParseError() || !decoded || decoded->rows.message_count() != rows) {
            std::fprintf(stderr, "benchmark input did not parse\n");
            return 1;
        }
    }

    std::vector<double> rapid_seconds;
    std::vector<double> decode_seconds;
    size_t checksum = 0;
    for (int i = 0; i < iterations + 3; ++i) {
        // Interleaved, so both see the same machine conditions; the first 3 rounds warm up.
        {
            const auto start = clock_type::now();
            rapidjson::Document doc;
            doc.Parse(body.c_str(), body.size());
            checksum += doc["payload"].Size();
            const std::chrono::duration<double> took = clock_type::now() - start;
            if (i >= 3) {
                rapid_seconds.push_back(took.count());
            }
        }
        {
            std::string copy = body;  // the server hands its body over; the copy is not timed
            const auto start = clock_type::now();
            auto decoded = molt::proto::decode_webhook(std::move(copy));
            checksum += decoded->rows.message_count();
            const std::chrono::duration<double> took = clock_type::now() - start;
            if (i >= 3) {
                decode_seconds.push_back(took.count());
            }
        }
    }
    const double rapid = median(rapid_seconds);
    const double decode = median(decode_seconds);
    std::printf("body: %.2f MiB, %zu rows (3 tables, mixed types), %d iterations, median times\n",
                mb, rows, iterations);
    std::printf("rapidjson DOM parse (baseline): %8.1f MB/s  %10.0f rows/s  %.3f ms\n", mb / rapid,
                static_cast<double>(rows) / rapid, rapid * 1e3);
    std::printf("molt::proto::decode_webhook:    %8.1f MB/s  %10.0f rows/s  %.3f ms\n", mb / decode,
                static_cast<double>(rows) / decode, decode * 1e3);
    std::printf("ratio decode/baseline: %.2fx (target >= 0.70x)   [checksum %zu]\n", rapid / decode,
                checksum);
    return 0;
}
