// Oracle sessions: the ODBC driver chosen among those registered with unixODBC, the URL as a
// DSN-less connection string, and the session settings the bind text relies on.
#include <fmt/format.h>

#include "molt/common/odbc_setup.hpp"
#include "molt/replicator/dialect/odbc_session.hpp"
#include "molt/replicator/dialect/oracle.hpp"

namespace molt::replicator::oracle {

const std::vector<std::string>& session_init() {
    static const std::vector<std::string> statements = {
        "ALTER SESSION SET TIME_ZONE = '+00:00'",
        "ALTER SESSION SET NLS_DATE_FORMAT = 'YYYY-MM-DD HH24:MI:SS'",
        "ALTER SESSION SET NLS_TIMESTAMP_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF9'",
        "ALTER SESSION SET NLS_TIMESTAMP_TZ_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM'",
        "ALTER SESSION SET NLS_NUMERIC_CHARACTERS = '.,'",
        "ALTER SESSION SET NLS_LENGTH_SEMANTICS = CHAR",
    };
    return statements;
}

result<std::unique_ptr<target_session>> connect(const conn_url& url,
                                                std::chrono::nanoseconds apply_timeout) {
    auto driver =
        odbc_setup::choose_oracle_driver(odbc_setup::registered_drivers(), url.param("odbcDriver"));
    if (!driver) {
        return driver.error().with_context(fmt::format("cannot connect to {}", url.redacted()));
    }
    odbc::session_options options;
    options.connection_string = odbc_setup::oracle_connection_string(url, *driver);
    options.display = url.redacted();
    options.init = session_init();
    options.ping = "SELECT 1 FROM DUAL";
    options.query_timeout = apply_timeout;
    options.classify = [](const odbc::diagnostic& d) {
        // The ORA number from the message ("[Oracle][ODBC][Ora]ORA-00060: ..."), else the
        // driver's native code.
        int number = odbc_setup::ora_number(d.message);
        if (number == 0 && d.native > 0) {
            number = static_cast<int>(d.native);
        }
        // A number this table does not know is fatal; the SQLSTATE may still say the
        // connection is gone (08xxx) or the call timed out.
        const retry_class by_number = number != 0 ? classify_ora(number) : retry_class::fatal;
        return by_number != retry_class::fatal ? by_number : odbc::classify_sqlstate(d.sqlstate);
    };
    return odbc::connect(options);
}

}  // namespace molt::replicator::oracle
