#include "molt/common/json_text.hpp"

#include <cstdint>

namespace molt {

size_t utf8_sequence_length(const char* p, const char* end) noexcept {
    const auto b0 = static_cast<unsigned char>(*p);
    size_t len = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if (b0 < 0x80) {
        return 1;
    }
    if ((b0 & 0xE0) == 0xC0) {
        len = 2, cp = b0 & 0x1Fu, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
        len = 3, cp = b0 & 0x0Fu, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
        len = 4, cp = b0 & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (static_cast<size_t>(end - p) < len) {
        return 0;
    }
    for (size_t i = 1; i < len; ++i) {
        const auto b = static_cast<unsigned char>(p[i]);
        if ((b & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (b & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return len;
}

bool is_valid_utf8(std::string_view s) noexcept {
    const char* p = s.data();
    const char* end = p + s.size();
    while (p < end) {
        const size_t len = utf8_sequence_length(p, end);
        if (len == 0) {
            return false;
        }
        p += len;
    }
    return true;
}

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    const char* p = s.data();
    const char* end = p + s.size();
    const char* run = p;  // start of bytes copied through unchanged
    while (p < end) {
        const auto c = static_cast<unsigned char>(*p);
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            ++p;
            continue;
        }
        if (c >= 0x80) {
            const size_t len = utf8_sequence_length(p, end);
            if (len != 0) {
                p += len;
                continue;
            }
        }
        out.append(run, static_cast<size_t>(p - run));
        switch (c) {
        case '"': out.append("\\\""); break;
        case '\\': out.append("\\\\"); break;
        case '\n': out.append("\\n"); break;
        case '\r': out.append("\\r"); break;
        case '\t': out.append("\\t"); break;
        default:
            if (c >= 0x80) {
                out.append("\\ufffd");
            } else {
                const char esc[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
                out.append(esc, sizeof esc);
            }
        }
        run = ++p;
    }
    out.append(run, static_cast<size_t>(end - run));
    out.push_back('"');
}

}  // namespace molt
