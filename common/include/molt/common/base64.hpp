#pragma once
// Standard base64 (RFC 4648 §4, with padding), as CockroachDB's webhook sink takes ca_cert,
// client_cert and client_key.

#include <string>
#include <string_view>

#include "molt/common/result.hpp"

namespace molt {

[[nodiscard]] std::string base64_encode(std::string_view bytes);
/// Decodes standard base64; whitespace is not allowed, padding is required.
[[nodiscard]] result<std::string> base64_decode(std::string_view text);

}  // namespace molt
