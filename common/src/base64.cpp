#include "molt/common/base64.hpp"

#include <array>

#include <fmt/format.h>

namespace molt {
namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int, 256> make_table() {
    std::array<int, 256> t{};
    for (int& v : t) {
        v = -1;
    }
    for (int i = 0; i < 64; ++i) {
        t[static_cast<unsigned char>(alphabet[i])] = i;
    }
    return t;
}
constexpr std::array<int, 256> table = make_table();

}  // namespace

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const uint32_t n = (static_cast<uint8_t>(bytes[i]) << 16) |
                           (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                           static_cast<uint8_t>(bytes[i + 2]);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        out += alphabet[n & 63];
    }
    const size_t rest = bytes.size() - i;
    if (rest > 0) {
        uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
        if (rest == 2) {
            n |= static_cast<uint8_t>(bytes[i + 1]) << 8;
        }
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += rest == 2 ? alphabet[(n >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

result<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) {
        return error{errc::invalid_argument,
                     fmt::format("bad base64: length {} is not a multiple of 4", text.size())};
    }
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (size_t i = 0; i < text.size(); i += 4) {
        int v[4];
        int padding = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = text[i + static_cast<size_t>(k)];
            if (c == '=' && i + 4 == text.size() && k >= 2) {
                v[k] = 0;
                ++padding;
                continue;
            }
            v[k] = table[static_cast<unsigned char>(c)];
            if (v[k] < 0 || padding > 0) {
                return error{errc::invalid_argument,
                             fmt::format("bad base64: unexpected character at offset {}",
                                         i + static_cast<size_t>(k))};
            }
        }
        const uint32_t n = (static_cast<uint32_t>(v[0]) << 18) |
                           (static_cast<uint32_t>(v[1]) << 12) |
                           (static_cast<uint32_t>(v[2]) << 6) | static_cast<uint32_t>(v[3]);
        out += static_cast<char>((n >> 16) & 0xFF);
        if (padding < 2) {
            out += static_cast<char>((n >> 8) & 0xFF);
        }
        if (padding < 1) {
            out += static_cast<char>(n & 0xFF);
        }
    }
    return out;
}

}  // namespace molt
