#pragma once
// Column types and their changefeed JSON (changefeed-webhook.md §4), converted from the
// PostgreSQL text form of a value — what the CockroachDB stand-in reads from PostgreSQL, and
// what the workload generator produces.
//
//   BOOL t/f -> true/false        INT -> number (full 64 bits)      DECIMAL 22.30 -> 22.30, NaN ->
//   "NaN" FLOAT8 100 -> 1E+2            FLOAT4 0.1 -> 0.10000000149011612 BYTES \x01ff -> "\\x01ff"
//   TIMESTAMP 2019-01-02 03:04:05 -> "2019-01-02T03:04:05" TIMESTAMPTZ 2025-05-09 16:20:29.2-05 ->
//   "2025-05-09T21:20:29.2Z" JSONB / GeoJSON -> nested JSON (sorted keys, CockroachDB numbers)
//   ARRAY {1,NULL} -> [1, null]   everything else (UUID, DATE, TIME, TIMETZ, INTERVAL, INET,
//                                 ENUM, BIT, OID, BOX2D, VECTOR, ...) -> its text as a string

#include <optional>
#include <string>
#include <string_view>

#include "molt/common/result.hpp"
#include "molt/proto/json.hpp"

namespace molt::proto {

enum class sql_type {
    boolean,
    integer,
    float4,
    float8,
    decimal,
    string,
    bytes,
    uuid,
    date,
    time,
    timetz,
    timestamp,
    timestamptz,
    interval,
    inet,
    jsonb,
    enumeration,  ///< user-defined enum: the label
    bit,
    oid,
    geometry,  ///< GEOMETRY/GEOGRAPHY: GeoJSON
    other,     ///< BOX2D, VECTOR, TSVECTOR, ...: text as a string
};

/// Lower-case name of the type family ("timestamptz", "jsonb", ...).
[[nodiscard]] std::string_view to_string(sql_type t) noexcept;

struct column_type {
    sql_type base = sql_type::string;
    bool array = false;  ///< a one-dimensional array of `base`
    friend bool operator==(const column_type&, const column_type&) = default;
};

/// Maps a type name as PostgreSQL (format_type, wal2json) or CockroachDB writes it:
/// "integer", "bigint", "numeric(10,2)", "timestamp with time zone", "text[]", "INT8",
/// "STRING", "TIMESTAMPTZ", ... Unknown names are user-defined types (enumeration).
[[nodiscard]] column_type column_type_from_name(std::string_view name);

/// The changefeed JSON of one value given its PostgreSQL text; nullopt is SQL NULL.
[[nodiscard]] result<json> value_from_pg_text(column_type type,
                                              std::optional<std::string_view> pg_text);

}  // namespace molt::proto
