#include "molt/proto/json.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "json_reader.hpp"

namespace molt::proto {

json json::boolean(bool b) {
    json j;
    j.type_ = type::boolean;
    j.bool_ = b;
    return j;
}

json json::number(std::string_view text) {
    detail::json_reader check(text, 1);
    std::string_view parsed;
    MOLT_CHECK(check.read_number(parsed) && parsed.size() == text.size(),
               "json::number needs a valid JSON number");
    json j;
    j.type_ = type::number;
    j.text_ = std::string(text);
    return j;
}

json json::number(int64_t n) {
    json j;
    j.type_ = type::number;
    j.text_ = std::to_string(n);
    return j;
}

json json::string(std::string s) {
    json j;
    j.type_ = type::string;
    j.text_ = std::move(s);
    return j;
}

json json::array() {
    return array(std::vector<json>{});
}

json json::object() {
    return object(std::vector<member>{});
}

json json::array(std::vector<json> items) {
    json j;
    j.type_ = type::array;
    j.items_ = std::move(items);
    return j;
}

json json::object(std::vector<member> members) {
    json j;
    j.type_ = type::object;
    j.members_ = std::move(members);
    return j;
}

const json* json::find(std::string_view key) const noexcept {
    for (const member& m : members_) {
        if (m.key == key) {
            return &m.value;
        }
    }
    return nullptr;
}

json& json::set(std::string key, json value) {
    MOLT_CHECK(type_ == type::object, "json::set on a non-object");
    for (member& m : members_) {
        if (m.key == key) {
            m.value = std::move(value);
            return *this;
        }
    }
    members_.push_back({std::move(key), std::move(value)});
    return *this;
}

bool operator==(const json& a, const json& b) {
    return a.type_ == b.type_ && a.bool_ == b.bool_ && a.text_ == b.text_ && a.items_ == b.items_ &&
           a.members_ == b.members_;
}

namespace {

bool parse_value(detail::json_reader& r, json& out, size_t depth) {
    switch (r.peek()) {
    case '{': {
        if (!r.check_depth(depth + 1) || !r.expect('{', "'{'")) {
            return false;
        }
        out = json::object();
        if (r.try_consume('}')) {
            return true;
        }
        for (;;) {
            std::string_view key;
            bool escaped = false;
            if (!r.read_string(key, escaped)) {
                return false;
            }
            std::string owned(key);
            if (!r.expect(':', "':' after an object key")) {
                return false;
            }
            json v;
            if (!parse_value(r, v, depth + 1)) {
                return false;
            }
            out.members().push_back({std::move(owned), std::move(v)});
            if (r.try_consume(',')) {
                continue;
            }
            return r.expect('}', "',' or '}' in an object");
        }
    }
    case '[': {
        if (!r.check_depth(depth + 1) || !r.expect('[', "'['")) {
            return false;
        }
        out = json::array();
        if (r.try_consume(']')) {
            return true;
        }
        for (;;) {
            json v;
            if (!parse_value(r, v, depth + 1)) {
                return false;
            }
            out.items().push_back(std::move(v));
            if (r.try_consume(',')) {
                continue;
            }
            return r.expect(']', "',' or ']' in an array");
        }
    }
    case '"': {
        std::string_view s;
        bool escaped = false;
        if (!r.read_string(s, escaped)) {
            return false;
        }
        out = json::string(std::string(s));
        return true;
    }
    case 't':
    case 'f':
    case 'n': {
        std::string_view lit;
        if (!r.read_literal(lit)) {
            return false;
        }
        out = lit == "null" ? json::null() : json::boolean(lit == "true");
        return true;
    }
    default: {
        std::string_view num;
        if (!r.read_number(num)) {
            return false;
        }
        out = json::number(num);
        return true;
    }
    }
}

// A decimal: sign, coefficient digits without leading zeros ("0" for zero), exponent.
// `exact` is false when the written exponent is too large for exact 64-bit arithmetic (no
// CockroachDB decimal has one); such numbers keep their text.
struct decimal_parts {
    bool negative = false;
    std::string digits;
    int64_t exponent = 0;
    bool exact = true;
};

decimal_parts split_number(std::string_view text) {
    decimal_parts d;
    size_t i = 0;
    if (i < text.size() && text[i] == '-') {
        d.negative = true;
        ++i;
    }
    int64_t fraction_digits = 0;
    bool in_fraction = false;
    for (; i < text.size() && text[i] != 'e' && text[i] != 'E'; ++i) {
        if (text[i] == '.') {
            in_fraction = true;
            continue;
        }
        d.digits.push_back(text[i]);
        fraction_digits += in_fraction ? 1 : 0;
    }
    int64_t exp = 0;
    if (i < text.size()) {
        ++i;
        bool exp_negative = false;
        if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
            exp_negative = text[i] == '-';
            ++i;
        }
        for (; i < text.size(); ++i) {
            if (exp > 100'000'000'000'000LL) {
                d.exact = false;
                break;
            }
            exp = exp * 10 + (text[i] - '0');
        }
        exp = exp_negative ? -exp : exp;
    }
    const size_t first = d.digits.find_first_not_of('0');
    d.digits = first == std::string::npos ? "0" : d.digits.substr(first);
    d.exponent = exp - fraction_digits;
    return d;
}

// The General Decimal Arithmetic to-scientific-string conversion, as cockroachdb/apd prints.
std::string to_scientific_string(const decimal_parts& d) {
    std::string out = d.negative ? "-" : "";
    const auto n = static_cast<int64_t>(d.digits.size());
    const int64_t adjusted = d.exponent + (n - 1);
    if (d.exponent <= 0 && adjusted >= -6) {
        if (d.exponent == 0) {
            return out + d.digits;
        }
        const int64_t point = n + d.exponent;  // digits before the decimal point
        if (point > 0) {
            out += d.digits.substr(0, static_cast<size_t>(point));
            out += '.';
            out += d.digits.substr(static_cast<size_t>(point));
        } else {
            out += "0.";
            out.append(static_cast<size_t>(-point), '0');
            out += d.digits;
        }
        return out;
    }
    out += d.digits[0];
    if (n > 1) {
        out += '.';
        out += d.digits.substr(1);
    }
    out += adjusted >= 0 ? "E+" : "E-";
    out += std::to_string(adjusted >= 0 ? adjusted : -adjusted);
    return out;
}

}  // namespace

