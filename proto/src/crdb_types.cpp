#include "molt/proto/crdb_types.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include <fmt/format.h>

#include "molt/common/time_format.hpp"

namespace molt::proto {
namespace {

std::string normalize_name(std::string_view name) {
    std::string out;
    for (const char c : name) {
        out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    // Drop modifiers: numeric(10,2), character varying(20), timestamp(6) with time zone.
    for (size_t open = out.find('('); open != std::string::npos; open = out.find('(')) {
        const size_t close = out.find(')', open);
        out.erase(open, close == std::string::npos ? std::string::npos : close - open + 1);
    }
    // Collapse whitespace.
    std::string collapsed;
    for (const char c : out) {
        if (c == ' ' && (collapsed.empty() || collapsed.back() == ' ')) {
            continue;
        }
        collapsed.push_back(c);
    }
    while (!collapsed.empty() && collapsed.back() == ' ') {
        collapsed.pop_back();
    }
    return collapsed;
}

error bad_value(column_type type, std::string_view text, std::string_view why) {
    return {errc::invalid_argument,
            fmt::format("cannot encode \"{}\" as a value of type {}{}: {}", text,
                        to_string(type.base), type.array ? "[]" : "", why)};
}

bool is_integer_text(std::string_view s) {
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
        s.remove_prefix(1);
    }
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<json> non_finite(std::string_view text) {
    std::string lowered;
    for (const char c : text) {
        lowered.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    if (lowered == "nan") {
        return json::string("NaN");
    }
    if (lowered == "infinity" || lowered == "+infinity" || lowered == "inf") {
        return json::string("Infinity");
    }
    if (lowered == "-infinity" || lowered == "-inf") {
        return json::string("-Infinity");
    }
    return std::nullopt;
}

// PostgreSQL's timestamptz text ("2025-05-09 21:20:29.203923+00", "+05:30", "-08:00:15") in UTC.
result<json> timestamptz_value(std::string_view text) {
    if (text == "infinity" || text == "-infinity") {
        return json::string(std::string(text));
    }
    size_t sign = std::string_view::npos;
    for (size_t i = text.size(); i > 19; --i) {
        if (text[i - 1] == '+' || text[i - 1] == '-') {
            sign = i - 1;
            break;
        }
    }
    if (sign == std::string_view::npos) {
        if (!text.empty() && (text.back() == 'Z' || text.back() == 'z')) {
            sign = text.size() - 1;
        } else {
            return error{errc::invalid_argument,
                         fmt::format("timestamptz \"{}\" has no UTC offset", text)};
        }
    }
    int64_t offset = 0;
    if (text[sign] != 'Z' && text[sign] != 'z') {
        const std::string_view off = text.substr(sign + 1);
        int parts[3] = {0, 0, 0};
        size_t part = 0;
        for (size_t i = 0; i < off.size(); ++i) {
            if (off[i] == ':') {
                if (++part > 2) {
                    break;
                }
            } else if (off[i] >= '0' && off[i] <= '9') {
                parts[part] = parts[part] * 10 + (off[i] - '0');
            } else {
                return error{errc::invalid_argument,
                             fmt::format("bad UTC offset in timestamptz \"{}\"", text)};
            }
        }
        offset = (parts[0] * 3600 + parts[1] * 60 + parts[2]) * (text[sign] == '-' ? -1 : 1);
    }
    std::string local(text.substr(0, sign));
    local += 'Z';
    auto nanos = parse_rfc3339(local);
    if (!nanos) {
        return nanos.error();
    }
    return json::string(format_rfc3339_nanos_utc(*nanos - offset * 1'000'000'000LL));
}

result<json> scalar_value(column_type type, std::string_view text) {
    switch (type.base) {
    case sql_type::boolean:
        if (text == "t" || text == "true" || text == "TRUE") {
            return json::boolean(true);
        }
        if (text == "f" || text == "false" || text == "FALSE") {
            return json::boolean(false);
        }
        return bad_value(type, text, "expected t or f");
    case sql_type::integer:
        if (!is_integer_text(text)) {
            return bad_value(type, text, "not an integer");
        }
        return json::number(text.front() == '+' ? text.substr(1) : text);
    case sql_type::float4:
    case sql_type::float8: {
        if (auto special = non_finite(text)) {
            return *special;
        }
        const std::string owned(text);
        char* end = nullptr;
        const double v = type.base == sql_type::float4
                             ? static_cast<double>(std::strtof(owned.c_str(), &end))
                             : std::strtod(owned.c_str(), &end);
        if (end == owned.c_str() || *end != '\0') {
            return bad_value(type, text, "not a number");
        }
        auto printed = crdb_float_text(v);
        if (!printed) {
            return json::string(v > 0 ? "Infinity" : "-Infinity");
        }
        return json::number(*printed);
    }
    case sql_type::decimal: {
        if (auto special = non_finite(text)) {
            return *special;
        }
        auto parsed = json::parse(text);
        if (!parsed || parsed->kind() != json::type::number) {
            return bad_value(type, text, "not a decimal number");
        }
        return json::number(crdb_decimal_text(text));
    }
    case sql_type::bytes: {
        std::string out(text);
        std::transform(out.begin(), out.end(), out.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (out.rfind("\\x", 0) != 0) {
            return bad_value(type, text, "expected PostgreSQL's hex form \\x...");
        }
        return json::string(std::move(out));
    }
    case sql_type::uuid: {
        std::string out(text);
        std::transform(out.begin(), out.end(), out.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        return json::string(std::move(out));
    }
    case sql_type::timestamp: {
        std::string out(text);
        if (out.size() > 10 && out[10] == ' ') {
            out[10] = 'T';
        }
        return json::string(std::move(out));
    }
    case sql_type::timestamptz: return timestamptz_value(text);
    case sql_type::jsonb:
    case sql_type::geometry: {
        auto parsed = json::parse(text);
        if (!parsed) {
            return bad_value(type, text, parsed.error().message());
        }
        if (type.base == sql_type::geometry && parsed->kind() == json::type::object) {
            // CockroachDB's GeoJSON carries neither a bounding box nor a CRS.
            auto& members = parsed->members();
            members.erase(std::remove_if(members.begin(), members.end(),
                                         [](const json::member& m) {
                                             return m.key == "bbox" || m.key == "crs";
                                         }),
                          members.end());
        }
        return std::move(parsed).value();
    }
    default: return json::string(std::string(text));
    }
}

// Splits a one-dimensional PostgreSQL array literal: {a,"b c",NULL} (quotes and backslash
// escapes as array_out writes them). nullopt elements are NULL.
result<std::vector<std::optional<std::string>>> split_pg_array(std::string_view text) {
    auto bad = [&](std::string_view why) {
        return error{errc::invalid_argument,
                     fmt::format("bad PostgreSQL array \"{}\": {}", text, why)};
    };
    std::vector<std::optional<std::string>> items;
    if (text.size() < 2 || text.front() != '{' || text.back() != '}') {
        return bad("expected {...}");
    }
    const std::string_view body = text.substr(1, text.size() - 2);
    if (body.find('{') != std::string_view::npos && body.front() == '{') {
        return error{errc::unsupported, "multi-dimensional arrays are not supported"};
    }
    size_t i = 0;
    if (body.empty()) {
        return items;
    }
    for (;;) {
        while (i < body.size() && body[i] == ' ') {
            ++i;
        }
        std::string item;
        bool quoted = false;
        if (i < body.size() && body[i] == '"') {
            quoted = true;
            ++i;
            while (i < body.size() && body[i] != '"') {
                if (body[i] == '\\' && i + 1 < body.size()) {
                    ++i;
                }
                item.push_back(body[i++]);
            }
            if (i >= body.size()) {
                return bad("unterminated quote");
            }
            ++i;
        } else {
            while (i < body.size() && body[i] != ',') {
                item.push_back(body[i++]);
            }
            while (!item.empty() && item.back() == ' ') {
                item.pop_back();
            }
        }
        std::string upper = item;
        std::transform(upper.begin(), upper.end(), upper.begin(),
                       [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        if (!quoted && upper == "NULL") {
            items.emplace_back(std::nullopt);
        } else {
            items.emplace_back(std::move(item));
        }
        while (i < body.size() && body[i] == ' ') {
            ++i;
        }
        if (i == body.size()) {
            return items;
        }
        if (body[i] != ',') {
            return bad("expected ',' between elements");
        }
        ++i;
    }
}

}  // namespace

std::string_view to_string(sql_type t) noexcept {
    switch (t) {
    case sql_type::boolean: return "bool";
    case sql_type::integer: return "int";
    case sql_type::float4: return "float4";
    case sql_type::float8: return "float8";
    case sql_type::decimal: return "decimal";
    case sql_type::string: return "string";
    case sql_type::bytes: return "bytes";
    case sql_type::uuid: return "uuid";
    case sql_type::date: return "date";
    case sql_type::time: return "time";
    case sql_type::timetz: return "timetz";
    case sql_type::timestamp: return "timestamp";
    case sql_type::timestamptz: return "timestamptz";
    case sql_type::interval: return "interval";
    case sql_type::inet: return "inet";
    case sql_type::jsonb: return "jsonb";
    case sql_type::enumeration: return "enum";
    case sql_type::bit: return "bit";
    case sql_type::oid: return "oid";
    case sql_type::geometry: return "geometry";
    case sql_type::other: return "other";
    }
    return "unknown";
}

column_type column_type_from_name(std::string_view raw) {
    std::string name = normalize_name(raw);
    column_type out;
    if (name.size() > 2 && name.substr(name.size() - 2) == "[]") {
        out.array = true;
        name.resize(name.size() - 2);
    } else if (name.rfind('_', 0) == 0 && name.size() > 1) {
        // PostgreSQL's internal array type names: _int4, _text.
        out.array = true;
        name.erase(0, 1);
    }
    static const std::pair<std::string_view, sql_type> names[] = {
        {"boolean", sql_type::boolean},
        {"bool", sql_type::boolean},
        {"smallint", sql_type::integer},
        {"integer", sql_type::integer},
        {"bigint", sql_type::integer},
        {"int", sql_type::integer},
        {"int2", sql_type::integer},
        {"int4", sql_type::integer},
        {"int8", sql_type::integer},
        {"int64", sql_type::integer},
        {"serial", sql_type::integer},
        {"bigserial", sql_type::integer},
        {"real", sql_type::float4},
        {"float4", sql_type::float4},
        {"double precision", sql_type::float8},
        {"float8", sql_type::float8},
        {"float", sql_type::float8},
        {"numeric", sql_type::decimal},
        {"decimal", sql_type::decimal},
        {"text", sql_type::string},
        {"string", sql_type::string},
        {"character varying", sql_type::string},
        {"varchar", sql_type::string},
        {"character", sql_type::string},
        {"char", sql_type::string},
        {"bpchar", sql_type::string},
        {"name", sql_type::string},
        {"citext", sql_type::string},
        {"\"char\"", sql_type::string},
        {"bytea", sql_type::bytes},
        {"bytes", sql_type::bytes},
        {"blob", sql_type::bytes},
        {"uuid", sql_type::uuid},
        {"date", sql_type::date},
        {"time", sql_type::time},
        {"time without time zone", sql_type::time},
        {"timetz", sql_type::timetz},
        {"time with time zone", sql_type::timetz},
        {"timestamp", sql_type::timestamp},
        {"timestamp without time zone", sql_type::timestamp},
        {"timestamptz", sql_type::timestamptz},
        {"timestamp with time zone", sql_type::timestamptz},
        {"interval", sql_type::interval},
        {"inet", sql_type::inet},
        {"jsonb", sql_type::jsonb},
        {"json", sql_type::jsonb},
        {"bit", sql_type::bit},
        {"bit varying", sql_type::bit},
        {"varbit", sql_type::bit},
        {"oid", sql_type::oid},
        {"regclass", sql_type::oid},
        {"regtype", sql_type::oid},
        {"geometry", sql_type::geometry},
        {"geography", sql_type::geometry},
        {"box2d", sql_type::other},
        {"vector", sql_type::other},
        {"tsvector", sql_type::other},
        {"tsquery", sql_type::other},
        {"pg_lsn", sql_type::other},
        {"ltree", sql_type::other},
        {"cidr", sql_type::inet},
        {"macaddr", sql_type::other},
    };
    // "interval day to second" and similar qualifiers keep the base name first.
    if (name.rfind("interval", 0) == 0) {
        name = "interval";
    }
    for (const auto& [candidate, type] : names) {
        if (name == candidate) {
            out.base = type;
            return out;
        }
    }
    out.base = sql_type::enumeration;
    return out;
}

result<json> value_from_pg_text(column_type type, std::optional<std::string_view> pg_text) {
    if (!pg_text) {
        return json::null();
    }
    if (!type.array) {
        return scalar_value(type, *pg_text);
    }
    auto items = split_pg_array(*pg_text);
    if (!items) {
        return std::move(items).error();
    }
    json out = json::array();
    const column_type element{type.base, false};
    for (const auto& item : *items) {
        auto v = item ? scalar_value(element, *item) : result<json>(json::null());
        if (!v) {
            return std::move(v).error();
        }
        out.items().push_back(std::move(v).value());
    }
    return out;
}

}  // namespace molt::proto
