#pragma once
// MySQL and MariaDB targets: SQL, value binding, catalog introspection, sessions (SOCI mysql).
//
//   upsert  INSERT INTO `db`.`t` (`id`,`v`) VALUES (:p1,:p2),(...)
//           ON DUPLICATE KEY UPDATE `v`=VALUES(`v`)
//   delete  DELETE FROM `db`.`t` WHERE (`id`) IN ((:p1),(...))
//
// Values are sent as text and converted by the server, except: BYTES go as hex through UNHEX(),
// BIT through CAST(... AS UNSIGNED), GEOMETRY through ST_GeomFromGeoJSON(); booleans become 1/0;
// TIMESTAMPTZ becomes UTC "YYYY-MM-DD HH:MM:SS.ffffff" (sessions run with time_zone '+00:00');
// NaN and infinities are refused (MySQL cannot store them); a JSON column (MariaDB: LONGTEXT
// with a json_valid() check) takes the value's JSON text (proto::json_document). Sessions use
// utf8mb4, add STRICT_ALL_TABLES to the sql_mode, so bad data fails instead of being
// truncated, and run at READ COMMITTED (fewer gap locks between transactions on disjoint keys)
// unless the server logs statements (read_committed_allowed). Errors are classified by MySQL
// error number, not SQLSTATE.

#include <chrono>
#include <memory>
#include <string_view>

#include "molt/common/conn_url.hpp"
#include "molt/replicator/core/target.hpp"

namespace molt::replicator::mysql {

[[nodiscard]] std::unique_ptr<target_dialect> make_dialect();

/// Opens a session; `lock_timeout` bounds lock waits (innodb_lock_wait_timeout), connecting
/// (clamped to 2..10 s) and each read and write (`lock_timeout` + 5 s), unless the URL sets
/// timeout/readTimeout/writeTimeout. With sslmode require, verify-ca or verify-full the session
/// is refused unless TLS is in use with a certificate that chains to sslrootcert and, for
/// verify-full, is valid for the URL's host — checked before any statement runs.
[[nodiscard]] result<std::unique_ptr<target_session>> connect(
    const conn_url& url, std::chrono::nanoseconds lock_timeout);

/// Whether a session may run at READ COMMITTED: not on a server whose binary log is in
/// STATEMENT format (InnoDB refuses writes there at that level, error 1665).
[[nodiscard]] bool read_committed_allowed(bool log_bin, std::string_view binlog_format) noexcept;

/// The retry class of a MySQL/MariaDB error number.
[[nodiscard]] retry_class classify_error_number(unsigned int number) noexcept;

}  // namespace molt::replicator::mysql
