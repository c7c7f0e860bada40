#include "molt/common/net_address.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "molt/common/log.hpp"

namespace molt {

std::string net_address::to_string() const {
    if (host.find(':') != std::string::npos) {
        return fmt::format("[{}]:{}", host, port);
    }
    return fmt::format("{}:{}", host, port);
}

result<net_address> parse_net_address(std::string_view text) {
    auto bad = [&](std::string_view why) {
        return error{errc::invalid_argument,
                     fmt::format("bad address \"{}\": {} (expected host:port or :port)",
                                 log::sanitize(text), why)};
    };
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        return bad("missing ':port'");
    }
    net_address out;
    std::string_view host = text.substr(0, colon);
    const std::string_view port = text.substr(colon + 1);
    if (!host.empty() && host.front() == '[') {
        if (host.back() != ']') {
            return bad("unterminated '['");
        }
        host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string_view::npos) {
        return bad("an IPv6 host must be in brackets");
    }
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoul(std::string(port)) > 65535) {
        return bad("the port must be a number from 0 to 65535");
    }
    out.host = std::string(host);
    out.port = static_cast<uint16_t>(std::stoul(std::string(port)));
    return out;
}

}  // namespace molt
