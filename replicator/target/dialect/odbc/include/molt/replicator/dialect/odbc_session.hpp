#pragma once
// Target sessions through SOCI's ODBC backend (unixODBC loads the driver named in the
// connection string at run time). The dialect supplies what differs per database: the
// statements run after every connect, the ping statement, and how a diagnostic record
// (SQLSTATE, native error code, message) is classified. Parameters are bound as text, with NULL
// indicators; execute_array() binds one array per parameter (SQL_ATTR_PARAMSET_SIZE), so a
// driver that supports parameter arrays runs every row in one execution, and checks each row's
// outcome (SQL_ATTR_PARAM_STATUS_PTR): a row the driver reports failed or skipped fails the
// call, even when the execution as a whole reported success. SOCI rewrites each
// :name outside single quotes to ? and binds by position, so every placeholder occurrence is its
// own parameter. Drivers are never asked to prompt (SQL_DRIVER_NOPROMPT).

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "molt/common/result.hpp"
#include "molt/replicator/core/target.hpp"

namespace molt::replicator::odbc {

/// The first diagnostic record of a failed ODBC call.
struct diagnostic {
    std::string sqlstate;  ///< five characters, e.g. "23505", "08S01", "HYT00"
    long native = 0;      ///< the driver's own error number (MariaDB: 1062; Oracle: the ORA number)
    std::string message;  ///< "[vendor][driver]..." text, secrets redacted
};

struct session_options {
    /// DSN-less connection string, "Driver={...};...;PWD={...}". Holds the password: never logged.
    std::string connection_string;
    /// What to call the database in messages (a redacted URL).
    std::string display;
    /// Statements run after every connect, in order (a new connection, or one replacing a
    /// broken one: the pool opens a new session, so they always run).
    std::vector<std::string> init;
    /// A cheap round trip.
    std::string ping = "SELECT 1";
    /// The retry class of a diagnostic (default: by SQLSTATE, classify_sqlstate()).
    std::function<retry_class(const diagnostic&)> classify;
    /// The most buffer bytes one execution of a parameter array binds (rows x the longest value
    /// of each parameter): more rows go in further executions.
    size_t max_array_bytes = 32 * 1024 * 1024;
    /// The longest a parameter array's execution may run (SQL_ATTR_QUERY_TIMEOUT, whole seconds,
    /// rounded up; 0: none): a write waiting on a lock fails then (HYT00; Oracle: ORA-01013),
    /// as far as the driver honours the attribute.
    std::chrono::nanoseconds query_timeout{0};
};

/// Opens a session. A failure to connect is errc::unavailable (retry_class::reconnect), except
/// a driver the driver manager cannot find or load (SQLSTATE IM002, IM003; unixODBC's "Can't open
/// lib"): errc::invalid_argument, naming the driver, since retrying cannot help.
[[nodiscard]] result<std::unique_ptr<target_session>> connect(const session_options& options);

/// A generic classification by SQLSTATE class: 08 and HYT01 reconnect; 40001, 40P01 and HYT00
/// (a timeout) retry now; 23 (integrity) fatal; everything else fatal.
[[nodiscard]] retry_class classify_sqlstate(std::string_view sqlstate) noexcept;

/// Connection-string values and the registered drivers: molt/common/odbc_setup.hpp.

}  // namespace molt::replicator::odbc
