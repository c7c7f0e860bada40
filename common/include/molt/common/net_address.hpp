#pragma once
// Listen addresses as Go writes them: "host:port", ":port" (every interface), "[::1]:port".

#include <cstdint>
#include <string>
#include <string_view>

#include "molt/common/result.hpp"

namespace molt {

struct net_address {
    std::string host;  ///< empty: every interface; IPv6 without brackets
    uint16_t port = 0;

    /// host:port with IPv6 hosts in brackets, ":port" when host is empty.
    [[nodiscard]] std::string to_string() const;
};

/// Parses "host:port", ":port" or "[v6]:port"; port 0 is allowed (pick a free port).
[[nodiscard]] result<net_address> parse_net_address(std::string_view text);

}  // namespace molt
