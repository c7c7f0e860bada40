// libFuzzer target: connection-string parsing (user input on both command lines).
// Properties: no crash; a parsed URL re-parses from its canonical form to the same fields; the
// redacted form parses to the same place with the password replaced by xxxxx.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "molt/common/conn_url.hpp"

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
    }
    return 0;
}
