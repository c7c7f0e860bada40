#include "molt/proto/decoder.hpp"

#include <algorithm>
#include <tuple>

#include <fmt/format.h>

#include "molt/proto/json.hpp"

#include "arena.hpp"
#include "json_reader.hpp"

namespace molt::proto {

struct batch::storage {
    std::string body;
    detail::arena text;  // strings, canonical text, and the column/key arrays of every row
    std::vector<table_mutations> tables;
    size_t messages = 0;
    size_t unknown_fields = 0;
};

batch::batch() : storage_(std::make_unique<storage>()) {}
batch::batch(std::unique_ptr<storage> s) : storage_(std::move(s)) {}
batch::batch(batch&&) noexcept = default;
batch& batch::operator=(batch&&) noexcept = default;
batch::~batch() = default;

const std::vector<table_mutations>& batch::tables() const noexcept {
    return storage_->tables;
}
size_t batch::message_count() const noexcept {
    return storage_->messages;
}
size_t batch::unknown_field_count() const noexcept {
    return storage_->unknown_fields;
}

namespace {

constexpr std::string_view updated_hint =
    "create the changefeed WITH updated, so that every message carries its timestamp";

class decoder {
public:
    decoder(batch::storage& s, const decode_limits& limits)
        : s_(s), limits_(limits), r_(s.body, limits.max_depth) {}

    result<webhook_body> decode_body();
    result<void> decode_lines();
    void group();

private:
    // Errors -----------------------------------------------------------------------------------
    molt::error reader_error() const {
        return {r_.error_code(), fmt::format("invalid request body at byte {}: {}",
                                             r_.error_offset(), r_.error_message())};
    }
    molt::error message_error(const mutation& m, size_t at, std::string_view what) const {
        return {errc::parse_error,
                fmt::format("message {} (byte {}): {}", m.message_index, at, what)};
    }
    molt::error body_error(size_t at, std::string_view what) const {
        return {errc::parse_error, fmt::format("invalid request body at byte {}: {}", at, what)};
    }

    // Parsing ----------------------------------------------------------------------------------
    bool key_string(std::string_view& out) {
        bool escaped = false;
        return r_.read_string(out, escaped);
    }
    // A string kept in the batch: a view into the body, or copied to the arena when escaped.
    bool kept_string(std::string_view& out) {
        bool escaped = false;
        if (!r_.read_string(out, escaped)) {
            return false;
        }
        if (escaped) {
            out = s_.text.copy(out);
        }
        return true;
    }
    bool read_value(value& v, size_t depth);
    bool read_row(std::span<const column>& out, size_t depth);
    bool read_key(mutation& m, size_t depth);
    bool read_hlc(hlc& out, std::string_view field, const mutation& m, molt::error& err);
    void add(std::string_view topic, const mutation& m);
    bool skip_value(size_t depth) {
        scratch_.clear();
        return r_.append_canonical(scratch_, depth);
    }
    // Reads an object ('{' next) whose parent container is at `depth`: for each member calls
    // on_member(name, name_offset) with the cursor on the member's value. Names are kept (copied
    // when escaped). on_member returns false to stop, after recording the error.
    template <typename OnMember>
    bool for_each_member(size_t depth, std::string_view colon_what, std::string_view end_what,
                         OnMember&& on_member) {
        if (!r_.check_depth(depth + 1) || !r_.expect('{', "'{'")) {
            return false;
        }
        if (r_.try_consume('}')) {
            return true;
        }
        for (;;) {
            std::string_view name;
            const size_t name_at = (r_.skip_ws(), r_.offset());
            if (!kept_string(name) || !r_.expect(':', colon_what) || !on_member(name, name_at)) {
                return false;
            }
            if (!r_.try_consume(',')) {
                return r_.expect('}', end_what);
            }
        }
    }
    result<void> read_message(size_t depth);
    result<void> read_payload();

