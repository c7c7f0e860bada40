// libFuzzer target: the webhook body decoder, the input every HTTP client controls.
// Properties: decoding never crashes or leaks; whatever decodes re-encodes, and the re-encoded
// body decodes to the same model (same keys, values and timestamps).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "molt/proto/decoder.hpp"
#include "molt/proto/encoder.hpp"

namespace {

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

std::string reencode(const molt::proto::batch& b) {
    std::vector<std::string> messages;
    for (const auto& t : b.tables()) {
        for (const auto& m : t.mutations) {
            molt::proto::message_options options;
            options.diff = m.has_before;
            options.mvcc_timestamp = m.mvcc_timestamp.has_value();
            messages.push_back(encode_message(molt::proto::to_message(t.topic, m), options));
        }
    }
    return molt::proto::encode_payload(messages);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string input(reinterpret_cast<const char*>(data), size);
    molt::proto::decode_limits limits;
    limits.max_depth = 64;
    auto decoded = molt::proto::decode_webhook(input, limits);
    (void)molt::proto::decode_ndjson(input, limits);
    if (!decoded || decoded->type != molt::proto::webhook_body::kind::rows) {
        return 0;
    }
    const std::string once = reencode(decoded->rows);
    auto again = molt::proto::decode_webhook(once, limits);
    check(again.has_value());
    check(again->rows.message_count() == decoded->rows.message_count());
    // The encoder's output is a fixed point.
    check(reencode(again->rows) == once);
    return 0;
}
