#include "molt/emulator/pgwire.hpp"

#include <fmt/format.h>

namespace molt::emulator::pgwire {
namespace {

void put32(std::string& out, uint32_t v) {
    out += static_cast<char>((v >> 24) & 0xff);
    out += static_cast<char>((v >> 16) & 0xff);
    out += static_cast<char>((v >> 8) & 0xff);
    out += static_cast<char>(v & 0xff);
}

void put16(std::string& out, uint16_t v) {
    out += static_cast<char>((v >> 8) & 0xff);
    out += static_cast<char>(v & 0xff);
}

uint32_t get32(std::string_view s, size_t at) {
    return (static_cast<uint32_t>(static_cast<unsigned char>(s[at])) << 24) |
           (static_cast<uint32_t>(static_cast<unsigned char>(s[at + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<unsigned char>(s[at + 2])) << 8) |
           static_cast<uint32_t>(static_cast<unsigned char>(s[at + 3]));
}

// A NUL inside would end the string early for the reader: such bytes are dropped.
void put_string(std::string& out, std::string_view s) {
    for (const char c : s) {
        if (c != '\0') {
            out += c;
        }
    }
    out += '\0';
}

// Reads a NUL-terminated string at `at`, advancing it.
result<std::string> get_string(std::string_view body, size_t& at, std::string_view what) {
    const size_t end = body.find('\0', at);
    if (end == std::string_view::npos) {
        return error{errc::parse_error,
                     fmt::format("{}: string without its terminating NUL", what)};
    }
    std::string out(body.substr(at, end - at));
    at = end + 1;
    return out;
}

}  // namespace

result<std::optional<message>> frame_reader::next() {
    const std::string_view pending = std::string_view(buffer_).substr(start_);
    const size_t header = startup_ ? 4 : 5;
    if (pending.size() < header) {
        return std::optional<message>();
    }
    const uint32_t length = get32(pending, header - 4);
    // The length counts itself; a startup frame also carries a 4-byte code.
    const uint32_t minimum = startup_ ? 8 : 4;
    if (length < minimum || length > max_) {
        return error{errc::parse_error,
                     fmt::format("pgwire: a {} message declares length {} (expected {} to {})",
                                 startup_ ? "startup" : fmt::format("'{}'", pending[0]), length,
                                 minimum, max_)};
    }
    const size_t total = header - 4 + length;
    if (pending.size() < total) {
        return std::optional<message>();
    }
    message m;
    m.type = startup_ ? '\0' : pending[0];
    m.body.assign(pending.substr(header, total - header));
    start_ += total;
    // Drop consumed bytes once they dominate the buffer.
    if (start_ > 4096 && start_ * 2 > buffer_.size()) {
        buffer_.erase(0, start_);
        start_ = 0;
    }
    return std::optional<message>(std::move(m));
}

std::string frame(char type, std::string_view body) {
    std::string out;
    out.reserve(body.size() + 5);
    if (type != '\0') {
        out += type;
    }
    put32(out, static_cast<uint32_t>(body.size() + 4));
    out.append(body);
    return out;
}

const std::string* startup_message::parameter(std::string_view name) const {
    for (const auto& [k, v] : parameters) {
        if (k == name) {
            return &v;
        }
    }
    return nullptr;
}

result<startup_message> parse_startup(std::string_view body) {
    if (body.size() < 4) {
        return error{errc::parse_error, "pgwire: a startup message without its code"};
    }
    startup_message out;
    out.code = static_cast<int32_t>(get32(body, 0));
    if (out.code != protocol_v3) {
        if (out.code == ssl_request_code || out.code == gssenc_request_code ||
            out.code == cancel_request_code) {
            return out;
        }
        return error{errc::unsupported,
                     fmt::format("pgwire: protocol {}.{} is not supported (3.0 is)", out.code >> 16,
                                 out.code & 0xffff)};
    }
    size_t at = 4;
    while (at < body.size() && body[at] != '\0') {
        auto name = get_string(body, at, "startup parameter name");
        if (!name) {
            return name.error();
        }
        auto value = get_string(body, at, "startup parameter value");
        if (!value) {
            return value.error();
        }
        out.parameters.emplace_back(std::move(name).value(), std::move(value).value());
    }
    if (at >= body.size()) {
        return error{errc::parse_error, "pgwire: startup parameters without the closing NUL"};
    }
    return out;
}

std::string startup_body(const std::vector<std::pair<std::string, std::string>>& parameters) {
    std::string out;
    put32(out, static_cast<uint32_t>(protocol_v3));
    for (const auto& [k, v] : parameters) {
        put_string(out, k);
        put_string(out, v);
    }
    out += '\0';
    return out;
}

result<std::string> parse_query(std::string_view body) {
    size_t at = 0;
    auto text = get_string(body, at, "Query");
    if (text && at != body.size()) {
        return error{errc::parse_error, "Query: bytes after the query string"};
    }
    return text;
}

result<parse_message> parse_parse(std::string_view body) {
    parse_message out;
    size_t at = 0;
    auto name = get_string(body, at, "Parse statement name");
    if (!name) {
        return name.error();
    }
    auto query = get_string(body, at, "Parse query");
    if (!query) {
        return query.error();
    }
    out.statement = std::move(name).value();
    out.query = std::move(query).value();
    if (body.size() < at + 2) {
        return error{errc::parse_error, "Parse: missing the parameter type count"};
    }
    const size_t count = (static_cast<size_t>(static_cast<unsigned char>(body[at])) << 8) |
                         static_cast<unsigned char>(body[at + 1]);
    at += 2;
    if (body.size() != at + count * 4) {
        return error{errc::parse_error,
                     fmt::format("Parse: {} parameter types declared, {} bytes of them", count,
                                 body.size() - at)};
    }
    for (size_t i = 0; i < count; ++i) {
        out.param_types.push_back(get32(body, at + i * 4));
    }
    return out;
}

std::string row_description(const std::vector<std::string>& columns) {
    std::string body;
    put16(body, static_cast<uint16_t>(columns.size()));
    for (const std::string& c : columns) {
        put_string(body, c);
        put32(body, 0);                          // table OID
        put16(body, 0);                          // column number
        put32(body, 25);                         // type OID: text
        put16(body, static_cast<uint16_t>(-1));  // type size: variable
        put32(body, static_cast<uint32_t>(-1));  // type modifier
        put16(body, 0);                          // format: text
    }
    return frame('T', body);
}

std::string data_row(const std::vector<std::optional<std::string>>& values) {
    std::string body;
    put16(body, static_cast<uint16_t>(values.size()));
    for (const auto& v : values) {
        if (!v) {
            put32(body, static_cast<uint32_t>(-1));
            continue;
        }
        put32(body, static_cast<uint32_t>(v->size()));
        body.append(*v);
    }
    return frame('D', body);
}

std::string command_complete(std::string_view tag) {
    std::string body;
    put_string(body, tag);
    return frame('C', body);
}

std::string ready_for_query(char status) {
    return frame('Z', std::string(1, status));
}

std::string error_response(std::string_view severity, std::string_view sqlstate,
                           std::string_view text) {
    std::string body;
    for (const auto& [field, value] : {std::pair<char, std::string_view>{'S', severity},
                                       {'V', severity},
                                       {'C', sqlstate},
                                       {'M', text}}) {
        body += field;
        put_string(body, value);
    }
    body += '\0';
    return frame('E', body);
}

}  // namespace molt::emulator::pgwire