    batch::storage& s_;
    decode_limits limits_;
    detail::json_reader r_;
    size_t messages_ = 0;
    std::string scratch_;   // canonical text of nested values and skipped fields
    std::string key_text_;  // canonical text of the current key
    std::vector<column> bare_columns_;
    std::vector<size_t> bare_offsets_;  // where each bare column's name starts
    std::vector<column> row_;  // columns of the row being read, before they go to the arena
    std::vector<value> key_values_;
};

bool decoder::read_value(value& v, size_t depth) {
    switch (r_.peek()) {
    case '"': v.kind = value_kind::string; return kept_string(v.text);
    case 't':
    case 'f': v.kind = value_kind::boolean; return r_.read_literal(v.text);
    case 'n':
        v.kind = value_kind::null;
        if (!r_.read_literal(v.text)) {
            return false;
        }
        if (v.text != "null") {
            return r_.fail_here("invalid literal (expected true, false or null)");
        }
        v.text = {};
        return true;
    case '{':
    case '[': {
        v.kind = value_kind::json;
        scratch_.clear();
        if (!r_.append_canonical(scratch_, depth)) {
            return false;
        }
        v.text = s_.text.copy(scratch_);
        return true;
    }
    default: v.kind = value_kind::number; return r_.read_number(v.text);
    }
}

// Reads {"col": value, ...} into the arena. CockroachDB sorts object keys, so keys normally
// arrive in increasing order and duplicates are checked only when they do not.
bool decoder::read_row(std::span<const column>& out, size_t depth) {
    row_.clear();
    bool sorted = true;
    const bool read_ok = for_each_member(
        depth, "':' after a column name", "',' or '}' after a column",
        [&](std::string_view name, size_t name_at) {
            column c{name, {}};
            if (!read_value(c.val, depth + 1)) {
                return false;
            }
            sorted = sorted && (row_.empty() || row_.back().name < c.name);
            if (!sorted) {
                for (const column& prior : row_) {
                    if (prior.name == c.name) {
                        return r_.fail(name_at, fmt::format("column \"{}\" appears twice", c.name));
                    }
                }
            }
            row_.push_back(c);
            return true;
        });
    if (!read_ok) {
        return false;
    }
    out = s_.text.copy(std::span<const column>(row_));
    return true;
}

bool decoder::read_key(mutation& m, size_t depth) {
    if (!r_.check_depth(depth + 1) || !r_.expect('[', "'[' (\"key\" must be an array)")) {
        return false;
    }
    key_values_.clear();
    std::string& canonical = key_text_;
    canonical.assign(1, '[');
    if (!r_.try_consume(']')) {
        for (;;) {
            value v;
            if (!read_value(v, depth + 1)) {
                return false;
            }
            key_values_.push_back(v);
            switch (v.kind) {
            case value_kind::null: canonical += "null"; break;
            case value_kind::string: detail::append_json_string(canonical, v.text); break;
            default: canonical += v.text; break;
            }
            if (r_.try_consume(',')) {
                canonical.push_back(',');
                continue;
            }
            if (!r_.expect(']', "',' or ']' in \"key\"")) {
                return false;
            }
            break;
        }
    }
    canonical.push_back(']');
    m.key_values = s_.text.copy(std::span<const value>(key_values_));
    m.key = s_.text.copy(canonical);
    return true;
}

bool decoder::read_hlc(hlc& out, std::string_view field, const mutation& m, molt::error& err) {
    const size_t at = (r_.skip_ws(), r_.offset());
    std::string_view text;
    bool escaped = false;
    if (r_.peek() != '"') {
        err = message_error(m, at, fmt::format("\"{}\" must be a string", field));
        return false;
    }
    if (!r_.read_string(text, escaped)) {
        return false;
    }
    auto parsed = hlc::parse(text);
    if (!parsed) {
        err = message_error(m, at, fmt::format("bad \"{}\": {}", field, parsed.error().message()));
        return false;
    }
    out = *parsed;
    return true;
}

result<void> decoder::read_message(size_t depth) {
    mutation m;
    m.deleted = true;
    m.message_index = static_cast<uint32_t>(messages_);
    std::string_view topic;
    if (messages_ >= limits_.max_messages) {
        return molt::error{errc::limit_exceeded,
                           fmt::format("request body at byte {}: more than {} messages",
                                       r_.offset(), limits_.max_messages)};
    }
    const size_t start = (r_.skip_ws(), r_.offset());
    if (r_.peek() != '{') {
        if (r_.failed() || r_.at_end()) {
            r_.expect('{', "a message object");
            return reader_error();
        }
        return message_error(m, start, "a message must be a JSON object");
    }
    bool have_updated = false, have_key = false, have_topic = false, have_after = false;
    bool bare = false;
    bare_columns_.clear();
    bare_offsets_.clear();
    size_t unknown_here = 0;
    molt::error err{errc::parse_error, ""};

    // Reads the wrapped-envelope metadata fields; shared by the top level and "__crdb__".
    auto read_meta = [&](std::string_view name, bool& handled) -> bool {
        handled = true;
        const size_t at = (r_.skip_ws(), r_.offset());
        if (name == "updated") {
            have_updated = true;
            return read_hlc(m.updated, name, m, err);
        }
        if (name == "mvcc_timestamp") {
            hlc t;
            if (!read_hlc(t, name, m, err)) {
                return false;
            }
            m.mvcc_timestamp = t;
            return true;
        }
        if (name == "topic") {
            if (r_.peek() != '"') {
                err = message_error(m, at, "\"topic\" must be a string");
                return false;
            }
            have_topic = true;
            return kept_string(topic);
        }
        if (name == "key") {
            if (r_.peek() != '[') {
                err = message_error(m, at, "\"key\" must be an array of primary key values");
                return false;
            }
            have_key = true;
            return read_key(m, depth + 1);
        }
        handled = false;
        return true;
    };

    const bool read_ok = for_each_member(
        depth, "':' after a field name", "',' or '}' after a message field",
        [&](std::string_view name, size_t name_at) {
            const size_t at = (r_.skip_ws(), r_.offset());
            if (name == "after" || name == "before") {
                const bool after = name == "after";
                (after ? have_after : m.has_before) = true;
                if (r_.peek() == 'n') {
                    value v;
                    return read_value(v, depth + 1);
                }
                if (r_.peek() != '{') {
                    err =
                        message_error(m, at, fmt::format("\"{}\" must be an object or null", name));
                    return false;
                }
                m.deleted = m.deleted && !after;
                return read_row(after ? m.after : m.before, depth + 1);
            }
            if (name == "__crdb__") {
                // Bare envelope: metadata here, columns at the top level.
                bare = true;
                if (r_.peek() != '{') {
                    err = message_error(m, at, "\"__crdb__\" must be an object");
                    return false;
                }
                return for_each_member(depth + 1, "':' after a field name",
                                       "',' or '}' in \"__crdb__\"",
                                       [&](std::string_view inner, size_t) {
                                           bool handled = false;
                                           if (!read_meta(inner, handled)) {
                                               return false;
                                           }
                                           if (!handled) {
                                               ++unknown_here;
                                               return skip_value(depth + 2);
                                           }
                                           return true;
                                       });
            }
            bool handled = false;
            if (!read_meta(name, handled)) {
                return false;
            }
            if (!handled) {
                // Unknown here; a column if this turns out to be a bare-envelope message.
                column c{name, {}};
                if (!read_value(c.val, depth + 1)) {
                    return false;
                }
                bare_columns_.push_back(c);
                bare_offsets_.push_back(name_at);
                ++unknown_here;
            }
            return true;
        });
    if (!read_ok) {
        return r_.failed() ? reader_error() : err;
    }

    if (bare && !have_after) {
        // The same rule as for "after": a column may appear once.
        std::vector<size_t> order(bare_columns_.size());
        for (size_t i = 0; i < order.size(); ++i) {
            order[i] = i;
        }
        std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
            return std::tie(bare_columns_[a].name, a) < std::tie(bare_columns_[b].name, b);
        });
        for (size_t i = 1; i < order.size(); ++i) {
            if (bare_columns_[order[i]].name == bare_columns_[order[i - 1]].name) {
                return message_error(
                    m, bare_offsets_[order[i]],
                    fmt::format("column \"{}\" appears twice", bare_columns_[order[i]].name));
            }
        }
        unknown_here -= bare_columns_.size();
        m.after = s_.text.copy(std::span<const column>(bare_columns_));
        m.deleted = bare_columns_.empty();
    }
    s_.unknown_fields += unknown_here;
    if (!have_updated) {
        return message_error(m, start, fmt::format("missing \"updated\": {}", updated_hint));
    }
    if (!have_topic) {
        return message_error(m, start,
                             "missing \"topic\": the message does not name its table (webhook "
                             "changefeeds put it in every message)");
    }
    if (topic.empty()) {
        return message_error(m, start, "empty \"topic\"");
    }
    if (!have_key) {
        return message_error(m, start, "missing \"key\": the primary key of the row is required");
    }
    if (m.key_values.empty()) {
        return message_error(m, start, "empty \"key\": the primary key of the row is required");
    }
    add(topic, m);
    return ok();
}

