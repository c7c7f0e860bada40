// Oracle sessions: the ODBC driver chosen among those registered with unixODBC, the URL as a
// DSN-less connection string, and the session settings the bind text relies on.
#include <algorithm>
#include <cctype>
#include <cstdlib>

#include <fmt/format.h>

#include "molt/common/log.hpp"
#include "molt/replicator/dialect/odbc_session.hpp"
#include "molt/replicator/dialect/oracle.hpp"

namespace molt::replicator::oracle {
namespace {

bool starts_with_oracle(std::string_view name) {
    constexpr std::string_view prefix = "oracle";
    if (name.size() < prefix.size()) {
        return false;
    }
    for (size_t i = 0; i < prefix.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(name[i])) != prefix[i]) {
            return false;
        }
    }
    return true;
}

// The first number in a driver name ("Oracle 21c ODBC driver" -> 21), or -1.
long version_of(std::string_view name) {
    const size_t at = name.find_first_of("0123456789");
    if (at == std::string_view::npos) {
        return -1;
    }
    long v = 0;
    for (size_t i = at;
         i < name.size() && i < at + 6 && std::isdigit(static_cast<unsigned char>(name[i])); ++i) {
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

std::string install_steps() {
    return "install Oracle Instant Client Basic (or Basic Light) and the Instant Client ODBC "
           "package into one directory, add it to LD_LIBRARY_PATH, install unixODBC (apt-get "
           "install unixodbc) and register the driver with the package's odbc_update_ini.sh "
           "(e.g. ./odbc_update_ini.sh / /opt/oracle/instantclient_21_13), or add a section "
           "such as [Oracle 21c ODBC driver] with Driver=/opt/oracle/instantclient_21_13/"
           "libsqora.so.21.1 to /etc/odbcinst.ini (replicator/README.md, \"Oracle\")";
}

std::string listed(const std::vector<std::string>& names) {
    if (names.empty()) {
        return "none";
    }
    std::string out;
    for (const std::string& n : names) {
        out += fmt::format("{}\"{}\"", out.empty() ? "" : ", ", log::sanitize(n));
    }
    return out;
}

}  // namespace

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

result<std::string> choose_driver(const std::vector<std::string>& registered,
                                  std::optional<std::string_view> requested) {
    if (requested) {
        const auto it = std::find(registered.begin(), registered.end(), *requested);
        if (it != registered.end()) {
            return *it;
        }
        return error{errc::invalid_argument,
                     fmt::format("the ODBC driver \"{}\" (odbcDriver) is not registered with "
                                 "unixODBC (registered drivers: {}): {}",
                                 log::sanitize(*requested), listed(registered), install_steps())};
    }
    std::vector<std::string> oracle;
    std::copy_if(registered.begin(), registered.end(), std::back_inserter(oracle),
                 [](const std::string& n) { return starts_with_oracle(n); });
    if (oracle.empty()) {
        return error{errc::invalid_argument,
                     fmt::format("no Oracle ODBC driver is registered with unixODBC (registered "
                                 "drivers: {}): {}",
                                 listed(registered), install_steps())};
    }
    // The newest version; among equals, the first registered.
    std::stable_sort(oracle.begin(), oracle.end(), [](const std::string& a, const std::string& b) {
        return version_of(a) > version_of(b);
    });
    return oracle.front();
}

std::string odbc_connection_string(const conn_url& url, std::string_view driver) {
    std::string host = url.host();
    if (host.find(':') != std::string::npos) {
        host = "[" + host + "]";  // an IPv6 address, as EZConnect writes it
    }
    std::string out = fmt::format(
        "Driver={};DBQ={};UID={}", odbc::attribute_value(driver),
        odbc::attribute_value(fmt::format("{}:{}/{}", host, url.port_or_default(), url.database())),
        odbc::attribute_value(url.user()));
    if (url.has_password()) {
        out += ";PWD=" + odbc::attribute_value(url.password());
    }
    return out;
}

bool prepare_client_environment() {
    if (std::getenv("NLS_LANG") != nullptr) {
        return false;
    }
    return setenv("NLS_LANG", ".AL32UTF8", 0) == 0;
}

result<std::unique_ptr<target_session>> connect(const conn_url& url) {
    auto driver = choose_driver(odbc::registered_drivers(), url.param("odbcDriver"));
    if (!driver) {
        return driver.error().with_context(fmt::format("cannot connect to {}", url.redacted()));
    }
    odbc::session_options options;
    options.connection_string = odbc_connection_string(url, *driver);
    options.display = url.redacted();
    options.init = session_init();
    options.ping = "SELECT 1 FROM DUAL";
    options.classify = [](const odbc::diagnostic& d) {
        // The ORA number from the message ("[Oracle][ODBC][Ora]ORA-00060: ..."), else the
        // driver's native code.
        int number = ora_number(d.message);
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
