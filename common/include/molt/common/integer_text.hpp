#pragma once
// Integers read from text that is not ours (database answers, catalog columns) without
// exceptions: the whole text must be the number.

#include <charconv>
#include <optional>
#include <string_view>

namespace molt {

/// The integer `text` spells in `base`, or nullopt (empty, other characters, out of range).
template <typename T>
[[nodiscard]] std::optional<T> parse_integer(std::string_view text, int base = 10) noexcept {
    T value{};
    const char* end = text.data() + text.size();
    const auto [at, ec] = std::from_chars(text.data(), end, value, base);
    if (text.empty() || ec != std::errc() || at != end) {
        return std::nullopt;
    }
    return value;
}

}  // namespace molt
