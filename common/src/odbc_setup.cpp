// ODBC drivers and connection strings (odbc_setup.hpp).
#include "molt/common/odbc_setup.hpp"

#include <sql.h>
#include <sqlext.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include <fmt/format.h>

#include "molt/common/log.hpp"

namespace molt::odbc_setup {
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

std::string attribute_value(std::string_view value) {
    if (value.find_first_of(";{}= \t") == std::string_view::npos && !value.empty()) {
        return std::string(value);
    }
    std::string out = "{";
    for (const char c : value) {
        out += c;
        if (c == '}') {
            out += '}';
        }
    }
    return out + "}";
}

std::vector<std::string> registered_drivers() {
    std::vector<std::string> out;
    SQLHENV env = SQL_NULL_HENV;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &env))) {
        return out;
    }
    SQLSetEnvAttr(env, SQL_ATTR_ODBC_VERSION, reinterpret_cast<SQLPOINTER>(SQL_OV_ODBC3), 0);
    SQLCHAR name[512];
    SQLCHAR attributes[2048];
    SQLSMALLINT name_length = 0;
    SQLSMALLINT attributes_length = 0;
    SQLUSMALLINT direction = SQL_FETCH_FIRST;
    while (SQL_SUCCEEDED(SQLDriversA(env, direction, name, sizeof name, &name_length, attributes,
                                     sizeof attributes, &attributes_length))) {
        out.emplace_back(reinterpret_cast<const char*>(name));
        direction = SQL_FETCH_NEXT;
    }
    SQLFreeHandle(SQL_HANDLE_ENV, env);
    return out;
}

result<std::string> choose_oracle_driver(const std::vector<std::string>& registered,
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

std::string oracle_connection_string(const conn_url& url, std::string_view driver) {
    std::string host = url.host();
    if (host.find(':') != std::string::npos) {
        host = "[" + host + "]";  // an IPv6 address, as EZConnect writes it
    }
    std::string out = fmt::format(
        "Driver={};DBQ={};UID={}", attribute_value(driver),
        attribute_value(fmt::format("{}:{}/{}", host, url.port_or_default(), url.database())),
        attribute_value(url.user()));
    if (url.has_password()) {
        out += ";PWD=" + attribute_value(url.password());
    }
    return out;
}

int ora_number(std::string_view message) noexcept {
    for (size_t at = message.find("ORA-"); at != std::string_view::npos;
         at = message.find("ORA-", at + 4)) {
        int number = 0;
        size_t i = at + 4;
        for (; i < message.size() && i < at + 9 && message[i] >= '0' && message[i] <= '9'; ++i) {
            number = number * 10 + (message[i] - '0');
        }
        if (i == at + 9) {
            return number;
        }
    }
    return 0;
}

bool prepare_oracle_client_environment() {
    if (std::getenv("NLS_LANG") != nullptr) {
        return false;
    }
    return setenv("NLS_LANG", ".AL32UTF8", 0) == 0;
}

}  // namespace molt::odbc_setup
