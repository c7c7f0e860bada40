#pragma once
// The decoded form of a changefeed webhook request: what staging and apply consume.
//
// A batch owns the request bytes and one arena; every string_view and span below points into
// them and stays valid for the batch's lifetime, also when the batch is moved. Nothing is
// converted through double: numbers keep their exact JSON text.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "molt/common/hlc.hpp"

namespace molt::proto {

enum class value_kind : uint8_t {
    null,     ///< JSON null (SQL NULL, or JSONB 'null')
    boolean,  ///< text is "true" or "false"
    number,   ///< text is the exact JSON number text, e.g. 528514320239329281, 22.30, 4E+2
    string,   ///< text is the decoded UTF-8 contents (escapes resolved)
    json,     ///< an object or array (JSONB, ARRAY, GeoJSON); text is compact canonical JSON
};

struct value {
    value_kind kind = value_kind::null;
    std::string_view text;

    [[nodiscard]] bool is_null() const noexcept { return kind == value_kind::null; }
    friend bool operator==(const value&, const value&) = default;
};

/// The JSON document a JSON/JSONB column holds for `v`, as compact JSON text: a JSONB column
/// arrives as its JSON value, so a top-level string is written as a JSON string ("pending"),
/// booleans and numbers as themselves, objects and arrays as their text. The object
/// {"__crdb_json_null__": true} (a JSONB 'null' under encode_json_value_null_as_object) is the
/// JSON null. nullopt: SQL NULL (a plain `null` cannot be told from a JSONB 'null' without that
/// option, and is taken as SQL NULL).
[[nodiscard]] std::optional<std::string> json_document(const value& v);

struct column {
    std::string_view name;
    value val;
    friend bool operator==(const column&, const column&) = default;
};

struct mutation {
    hlc updated;
    std::optional<hlc> mvcc_timestamp;
    /// The key as compact canonical JSON, e.g. [1,"a"]: equal keys have equal text, so it
    /// serves for deduplication and ordering.
    std::string_view key;
    /// The key's elements in primary-key order.
    std::span<const value> key_values;
    /// Columns after the change, in the order sent; empty for a delete.
    std::span<const column> after;
    /// Columns before the change (WITH diff); meaningful when has_before.
    std::span<const column> before;
    bool deleted = false;        ///< "after" was null or absent
    bool has_before = false;     ///< the message carried "before" (null before = no previous row)
    uint32_t message_index = 0;  ///< position in the request, from 0
};

struct table_mutations {
    std::string_view topic;           ///< as the changefeed wrote it: t, db.schema.t, t.family
    std::vector<mutation> mutations;  ///< by `updated`; arrival order among equal timestamps
};

class batch {
public:
    batch();
    batch(batch&&) noexcept;
    batch& operator=(batch&&) noexcept;
    batch(const batch&) = delete;
    batch& operator=(const batch&) = delete;
    ~batch();

    /// Mutations grouped by table, tables in order of first appearance.
    [[nodiscard]] const std::vector<table_mutations>& tables() const noexcept;
    [[nodiscard]] size_t message_count() const noexcept;
    /// Fields the decoder does not know and skipped (top-level and per message).
    [[nodiscard]] size_t unknown_field_count() const noexcept;
    [[nodiscard]] bool empty() const noexcept { return message_count() == 0; }

    struct storage;  ///< the owned bytes and arrays (defined in the decoder)
    explicit batch(std::unique_ptr<storage> s);

private:
    std::unique_ptr<storage> storage_;
};

}  // namespace molt::proto
