#pragma once
// How a value is written into a MySQL statement's text as a quoted string: the escapes of
// mysql_real_escape_string(), byte by byte. On a UTF-8 connection no byte of a multi-byte
// character is ASCII, so no escape can join one (the server reads the same bytes). Shared by the
// session, which writes the values (mysql_session.cpp), and the dialect, which counts their bytes
// to keep a statement within the server's packet size (mysql_dialect.cpp).

#include <string>
#include <string_view>

namespace molt::replicator::mysql {

/// The two-byte escape of `c` (NO_BACKSLASH_ESCAPES off), or nullptr when it stands as itself.
[[nodiscard]] constexpr const char* backslash_escape(char c) noexcept {
    switch (c) {
    case '\0': return "\\0";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\\': return "\\\\";
    case '\'': return "\\'";
    case '"': return "\\\"";
    case '\x1a': return "\\Z";
    default: return nullptr;
    }
}

/// Appends `v` escaped (without the quotes). With NO_BACKSLASH_ESCAPES a backslash is an
/// ordinary character and a quote is doubled.
inline void append_escaped(std::string& out, std::string_view v, bool no_backslash_escapes) {
    size_t from = 0;
    for (size_t i = 0; i < v.size(); ++i) {
        const char* with =
            no_backslash_escapes ? (v[i] == '\'' ? "''" : nullptr) : backslash_escape(v[i]);
        if (with != nullptr) {
            out.append(v.data() + from, i - from);
            out.append(with, 2);
            from = i + 1;
        }
    }
    out.append(v.data() + from, v.size() - from);
}

}  // namespace molt::replicator::mysql
