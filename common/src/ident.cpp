#include "molt/common/ident.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "molt/common/json_text.hpp"
#include "molt/common/log.hpp"

namespace molt {
namespace {

char ascii_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}
char ascii_upper(char c) noexcept {
    return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c;
}

char quote_char(dialect d) noexcept {
    return d == dialect::mysql ? '`' : '"';
}

// Number of code points, or -1 for invalid UTF-8.
long utf8_length(std::string_view s) noexcept {
    long count = 0;
    for (const char* p = s.data(); p < s.data() + s.size(); ++count) {
        const size_t len = utf8_sequence_length(p, s.data() + s.size());
        if (len == 0) {
            return -1;
        }
        p += len;
    }
    return count;
}

}  // namespace

std::string quote_ident(std::string_view name, dialect d) {
    const char q = quote_char(d);
    std::string out;
    out.reserve(name.size() + 2);
    out.push_back(q);
    for (const char c : name) {
        if (c == q) {
            out.push_back(q);
        }
        out.push_back(c);
    }
    out.push_back(q);
    return out;
}

bool ident_equal(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return ascii_lower(x) == ascii_lower(y);
           });
}

std::string ident_key(std::string_view name) {
    std::string out(name);
    std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
    return out;
}

std::string fold_unquoted(std::string_view name, dialect d) {
    std::string out(name);
    switch (d) {
    case dialect::postgres: std::transform(out.begin(), out.end(), out.begin(), ascii_lower); break;
    case dialect::oracle: std::transform(out.begin(), out.end(), out.begin(), ascii_upper); break;
    case dialect::mysql: break;
    }
    return out;
}

result<void> validate_ident(std::string_view name, dialect d) {
    if (name.empty()) {
        return error{errc::invalid_argument, "empty identifier"};
    }
    if (name.find('\0') != std::string_view::npos) {
        return error{errc::invalid_argument,
                     fmt::format("identifier \"{}\" contains a NUL byte", log::sanitize(name))};
    }
    const long chars = utf8_length(name);
    if (chars < 0) {
        return error{errc::invalid_argument,
                     fmt::format("identifier \"{}\" is not valid UTF-8", log::sanitize(name))};
    }
    switch (d) {
    case dialect::postgres:
        if (name.size() > 63) {
            return error{
                errc::invalid_argument,
                fmt::format("identifier \"{}\" is longer than PostgreSQL's 63 bytes", name)};
        }
        break;
    case dialect::mysql:
        if (chars > 64) {
            return error{
                errc::invalid_argument,
                fmt::format("identifier \"{}\" is longer than MySQL's 64 characters", name)};
        }
        break;
    case dialect::oracle:
        if (name.size() > 128) {
            return error{errc::invalid_argument,
                         fmt::format("identifier \"{}\" is longer than Oracle's 128 bytes", name)};
        }
        break;
    }
    return ok();
}

std::string qualified_name::quoted(dialect d) const {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) {
        if (i != 0) {
            out.push_back('.');
        }
        out += quote_ident(parts[i], d);
    }
    return out;
}

std::string qualified_name::to_string() const {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) {
        if (i != 0) {
            out.push_back('.');
        }
        out += parts[i];
    }
    return out;
}

std::string qualified_name::unambiguous() const {
    std::string out;
    for (const std::string& p : parts) {
        if (!out.empty()) {
            out += '.';
        }
        if (p.find_first_of(".\"") == std::string::npos && !p.empty()) {
            out += p;
            continue;
        }
        out += '"';
        for (const char c : p) {
            out += c;
            if (c == '"') {
                out += '"';
            }
        }
        out += '"';
    }
    return out;
}

bool qualified_name::equal_ignoring_case(const qualified_name& other) const noexcept {
    return parts.size() == other.parts.size() &&
           std::equal(parts.begin(), parts.end(), other.parts.begin(),
                      [](const std::string& a, const std::string& b) { return ident_equal(a, b); });
}

result<qualified_name> parse_qualified_name(std::string_view text, dialect d, size_t min_parts,
                                            size_t max_parts, bool fold) {
    const char q = quote_char(d);
    qualified_name out;
    size_t i = 0;
    auto bad = [&](std::string_view why) {
        return error{errc::invalid_argument,
                     fmt::format("bad name \"{}\": {}", log::sanitize(text), why)};
    };
    if (text.empty()) {
        return bad("empty");
    }
    for (;;) {
        std::string part;
        if (i < text.size() && text[i] == q) {
            ++i;
            bool closed = false;
            while (i < text.size()) {
                if (text[i] == q) {
                    if (i + 1 < text.size() && text[i + 1] == q) {
                        part.push_back(q);
                        i += 2;
                        continue;
                    }
                    ++i;
                    closed = true;
                    break;
                }
                part.push_back(text[i++]);
            }
            if (!closed) {
                return bad("unterminated quote");
            }
        } else {
            const size_t begin = i;
            while (i < text.size() && text[i] != '.') {
                if (text[i] == q) {
                    return bad("a quote inside an unquoted part");
                }
                ++i;
            }
            part = std::string(text.substr(begin, i - begin));
            if (fold) {
                part = fold_unquoted(part, d);
            }
        }
        if (auto valid = validate_ident(part, d); !valid) {
            return bad(part.empty() ? "empty part" : valid.error().message());
        }
        out.parts.push_back(std::move(part));
        if (i == text.size()) {
            break;
        }
        if (text[i] != '.') {
            return bad("expected '.' after a quoted part");
        }
        ++i;
        if (i == text.size()) {
            return bad("ends with '.'");
        }
    }
    if (out.parts.size() < min_parts || out.parts.size() > max_parts) {
        return bad(min_parts == max_parts
                       ? fmt::format("expected {} part(s), found {}", min_parts, out.parts.size())
                       : fmt::format("expected {} to {} parts, found {}", min_parts, max_parts,
                                     out.parts.size()));
    }
    return out;
}

}  // namespace molt
