#pragma once
// JSON string text shared by the logger (zerolog's form) and the changefeed codec (CockroachDB's
// v2 form): both escape '"', '\\', \n, \r, \t, write other bytes below 0x20 as \u00xx (lower
// case), replace invalid UTF-8 with \ufffd, and leave everything else raw (no HTML escaping).

#include <cstddef>
#include <string>
#include <string_view>

namespace molt {

/// Length of the valid UTF-8 sequence at p (p < end), or 0 when it is invalid (overlong forms,
/// surrogates and code points above U+10FFFF are invalid).
[[nodiscard]] size_t utf8_sequence_length(const char* p, const char* end) noexcept;

/// True when all of `s` is valid UTF-8.
[[nodiscard]] bool is_valid_utf8(std::string_view s) noexcept;

/// Appends `s` as a quoted JSON string with the escaping described above.
void append_json_string(std::string& out, std::string_view s);

}  // namespace molt
