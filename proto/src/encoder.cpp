#include "molt/proto/encoder.hpp"

#include <fmt/format.h>

#include "molt/common/json_text.hpp"

namespace molt::proto {

std::string encode_message(const message& m, const message_options& options) {
    json metadata = json::object();
    metadata.set("key", m.key);
    metadata.set("topic", json::string(m.topic));
    if (options.updated) {
        metadata.set("updated", json::string(m.updated.to_string()));
    }
    if (options.mvcc_timestamp) {
        metadata.set("mvcc_timestamp", json::string(m.mvcc.to_string()));
    }
    json out = json::object();
    if (options.envelope == envelope::bare) {
        // Bare: the row's columns at the top level, metadata under "__crdb__"; a delete is the
        // metadata alone.
        if (m.after.kind() == json::type::object) {
            out = m.after;
        }
        out.set("__crdb__", std::move(metadata));
    } else {
        out = std::move(metadata);
        out.set("after", m.after);
        if (options.diff) {
            out.set("before", m.before);
        }
    }
    return to_crdb_text(out);
}

std::string encode_payload(std::span<const std::string> encoded_messages) {
    size_t size = 32;
    for (const std::string& m : encoded_messages) {
        size += m.size() + 1;
    }
    std::string out;
    out.reserve(size);
    out.append("{\"payload\":[");
    for (size_t i = 0; i < encoded_messages.size(); ++i) {
        if (i != 0) {
            out.push_back(',');
        }
        out.append(encoded_messages[i]);
    }
    out.append(fmt::format("],\"length\":{}}}", encoded_messages.size()));
    return out;
}

std::string encode_resolved(hlc resolved, envelope env) {
    if (env == envelope::bare) {
        return fmt::format("{{\"__crdb__\":{{\"resolved\":\"{}\"}}}}", resolved.to_string());
    }
    return fmt::format("{{\"resolved\":\"{}\"}}", resolved.to_string());
}

json to_json(const value& v) {
    switch (v.kind) {
    case value_kind::null: return json::null();
    case value_kind::boolean: return json::boolean(v.text == "true");
    case value_kind::number: return json::number(v.text);
    case value_kind::string: return json::string(std::string(v.text));
    case value_kind::json: {
        auto parsed = json::parse(v.text);
        MOLT_CHECK(parsed.has_value(), "canonical JSON of a decoded value must parse");
        return std::move(parsed).value();
    }
    }
    return json::null();
}

void append_script_value(std::string& out, const value& v, bool json_column) {
    switch (v.kind) {
    case value_kind::null: out += "null"; break;
    case value_kind::boolean:
    case value_kind::json: out += v.text; break;
    case value_kind::number:
        if (json_column) {
            out += v.text;
        } else {
            append_json_string(out, v.text);
        }
        break;
    case value_kind::string: append_json_string(out, v.text); break;
    }
}

message to_message(std::string_view topic, const mutation& m) {
    message out;
    out.topic = std::string(topic);
    for (const value& v : m.key_values) {
        out.key.items().push_back(to_json(v));
    }
    auto row = [](std::span<const column> columns) {
        json obj = json::object();
        for (const column& c : columns) {
            obj.members().push_back({std::string(c.name), to_json(c.val)});
        }
        return obj;
    };
    out.after = m.deleted ? json::null() : row(m.after);
    out.before = m.has_before && !m.before.empty() ? row(m.before) : json::null();
    out.updated = m.updated;
    out.mvcc = m.mvcc_timestamp.value_or(hlc{});
    return out;
}

}  // namespace molt::proto
