#pragma once
// Percent-encoding (RFC 3986) for connection strings and sink URLs.

#include <string>
#include <string_view>

#include "molt/common/result.hpp"

namespace molt {

/// Decodes %XX escapes; with plus_as_space, '+' becomes ' ' (query strings, as Go decodes them).
/// The error names `what` (e.g. "password") and the offending escape, except for secrets:
/// pass secret=true and the escape is not echoed.
[[nodiscard]] result<std::string> percent_decode(std::string_view text, std::string_view what,
                                                 bool plus_as_space = false, bool secret = false);

/// Encodes every byte except RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~) and the
/// characters in `keep`.
[[nodiscard]] std::string percent_encode(std::string_view text, std::string_view keep = {});

}  // namespace molt
