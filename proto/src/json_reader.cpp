#include "json_reader.hpp"

#include <array>

#include <fmt/format.h>

#include "molt/common/hex.hpp"
#include "molt/common/json_text.hpp"

namespace molt::proto::detail {
namespace {

// Bytes that can be copied through inside a string without further checks: printable ASCII
// except '"' and '\\'.
constexpr std::array<bool, 256> make_plain_table() {
    std::array<bool, 256> t{};
    for (int c = 0x20; c < 0x80; ++c) {
        t[static_cast<size_t>(c)] = c != '"' && c != '\\';
    }
    return t;
}
constexpr std::array<bool, 256> plain = make_plain_table();

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

std::string describe_byte(char c) {
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x21 && b < 0x7F) {
        return fmt::format("'{}'", c);
    }
    return fmt::format("byte 0x{:02x}", b);
}

}  // namespace

bool json_reader::fail(size_t at, std::string message, errc code) {
    if (!failed_) {
        failed_ = true;
        error_offset_ = at;
        error_message_ = std::move(message);
        error_code_ = code;
    }
    return false;
}

bool json_reader::check_depth(size_t depth) {
    if (depth > max_depth_) {
        return fail(offset(), fmt::format("nesting deeper than the limit of {} levels", max_depth_),
                    errc::limit_exceeded);
    }
    return true;
}

bool json_reader::expect(char c, std::string_view what) {
    skip_ws();
    if (p_ < end_ && *p_ == c) {
        ++p_;
        return true;
    }
    if (p_ >= end_) {
        return fail_here(fmt::format("unexpected end of input, expected {}", what));
    }
    return fail_here(fmt::format("expected {}, found {}", what, describe_byte(*p_)));
}

bool json_reader::read_string(std::string_view& out, bool& escaped) {
    skip_ws();
    if (p_ >= end_ || *p_ != '"') {
        return p_ >= end_
                   ? fail_here("unexpected end of input, expected a string")
                   : fail_here(fmt::format("expected a string, found {}", describe_byte(*p_)));
    }
    const char* start = ++p_;
    while (p_ < end_) {
        const auto c = static_cast<unsigned char>(*p_);
        if (plain[c]) {
            ++p_;
            continue;
        }
        if (c == '"') {
            out = std::string_view(start, static_cast<size_t>(p_ - start));
            ++p_;
            escaped = false;
            return true;
        }
        if (c == '\\') {
            escaped = true;
            return read_string_slow(start, out);
        }
        if (c < 0x20) {
            return fail_here(
                fmt::format("control character U+{:04X} inside a string must be "
                            "escaped",
                            c));
        }
        const size_t len = utf8_sequence_length(p_, end_);
        if (len == 0) {
            return fail_here("invalid UTF-8 inside a string");
        }
        p_ += len;
    }
    return fail(static_cast<size_t>(start - 1 - begin_), "unterminated string");
}

bool json_reader::read_string_slow(const char* start, std::string_view& out) {
    scratch_.assign(start, p_);
    while (p_ < end_) {
        const auto c = static_cast<unsigned char>(*p_);
        if (plain[c]) {
            scratch_.push_back(static_cast<char>(c));
            ++p_;
            continue;
        }
        if (c == '"') {
            ++p_;
            out = scratch_;
            return true;
        }
        if (c < 0x20) {
            return fail_here(
                fmt::format("control character U+{:04X} inside a string must be "
                            "escaped",
                            c));
        }
        if (c >= 0x80) {
            const size_t len = utf8_sequence_length(p_, end_);
            if (len == 0) {
                return fail_here("invalid UTF-8 inside a string");
            }
            scratch_.append(p_, len);
            p_ += len;
            continue;
        }
        // A backslash escape.
        const size_t escape_at = offset();
        if (p_ + 1 >= end_) {
            return fail(escape_at, "unterminated escape sequence");
        }
        const char e = p_[1];
        p_ += 2;
        switch (e) {
        case '"': scratch_.push_back('"'); break;
        case '\\': scratch_.push_back('\\'); break;
        case '/': scratch_.push_back('/'); break;
        case 'b': scratch_.push_back('\b'); break;
        case 'f': scratch_.push_back('\f'); break;
        case 'n': scratch_.push_back('\n'); break;
        case 'r': scratch_.push_back('\r'); break;
        case 't': scratch_.push_back('\t'); break;
        case 'u': {
            auto read_hex4 = [&](uint32_t& v) {
                if (end_ - p_ < 4) {
                    return false;
                }
                v = 0;
                for (int i = 0; i < 4; ++i) {
                    const int d = hex_value(p_[i]);
                    if (d < 0) {
                        return false;
                    }
                    v = v * 16 + static_cast<uint32_t>(d);
                }
                p_ += 4;
                return true;
            };
            uint32_t cp = 0;
            if (!read_hex4(cp)) {
                return fail(escape_at, "\\u must be followed by 4 hex digits");
            }
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return fail(escape_at, "unpaired UTF-16 surrogate in \\u escape");
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t low = 0;
                if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') {
                    return fail(escape_at, "unpaired UTF-16 surrogate in \\u escape");
                }
                p_ += 2;
                if (!read_hex4(low) || low < 0xDC00 || low > 0xDFFF) {
                    return fail(escape_at, "unpaired UTF-16 surrogate in \\u escape");
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            }
            append_utf8(scratch_, cp);
            break;
        }
        default:
            return fail(escape_at, fmt::format("invalid escape sequence: backslash followed by {}",
                                               describe_byte(e)));
        }
    }
    return fail(static_cast<size_t>(start - 1 - begin_), "unterminated string");
}

