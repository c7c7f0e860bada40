#pragma once
// The one error convention of both executables.
//
//   tier                           | mechanism
//   -------------------------------+------------------------------------------------------------
//   programmer error (debug only)  | MOLT_ASSERT (assert.hpp)
//   impossible state, always on    | MOLT_CHECK: logs, aborts (assert.hpp)
//   expected failure (bad input,   | functions return molt::result<T>; the error carries an errc
//     I/O, database, network)      |   and a message written for the user, without secrets
//   third-party exceptions         | caught at the adapter that calls the library (SOCI, Beast,
//                                  |   RapidJSON) and converted into molt::error there
//
// Errors turn into HTTP replies in one place (replicator/server) and into process exit codes in
// one place (exit_code.hpp). Never `catch (...) {}`.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace molt {

/// What kind of failure; decides HTTP status and retry policy further up.
enum class errc {
    invalid_argument,  ///< bad flag, bad connection string, bad value supplied by the user
    parse_error,       ///< malformed bytes from the outside (payloads, files)
    not_found,         ///< named thing does not exist (file, table, schema)
    unsupported,       ///< valid but not supported by this build or version
    io_error,          ///< file system or socket failure
    tls_error,         ///< certificate, key or handshake problem
    database_error,    ///< an SQL error from staging or target
    unavailable,       ///< a dependency is down or overloaded; retry later
    unauthenticated,   ///< credentials missing or rejected
    forbidden,         ///< valid credentials that do not allow this
    limit_exceeded,    ///< a configured limit (size, depth, count) was exceeded
    timeout,           ///< a deadline passed
    cancelled,         ///< shutdown in progress
    internal,          ///< a bug; reported, never expected
};

/// Stable lower-case name of an error kind, for logs and metrics.
std::string_view to_string(errc code) noexcept;

/// What a caller may do about a failed database operation (set by the dialect that classified
/// it; `none` for everything else).
enum class retry_class : uint8_t {
    none,       ///< not a database failure, or nothing to retry
    retry_now,  ///< serialization failure, deadlock, lock timeout: retry the transaction
    reconnect,  ///< the connection is broken: drop it, retry on a new one
    defer,      ///< a foreign key is not satisfied yet: retry later, after other work
    schema,     ///< the target's tables or columns changed: refresh the schema, then retry
    unique,     ///< a unique key is held by another row: apply the rows in another order
    fatal,      ///< bad data or SQL: retrying cannot help
};

/// Stable lower-case name, for logs and metrics.
std::string_view to_string(retry_class r) noexcept;

/// An expected failure: a kind plus a message meant for the user. Messages never contain
/// passwords, private keys or tokens (callers redact before building them).
class error {
public:
    error(errc code, std::string message, retry_class retry = retry_class::none)
        : code_(code), retry_(retry), message_(std::move(message)) {}

    [[nodiscard]] errc code() const noexcept { return code_; }
    [[nodiscard]] retry_class retry() const noexcept { return retry_; }
    [[nodiscard]] const std::string& message() const noexcept { return message_; }

    /// Returns the same error with "<context>: " in front of the message.
    [[nodiscard]] error with_context(std::string_view context) const;

private:
    errc code_;
    retry_class retry_;
    std::string message_;
};

}  // namespace molt