void decoder::add(std::string_view topic, const mutation& m) {
    ++messages_;
    // Requests usually carry runs of one table: try the last table first.
    table_mutations* table = nullptr;
    if (!s_.tables.empty() && s_.tables.back().topic == topic) {
        table = &s_.tables.back();
    } else {
        for (table_mutations& t : s_.tables) {
            if (t.topic == topic) {
                table = &t;
                break;
            }
        }
    }
    if (table == nullptr) {
        table = &s_.tables.emplace_back();
        table->topic = topic;
    }
    table->mutations.push_back(m);
}

result<void> decoder::read_payload() {
    if (r_.peek() != '[') {
        if (r_.at_end()) {
            r_.expect('[', "'['");
            return reader_error();
        }
        return body_error(r_.offset(), "\"payload\" must be an array of messages");
    }
    if (!r_.check_depth(2) || !r_.expect('[', "'['")) {
        return reader_error();
    }
    if (r_.try_consume(']')) {
        return ok();
    }
    for (;;) {
        if (auto read = read_message(2); !read) {
            return read;
        }
        if (r_.try_consume(',')) {
            continue;
        }
        if (!r_.expect(']', "',' or ']' after a message")) {
            return reader_error();
        }
        return ok();
    }
}

result<webhook_body> decoder::decode_body() {
    webhook_body out;
    if (r_.peek() == '\0' && r_.at_end()) {
        return out;  // An empty body is a no-op, as the original replicator answers it.
    }
    if (r_.peek() != '{') {
        return body_error(r_.offset(),
                          "the body must be a JSON object ({\"payload\":[...]} or "
                          "{\"resolved\":\"...\"})");
    }
    bool have_payload = false;
    std::optional<hlc> resolved;
    std::optional<std::pair<size_t, uint64_t>> length;  // (byte offset, value)
    auto read_resolved = [&](size_t at) -> result<void> {
        if (resolved) {
            return body_error(at, "\"resolved\" appears twice");
        }
        std::string_view text;
        bool escaped = false;
        if (r_.peek() != '"') {
            return body_error(at, "\"resolved\" must be a string");
        }
        if (!r_.read_string(text, escaped)) {
            return reader_error();
        }
        auto parsed = hlc::parse(text);
        if (!parsed) {
            return body_error(at, fmt::format("bad \"resolved\": {}", parsed.error().message()));
        }
        resolved = *parsed;
        return ok();
    };
    std::optional<molt::error> failure;
    auto fail_with = [&](molt::error e) {
        failure = std::move(e);
        return false;
    };
    const bool read_ok = for_each_member(
        0, "':' after a field name", "',' or '}' after a field",
        [&](std::string_view name, size_t) {
            const size_t at = (r_.skip_ws(), r_.offset());
            if (name == "payload") {
                if (have_payload) {
                    return fail_with(body_error(at, "\"payload\" appears twice"));
                }
                have_payload = true;
                auto read = read_payload();
                return read ? true : fail_with(read.error());
            }
            if (name == "length") {
                std::string_view text;
                if ((r_.peek() == '-' || (r_.peek() >= '0' && r_.peek() <= '9')) &&
                    !r_.read_number(text)) {
                    return false;
                }
                const bool integral = !text.empty() && text.size() <= 18 &&
                                      std::all_of(text.begin(), text.end(),
                                                  [](char c) { return c >= '0' && c <= '9'; });
                if (!integral) {
                    return (text.empty() && !skip_value(1))
                               ? false
                               : fail_with(
                                     body_error(at, "\"length\" must be a non-negative integer"));
                }
                uint64_t n = 0;
                for (const char c : text) {
                    n = n * 10 + static_cast<uint64_t>(c - '0');
                }
                length.emplace(at, n);
                return true;
            }
            if (name == "resolved") {
                auto read = read_resolved(at);
                return read ? true : fail_with(read.error());
            }
            if (name == "__crdb__") {
                if (r_.peek() != '{') {
                    return fail_with(body_error(at, "\"__crdb__\" must be an object"));
                }
                return for_each_member(1, "':' after a field name", "',' or '}' in \"__crdb__\"",
                                       [&](std::string_view inner, size_t) {
                                           const size_t inner_at = (r_.skip_ws(), r_.offset());
                                           if (inner == "resolved") {
                                               auto read = read_resolved(inner_at);
                                               return read ? true : fail_with(read.error());
                                           }
                                           ++s_.unknown_fields;
                                           return skip_value(2);
                                       });
            }
            ++s_.unknown_fields;
            return skip_value(1);
        });
    if (!read_ok) {
        return failure ? *failure : reader_error();
    }
    r_.skip_ws();
    if (!r_.at_end()) {
        return body_error(r_.offset(), "unexpected data after the JSON object");
    }
    if (have_payload && resolved) {
        return body_error(0,
                          "the body mixes rows (\"payload\") and a resolved timestamp; "
                          "CockroachDB sends them in separate requests");
    }
    if (!have_payload && !resolved) {
        return body_error(0, "neither \"payload\" nor \"resolved\" is present");
    }
    if (length && !have_payload) {
        return body_error(length->first, "\"length\" without \"payload\"");
    }
    if (length && length->second != messages_) {
        return body_error(length->first,
                          fmt::format("\"length\" is {} but \"payload\" holds {} message{}",
                                      length->second, messages_, messages_ == 1 ? "" : "s"));
    }
    if (resolved) {
        out.type = webhook_body::kind::resolved;
        out.resolved = *resolved;
    }
    return out;
}

