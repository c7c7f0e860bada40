// libFuzzer target: connection-string parsing (user input on both command lines).
// Properties: no crash; a parsed URL re-parses from its canonical form to the same fields; the
// redacted form parses to the same place with the password replaced by xxxxx; an oracle:// URL's
// ODBC connection string gives back exactly its user and password (braced values and "}}").
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "molt/common/conn_url.hpp"
#include "molt/common/odbc_setup.hpp"

namespace {

// The value of attribute `key` in an ODBC connection string, braces undone ("" when absent).
std::string attribute(const std::string& text, const std::string& key) {
    size_t at = 0;
    while (at < text.size()) {
        const size_t eq = text.find('=', at);
        if (eq == std::string::npos) {
            return "";
        }
        const std::string name = text.substr(at, eq - at);
        std::string value;
        size_t end = eq + 1;
        if (end < text.size() && text[end] == '{') {
            for (++end; end < text.size(); ++end) {
                if (text[end] == '}') {
                    if (end + 1 < text.size() && text[end + 1] == '}') {
                        value += '}';
                        ++end;
                        continue;
                    }
                    ++end;
                    break;
                }
                value += text[end];
            }
        } else {
            const size_t semi = text.find(';', end);
            value = text.substr(end, semi == std::string::npos ? std::string::npos : semi - end);
            end = semi == std::string::npos ? text.size() : semi;
        }
        if (name == key) {
            return value;
        }
        at = end + 1;  // past the ';'
    }
    return "";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string input(reinterpret_cast<const char*>(data), size);
    auto url = molt::conn_url::parse(input);
    if (!url) {
        return 0;
    }
    auto again = molt::conn_url::parse(url->to_url());
    if (!again || again->user() != url->user() || again->password() != url->password() ||
        again->host() != url->host() || again->port() != url->port() ||
        again->database() != url->database() || again->params() != url->params()) {
        std::abort();
    }
    // The redacted form parses to the same place, with the password replaced.
    auto redacted = molt::conn_url::parse(url->redacted());
    if (!redacted || redacted->host() != url->host() || redacted->user() != url->user() ||
        redacted->database() != url->database() ||
        redacted->password() != (url->has_password() ? "xxxxx" : "")) {
        std::abort();
    }
    if (url->dialect() == molt::dialect::postgres) {
        (void)url->libpq_conninfo();
    } else if (url->dialect() == molt::dialect::mysql) {
        (void)url->soci_mysql();
    } else {
        const std::string odbc =
            molt::odbc_setup::oracle_connection_string(*url, "Oracle 21c ODBC driver");
        if (attribute(odbc, "Driver") != "Oracle 21c ODBC driver" ||
            attribute(odbc, "UID") != url->user() ||
            attribute(odbc, "PWD") != (url->has_password() ? url->password() : "")) {
            std::abort();
        }
    }
    return 0;
}
