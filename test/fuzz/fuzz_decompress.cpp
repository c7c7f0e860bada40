// libFuzzer target: request body decompression (gzip, zstd), which reads what a changefeed sends
// before any JSON is parsed. The first byte picks the codec. Properties: no crash, never more
// than the limit out, and what decompresses compresses and decompresses back to itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "molt/common/compression.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    using molt::compression::codec;
    const codec c = (data[0] & 1) != 0 ? codec::zstd : codec::gzip;
    const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
    constexpr size_t limit = 1 << 20;
    auto plain = molt::compression::decompress(c, body, limit);
    if (!plain) {
        return 0;
    }
    if (plain->size() > limit) {
        std::abort();
    }
    auto again = molt::compression::decompress(c, molt::compression::compress(c, *plain), limit);
    if (!again || *again != *plain) {
        std::abort();
    }
    return 0;
}