result<json> json::parse(std::string_view text, size_t max_depth) {
    detail::json_reader r(text, max_depth);
    json out;
    if (!parse_value(r, out, 0)) {
        return error{r.error_code(), fmt::format("invalid JSON at byte {}: {}", r.error_offset(),
                                                 r.error_message())};
    }
    r.skip_ws();
    if (!r.at_end()) {
        return error{
            errc::parse_error,
            fmt::format("invalid JSON at byte {}: unexpected data after the value", r.offset())};
    }
    return out;
}

void write_crdb_string(std::string& out, std::string_view s) {
    append_json_string(out, s);
}

void write_crdb(std::string& out, const json& v) {
    switch (v.kind()) {
    case json::type::null: out.append("null"); break;
    case json::type::boolean: out.append(v.as_bool() ? "true" : "false"); break;
    case json::type::number: out.append(crdb_decimal_text(v.text())); break;
    case json::type::string: write_crdb_string(out, v.text()); break;
    case json::type::array: {
        out.push_back('[');
        for (size_t i = 0; i < v.items().size(); ++i) {
            if (i != 0) {
                out.append(", ");
            }
            write_crdb(out, v.items()[i]);
        }
        out.push_back(']');
        break;
    }
    case json::type::object: {
        std::vector<const json::member*> sorted;
        sorted.reserve(v.members().size());
        for (const json::member& m : v.members()) {
            sorted.push_back(&m);
        }
        // Bytewise order: std::string compares as unsigned char via char_traits<char>::compare.
        // A repeated key keeps its last value, as JSONB does.
        std::stable_sort(
            sorted.begin(), sorted.end(),
            [](const json::member* a, const json::member* b) { return a->key < b->key; });
        out.push_back('{');
        bool first = true;
        for (size_t i = 0; i < sorted.size(); ++i) {
            if (i + 1 < sorted.size() && sorted[i + 1]->key == sorted[i]->key) {
                continue;
            }
            if (!first) {
                out.append(", ");
            }
            first = false;
            write_crdb_string(out, sorted[i]->key);
            out.append(": ");
            write_crdb(out, sorted[i]->value);
        }
        out.push_back('}');
        break;
    }
    }
}

std::string to_crdb_text(const json& v) {
    std::string out;
    write_crdb(out, v);
    return out;
}

std::string crdb_decimal_text(std::string_view text) {
    const decimal_parts d = split_number(text);
    return d.exact ? to_scientific_string(d) : std::string(text);
}

std::optional<std::string> crdb_float_text(double v) {
    if (!std::isfinite(v)) {
        return std::nullopt;
    }
    // fmt prints the shortest digits that read back to the same double; the decimal form is
    // then those digits with trailing zeros moved into the exponent.
    decimal_parts d = split_number(fmt::format("{}", v));
    if (d.digits != "0") {
        while (d.digits.size() > 1 && d.digits.back() == '0') {
            d.digits.pop_back();
            ++d.exponent;
        }
    } else {
        d.exponent = 0;
    }
    return to_scientific_string(d);
}

}  // namespace molt::proto
