#include "molt/common/percent.hpp"

#include <fmt/format.h>

#include "molt/common/hex.hpp"

namespace molt {
namespace {

bool is_unreserved(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

}  // namespace

result<std::string> percent_decode(std::string_view text, std::string_view what, bool plus_as_space,
                                   bool secret) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '+' && plus_as_space) {
            out.push_back(' ');
            continue;
        }
        if (c != '%') {
            out.push_back(c);
            continue;
        }
        const int hi = i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
        const int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            if (secret) {
                return error{errc::invalid_argument,
                             fmt::format("bad percent-escape in the {} (a literal '%' must be "
                                         "written %25)",
                                         what)};
            }
            return error{errc::invalid_argument,
                         fmt::format("bad percent-escape \"{}\" in the {} (a literal '%' must be "
                                     "written %25)",
                                     text.substr(i, 3), what)};
        }
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

std::string percent_encode(std::string_view text, std::string_view keep) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        if (is_unreserved(c) || keep.find(c) != std::string_view::npos) {
            out.push_back(c);
        } else {
            const auto b = static_cast<unsigned char>(c);
            out.push_back('%');
            out.push_back(hex[b >> 4]);
            out.push_back(hex[b & 0xF]);
        }
    }
    return out;
}

}  // namespace molt