bool json_reader::read_number(std::string_view& out) {
    skip_ws();
    if (p_ >= end_) {
        return fail_here("unexpected end of input, expected a value");
    }
    if (*p_ != '-' && (*p_ < '0' || *p_ > '9')) {
        return fail_here(fmt::format("expected a JSON value, found {}", describe_byte(*p_)));
    }
    const char* start = p_;
    auto digit = [this] { return p_ < end_ && *p_ >= '0' && *p_ <= '9'; };
    if (p_ < end_ && *p_ == '-') {
        ++p_;
    }
    if (p_ < end_ && *p_ == '0') {
        ++p_;
    } else if (digit()) {
        while (digit()) {
            ++p_;
        }
    } else {
        return fail(static_cast<size_t>(start - begin_), "invalid number");
    }
    if (p_ < end_ && *p_ == '.') {
        ++p_;
        if (!digit()) {
            return fail(static_cast<size_t>(start - begin_),
                        "invalid number: digits must follow '.'");
        }
        while (digit()) {
            ++p_;
        }
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
        ++p_;
        if (p_ < end_ && (*p_ == '+' || *p_ == '-')) {
            ++p_;
        }
        if (!digit()) {
            return fail(static_cast<size_t>(start - begin_),
                        "invalid number: digits must follow the exponent");
        }
        while (digit()) {
            ++p_;
        }
    }
    out = std::string_view(start, static_cast<size_t>(p_ - start));
    return true;
}

bool json_reader::read_literal(std::string_view& out) {
    skip_ws();
    for (const std::string_view word : {"true", "false", "null"}) {
        if (static_cast<size_t>(end_ - p_) >= word.size() &&
            std::string_view(p_, word.size()) == word) {
            out = word;
            p_ += word.size();
            return true;
        }
    }
    return fail_here("invalid literal (expected true, false or null)");
}

bool json_reader::append_canonical(std::string& out, size_t depth) {
    skip_ws();
    if (p_ >= end_) {
        return fail_here("unexpected end of input, expected a value");
    }
    switch (*p_) {
    case '{': {
        if (!check_depth(depth + 1)) {
            return false;
        }
        ++p_;
        out.push_back('{');
        if (try_consume('}')) {
            out.push_back('}');
            return true;
        }
        for (;;) {
            std::string_view key;
            bool escaped = false;
            if (!read_string(key, escaped)) {
                return false;
            }
            // The key may live in scratch_, which the value's strings reuse: write it first.
            append_json_string(out, key);
            if (!expect(':', "':' after an object key")) {
                return false;
            }
            out.push_back(':');
            if (!append_canonical(out, depth + 1)) {
                return false;
            }
            if (try_consume(',')) {
                out.push_back(',');
                continue;
            }
            if (!expect('}', "',' or '}' in an object")) {
                return false;
            }
            out.push_back('}');
            return true;
        }
    }
    case '[': {
        if (!check_depth(depth + 1)) {
            return false;
        }
        ++p_;
        out.push_back('[');
        if (try_consume(']')) {
            out.push_back(']');
            return true;
        }
        for (;;) {
            if (!append_canonical(out, depth + 1)) {
                return false;
            }
            if (try_consume(',')) {
                out.push_back(',');
                continue;
            }
            if (!expect(']', "',' or ']' in an array")) {
                return false;
            }
            out.push_back(']');
            return true;
        }
    }
    case '"': {
        std::string_view s;
        bool escaped = false;
        if (!read_string(s, escaped)) {
            return false;
        }
        append_json_string(out, s);
        return true;
    }
    case 't':
    case 'f':
    case 'n': {
        std::string_view lit;
        if (!read_literal(lit)) {
            return false;
        }
        out.append(lit);
        return true;
    }
    default: {
        if (*p_ == '-' || (*p_ >= '0' && *p_ <= '9')) {
            std::string_view num;
            if (!read_number(num)) {
                return false;
            }
            out.append(num);
            return true;
        }
        return fail_here(fmt::format("expected a JSON value, found {}", describe_byte(*p_)));
    }
    }
}

}  // namespace molt::proto::detail