result<void> decoder::decode_lines() {
    for (;;) {
        r_.skip_ws();
        if (r_.at_end()) {
            return ok();
        }
        if (auto read = read_message(0); !read) {
            return read;
        }
    }
}

void decoder::group() {
    s_.messages = messages_;
    for (table_mutations& t : s_.tables) {
        auto by_time = [](const mutation& a, const mutation& b) { return a.updated < b.updated; };
        if (!std::is_sorted(t.mutations.begin(), t.mutations.end(), by_time)) {
            std::stable_sort(t.mutations.begin(), t.mutations.end(), by_time);
        }
    }
}

}  // namespace

namespace {

result<void> check_size(const std::string& body, const decode_limits& limits) {
    if (body.size() > limits.max_body_bytes) {
        return molt::error{errc::limit_exceeded,
                           fmt::format("request body of {} bytes exceeds the limit of {} bytes",
                                       body.size(), limits.max_body_bytes)};
    }
    return ok();
}

}  // namespace

result<webhook_body> decode_webhook(std::string body, const decode_limits& limits) {
    if (auto size = check_size(body, limits); !size) {
        return size.error();
    }
    auto s = std::make_unique<batch::storage>();
    s->body = std::move(body);
    decoder d(*s, limits);
    auto decoded = d.decode_body();
    if (!decoded) {
        return std::move(decoded).error();
    }
    d.group();
    decoded->rows = batch(std::move(s));
    return decoded;
}

result<batch> decode_ndjson(std::string body, const decode_limits& limits) {
    if (auto size = check_size(body, limits); !size) {
        return size.error();
    }
    auto s = std::make_unique<batch::storage>();
    s->body = std::move(body);
    decoder d(*s, limits);
    if (auto decoded = d.decode_lines(); !decoded) {
        return decoded.error();
    }
    d.group();
    return batch(std::move(s));
}

std::optional<std::string> json_document(const value& v) {
    // Compact canonical text of {"__crdb_json_null__": true}, as the decoder produces it.
    static constexpr std::string_view json_null_object = R"({"__crdb_json_null__":true})";
    switch (v.kind) {
    case value_kind::null: return std::nullopt;
    case value_kind::boolean:
    case value_kind::number: return std::string(v.text);
    case value_kind::string: {
        std::string out;
        out.reserve(v.text.size() + 2);
        write_crdb_string(out, v.text);
        return out;
    }
    case value_kind::json:
        return v.text == json_null_object ? std::string("null") : std::string(v.text);
    }
    return std::nullopt;
}

}  // namespace molt::proto
