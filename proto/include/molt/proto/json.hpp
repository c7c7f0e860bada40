#pragma once
// A small JSON value tree for building messages (encoder, CockroachDB stand-in, tests) and for
// reading small documents (override JSON, webhook_sink_config). Numbers are kept as exact text.
//
// write_crdb() prints CockroachDB's JSON text form (changefeed-webhook.md §2.6), the bytes a v2
// webhook sink sends inside "payload":
//   objects  {"k": v, "l": w}  keys sorted bytewise, ", " and ": " separators
//   arrays   [a, b]
//   strings  v2 escaping: \" \\ \n \r \t, other bytes < 0x20 as \u00xx, invalid UTF-8 as
//            \ufffd, everything else raw (no HTML escaping)
//   numbers  the decimal "to-scientific-string" form: 4E+2, 1.2E+2, 1E-7, 22.30

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "molt/common/result.hpp"

namespace molt::proto {

class json {
public:
    enum class type : uint8_t { null, boolean, number, string, array, object };
    struct member;

    json() = default;
    [[nodiscard]] static json null();
    [[nodiscard]] static json boolean(bool b);
    /// `text` must be a valid JSON number (checked by MOLT_CHECK).
    [[nodiscard]] static json number(std::string_view text);
    [[nodiscard]] static json number(int64_t n);
    [[nodiscard]] static json string(std::string s);
    [[nodiscard]] static json array();
    [[nodiscard]] static json array(std::vector<json> items);
    [[nodiscard]] static json object();
    [[nodiscard]] static json object(std::vector<member> members);

    /// Parses JSON text, keeping exact number text. Errors carry the byte offset.
    [[nodiscard]] static result<json> parse(std::string_view text, size_t max_depth = 128);

    [[nodiscard]] type kind() const noexcept { return type_; }
    [[nodiscard]] bool is_null() const noexcept { return type_ == type::null; }
    [[nodiscard]] bool as_bool() const noexcept { return bool_; }
    /// Number text or string contents.
    [[nodiscard]] const std::string& text() const noexcept { return text_; }
    [[nodiscard]] const std::vector<json>& items() const noexcept { return items_; }
    [[nodiscard]] std::vector<json>& items() noexcept { return items_; }
    [[nodiscard]] const std::vector<member>& members() const noexcept { return members_; }
    [[nodiscard]] std::vector<member>& members() noexcept { return members_; }
    /// The member named `key`, or nullptr.
    [[nodiscard]] const json* find(std::string_view key) const noexcept;

    /// Appends or replaces a member (objects only).
    json& set(std::string key, json value);

    friend bool operator==(const json& a, const json& b);

private:
    type type_ = type::null;
    bool bool_ = false;
    std::string text_;
    std::vector<json> items_;
    std::vector<member> members_;
};

struct json::member {
    std::string key;
    json value;
    friend bool operator==(const member&, const member&) = default;
};

inline json json::null() {
    return json();
}

/// Appends CockroachDB's text form of `v` (see above).
void write_crdb(std::string& out, const json& v);
[[nodiscard]] std::string to_crdb_text(const json& v);

/// Appends `s` as a JSON string with the v2 sink's escaping.
void write_crdb_string(std::string& out, std::string_view s);

/// Rewrites a JSON number's text the way CockroachDB prints a decimal: "1e2" -> "1E+2",
/// "0.0000001" -> "1E-7", "22.30" stays. `text` must be a valid JSON number.
[[nodiscard]] std::string crdb_decimal_text(std::string_view text);

/// CockroachDB's JSON text of a FLOAT8: shortest round-trip digits, then the decimal form
/// (100.0 -> "1E+2", 1234.0 -> "1234", 0.5 -> "0.5"). Non-finite values return nullopt: they
/// are written as the strings "NaN", "Infinity", "-Infinity".
[[nodiscard]] std::optional<std::string> crdb_float_text(double v);

}  // namespace molt::proto
