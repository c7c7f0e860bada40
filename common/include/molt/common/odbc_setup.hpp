#pragma once
// Reaching a database through an ODBC driver registered with unixODBC, for both programs (the
// replicator's Oracle sessions, molt's own Oracle checks): which drivers are registered, which
// one serves an oracle:// URL, and the URL as a DSN-less connection string.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "molt/common/conn_url.hpp"
#include "molt/common/result.hpp"

namespace molt::odbc_setup {

/// `value` as an attribute value of a connection string: as is when it holds none of ; { } =
/// or spaces, else in braces with each } doubled.
[[nodiscard]] std::string attribute_value(std::string_view value);

/// The ODBC drivers registered with the driver manager (odbcinst.ini), by name.
[[nodiscard]] std::vector<std::string> registered_drivers();

/// The registered ODBC driver for Oracle: `requested` (the URL's odbcDriver parameter) when
/// given and registered, else the one registered driver whose name starts with "Oracle" (the
/// newest version when there are several). The error names what to install and how to
/// register it.
[[nodiscard]] result<std::string> choose_oracle_driver(const std::vector<std::string>& registered,
                                                       std::optional<std::string_view> requested);

/// oracle://user:pass@host:port/service as a DSN-less connection string for `driver`:
/// Driver={...};DBQ=host:port/service;UID=...;PWD=... (values braced where they need it).
/// Holds the password: never for logs.
[[nodiscard]] std::string oracle_connection_string(const conn_url& url, std::string_view driver);

/// The first ORA-NNNNN number in a message of Oracle's ("[Oracle][ODBC][Ora]ORA-00060: ..."),
/// or 0.
[[nodiscard]] int ora_number(std::string_view message) noexcept;

/// Sets NLS_LANG to ".AL32UTF8" when it is unset, so that Oracle's client converts text as
/// UTF-8 (left unset, Instant Client assumes US7ASCII and turns every other character into '?',
/// silently). Returns whether it set it. Call once, before other threads run.
bool prepare_oracle_client_environment();

}  // namespace molt::odbc_setup
