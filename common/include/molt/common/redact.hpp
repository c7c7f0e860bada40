#pragma once
// Removing secrets from text before it is logged or put in an error message.
//
// redact_secrets() rewrites, wherever they occur inside free text:
//   - URL passwords:            postgres://user:secret@host    -> postgres://user:xxxxx@host
//   - DSN passwords:            user:secret@tcp(host:3306)/db  -> user:xxxxx@tcp(host:3306)/db
//   - secret parameters:        password=..., sslpassword=..., client_key=..., token=...,
//                               (URL query, libpq key=value and ODBC PWD={...} forms, quoted
//                               and braced values too)
//   - PEM private keys:         -----BEGIN ... PRIVATE KEY----- ... -> [redacted private key]
//   - HTTP credentials:         Bearer <token>, Basic <b64>    -> Bearer xxxxx
//   - JSON Web Tokens:          eyJ....eyJ....sig              -> xxxxx
// "xxxxx" is what Go's url.URL.Redacted() prints, so redacted URLs look as users know them.

#include <string>
#include <string_view>

namespace molt {

inline constexpr std::string_view redacted_marker = "xxxxx";

[[nodiscard]] std::string redact_secrets(std::string_view text);

/// True when a structured log field with this name holds a secret as a whole (password, token,
/// private key, authorization ...); such a value is replaced by the marker.
[[nodiscard]] bool is_secret_field_name(std::string_view name) noexcept;

}  // namespace molt
