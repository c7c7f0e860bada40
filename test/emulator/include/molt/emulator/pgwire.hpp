#pragma once
// PostgreSQL wire protocol v3 messages, for the CockroachDB stand-in (`crdb-emulator serve`):
// framing of the byte stream in both directions, the client messages the stand-in looks into
// (startup, Query, Parse), and the server messages it writes itself when it answers a
// CockroachDB-only statement (RowDescription, DataRow, CommandComplete, ErrorResponse,
// ReadyForQuery). Everything else passes through as frames.
//
//   startup phase   int32 length (self-inclusive), int32 code, body       (no type byte)
//   afterwards      byte type, int32 length (self-inclusive, no type byte), body
//
// Integers are big-endian; strings are NUL-terminated. Pure functions, no I/O.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "molt/common/result.hpp"

namespace molt::emulator::pgwire {

inline constexpr int32_t protocol_v3 = 196608;            // 3 << 16
inline constexpr int32_t ssl_request_code = 80877103;     // 1234 << 16 | 5679
inline constexpr int32_t gssenc_request_code = 80877104;  // 1234 << 16 | 5680
inline constexpr int32_t cancel_request_code = 80877102;  // 1234 << 16 | 5678

/// One frame. `type` is 0 for startup-phase messages (startup, SSLRequest, CancelRequest).
struct message {
    char type = 0;
    std::string body;  ///< without the type byte and the length
};

/// Cuts a byte stream into frames. Starts in the startup phase when `startup` is true (the
/// client side of a connection); call end_startup() once the startup message has been read.
class frame_reader {
public:
    explicit frame_reader(bool startup, size_t max_message = 64 * 1024 * 1024)
        : startup_(startup), max_(max_message) {}

    void feed(std::string_view bytes) { buffer_.append(bytes); }
    /// The next complete frame, nullopt when more bytes are needed; errc::parse_error for a
    /// length below the minimum or above the limit (the connection cannot be resynchronised).
    [[nodiscard]] result<std::optional<message>> next();
    void end_startup() noexcept { startup_ = false; }
    /// Bytes received and not yet returned as a frame.
    [[nodiscard]] size_t buffered() const noexcept { return buffer_.size() - start_; }

private:
    bool startup_;
    size_t max_;
    std::string buffer_;
    size_t start_ = 0;  ///< consumed bytes at the front of buffer_
};

/// A frame as bytes (type 0: a startup-phase frame, without type byte).
[[nodiscard]] std::string frame(char type, std::string_view body);

struct startup_message {
    int32_t code = 0;  ///< protocol_v3, or one of the *_request_code values
    std::vector<std::pair<std::string, std::string>> parameters;  ///< user, database, options…
    [[nodiscard]] const std::string* parameter(std::string_view name) const;
};

/// A startup-phase body: the protocol version with its parameters, or a request code.
[[nodiscard]] result<startup_message> parse_startup(std::string_view body);
/// The startup body of a v3 connection with these parameters.
[[nodiscard]] std::string startup_body(
    const std::vector<std::pair<std::string, std::string>>& parameters);

/// The SQL text of a Query ('Q') body.
[[nodiscard]] result<std::string> parse_query(std::string_view body);

struct parse_message {
    std::string statement;  ///< "" for the unnamed statement
    std::string query;
    std::vector<uint32_t> param_types;  ///< type OIDs (0: unspecified)
};
/// A Parse ('P') body.
[[nodiscard]] result<parse_message> parse_parse(std::string_view body);

/// Server messages, framed. Columns are text (type OID 25, format 0).
[[nodiscard]] std::string row_description(const std::vector<std::string>& columns);
[[nodiscard]] std::string data_row(const std::vector<std::optional<std::string>>& values);
[[nodiscard]] std::string command_complete(std::string_view tag);
/// 'I' idle, 'T' in a transaction, 'E' in a failed transaction.
[[nodiscard]] std::string ready_for_query(char status);
/// ErrorResponse with severity (S and V), SQLSTATE (C) and message (M).
[[nodiscard]] std::string error_response(std::string_view severity, std::string_view sqlstate,
                                         std::string_view text);

}  // namespace molt::emulator::pgwire
