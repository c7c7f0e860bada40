#include "molt/common/conn_url.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>

#include <fmt/format.h>

#include "molt/common/duration.hpp"
#include "molt/common/log.hpp"
#include "molt/common/percent.hpp"
#include "molt/common/redact.hpp"

namespace molt {
namespace {

constexpr std::string_view expected_schemes =
    "expected postgres://, postgresql://, mysql:// or oracle://";

error invalid(std::string message) {
    return {errc::invalid_argument, std::move(message)};
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) {
        s.remove_prefix(1);
    }
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) {
        s.remove_suffix(1);
    }
    return s;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::optional<dialect> dialect_of_scheme(std::string_view scheme) {
    if (scheme == "postgres" || scheme == "postgresql" || scheme == "pg" || scheme == "pgx") {
        return dialect::postgres;
    }
    if (scheme == "mysql") {
        return dialect::mysql;
    }
    if (scheme == "oracle" || scheme == "ora") {
        return dialect::oracle;
    }
    return std::nullopt;
}

result<ssl_mode> parse_ssl_mode(std::string_view text) {
    static constexpr std::pair<std::string_view, ssl_mode> modes[] = {
        {"disable", ssl_mode::disable},     {"allow", ssl_mode::allow},
        {"prefer", ssl_mode::prefer},       {"require", ssl_mode::require},
        {"verify-ca", ssl_mode::verify_ca}, {"verify-full", ssl_mode::verify_full}};
    for (const auto& [name, mode] : modes) {
        if (text == name) {
            return mode;
        }
    }
    return invalid(
        fmt::format("invalid sslmode: \"{}\" (expected disable, allow, prefer, "
                    "require, verify-ca or verify-full)",
                    text));
}

result<uint16_t> parse_port(std::string_view text) {
    if (text.empty()) {
        return invalid("empty port after ':' in the host");
    }
    if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return invalid(fmt::format("bad port \"{}\": not a number", text));
    }
    if (text.size() > 5 || std::stoul(std::string(text)) == 0 ||
        std::stoul(std::string(text)) > 65535) {
        return invalid(fmt::format("bad port \"{}\": must be between 1 and 65535", text));
    }
    return static_cast<uint16_t>(std::stoul(std::string(text)));
}

bool valid_host_char(char c) noexcept {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_' ||
           static_cast<unsigned char>(c) >= 0x80;
}

struct host_port {
    std::string host;
    std::optional<uint16_t> port;
};

result<host_port> parse_host_port(std::string_view text) {
    host_port out;
    std::string_view port_text;
    bool has_port = false;
    if (!text.empty() && text.front() == '[') {
        const size_t close = text.find(']');
        if (close == std::string_view::npos) {
            return invalid(fmt::format("unterminated '[' in host \"{}\"", text));
        }
        out.host = std::string(text.substr(1, close - 1));
        const std::string_view after = text.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                return invalid(fmt::format("unexpected \"{}\" after the IPv6 address", after));
            }
            port_text = after.substr(1);
            has_port = true;
        }
        // An IPv6 literal always holds a ':'; zone IDs (%eth0) are not supported.
        if (out.host.find(':') == std::string::npos ||
            !std::all_of(out.host.begin(), out.host.end(), [](char c) {
                return std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == ':' || c == '.';
            })) {
            return invalid(fmt::format("bad IPv6 address \"{}\"", out.host));
        }
    } else {
        if (text.find(',') != std::string_view::npos) {
            return invalid(fmt::format(
                "several hosts (\"{}\") are not supported: give exactly one host", text));
        }
        const size_t colon = text.find(':');
        if (colon != std::string_view::npos &&
            text.find(':', colon + 1) != std::string_view::npos) {
            return invalid(fmt::format(
                "bad host \"{}\": an IPv6 address must be written in brackets, e.g. [::1]:5432",
                text));
        }
        out.host = std::string(text.substr(0, colon));
        if (colon != std::string_view::npos) {
            port_text = text.substr(colon + 1);
            has_port = true;
        }
        for (const char c : out.host) {
            if (!valid_host_char(c)) {
                return invalid(fmt::format("bad character '{}' in host \"{}\"", c, out.host));
            }
        }
    }
    if (has_port) {
        auto port = parse_port(port_text);
        if (!port) {
            return std::move(port).error();
        }
        out.port = *port;
    }
    return out;
}

struct userinfo {
    std::string user;
    std::string password;
    bool has_password = false;
};

result<userinfo> parse_userinfo(std::string_view text) {
    userinfo out;
    const size_t colon = text.find(':');
    auto user = percent_decode(text.substr(0, colon), "user name");
    if (!user) {
        return std::move(user).error();
    }
    out.user = std::move(*user);
    if (colon != std::string_view::npos) {
        auto password = percent_decode(text.substr(colon + 1), "password", false, true);
        if (!password) {
            return std::move(password).error();
        }
        out.password = std::move(*password);
        out.has_password = true;
    }
    return out;
}

result<std::string> parse_database(std::string_view path, dialect d) {
    const std::string_view what = d == dialect::oracle ? "service name" : "database name";
    auto name = percent_decode(path, what);
    if (!name) {
        return std::move(name).error();
    }
    if (name->find('/') != std::string::npos) {
        return invalid(fmt::format("{} \"{}\" contains '/'", what, *name));
    }
    return name;
}

// Quotes a value for libpq conninfo or SOCI mysql: '...' with \ and ' escaped by a backslash.
std::string quote_kv(std::string_view value) {
    const bool plain = !value.empty() && std::none_of(value.begin(), value.end(), [](char c) {
        return c == ' ' || c == '\'' || c == '\\' || c == '=' ||
               std::iscntrl(static_cast<unsigned char>(c)) != 0;
    });
    if (plain) {
        return std::string(value);
    }
    std::string out = "'";
    for (const char c : value) {
        if (c == '\\' || c == '\'') {
            out.push_back('\\');
        }
        out.push_back(c);
    }
    out.push_back('\'');
    return out;
}

void append_kv(std::string& out, std::string_view key, std::string_view value) {
    if (!out.empty()) {
        out.push_back(' ');
    }
    out.append(key).push_back('=');
    out.append(quote_kv(value));
}

// Locates the go-sql-driver network part "net(" in a MySQL body; npos when it is URL form.
// Sets `network` to the word before '('.
size_t find_dsn_network(std::string_view body, std::string_view& network) {
    const size_t paren = body.find('(');
    if (paren == std::string_view::npos) {
        return std::string_view::npos;
    }
    const size_t at = body.rfind('@', paren);
    const size_t word_begin = at == std::string_view::npos ? 0 : at + 1;
    const std::string_view word = body.substr(word_begin, paren - word_begin);
    if (word.empty() || !std::all_of(word.begin(), word.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0;
        })) {
        return std::string_view::npos;
    }
    network = word;
    return word_begin;
}

// Every query parameter a MySQL connection string may hold. MOLT's own TLS names; the
// go-sql-driver names MOLT users write (tls, timeout, readTimeout, writeTimeout are mapped;
// charset goes to the client; parseTime and loc=UTC describe what the replicator does anyway).
constexpr std::string_view mysql_params[] = {
    "sslmode",     "sslrootcert",  "sslcert", "sslkey",    "tls", "timeout",
    "readTimeout", "writeTimeout", "charset", "parseTime", "loc"};

// A go-sql-driver timeout as whole seconds (rounded up; SOCI takes seconds).
result<long long> mysql_timeout_seconds(std::string_view key, std::string_view text) {
    auto d = parse_duration(text);
    if (!d) {
        return invalid(fmt::format("bad {}={}: {}", key, log::sanitize(text), d.error().message()));
    }
    if (*d <= std::chrono::nanoseconds::zero()) {
        return invalid(fmt::format("bad {}={}: must be more than zero", key, log::sanitize(text)));
    }
    return std::chrono::ceil<std::chrono::seconds>(*d).count();
}

// Checks a MySQL URL's parameters: unknown ones are named, supported ones checked. Returns the
// sslmode that a go-sql-driver `tls` parameter stands for, if there is one.
result<std::optional<ssl_mode>> check_mysql_params(
    const std::vector<std::pair<std::string, std::string>>& params) {
    std::string unknown;
    size_t unknown_count = 0;
    std::optional<ssl_mode> from_tls;
    bool has_sslmode = false;
    for (const auto& [key, value] : params) {
        if (std::find(std::begin(mysql_params), std::end(mysql_params), key) ==
            std::end(mysql_params)) {
            unknown += fmt::format("{}\"{}\"", unknown.empty() ? "" : ", ", log::sanitize(key));
            ++unknown_count;
            continue;
        }
        if (key == "sslmode") {
            has_sslmode = true;
        } else if (key == "tls") {
            static constexpr std::pair<std::string_view, ssl_mode> modes[] = {
                {"true", ssl_mode::verify_full},
                {"skip-verify", ssl_mode::require},
                {"preferred", ssl_mode::prefer},
                {"false", ssl_mode::disable}};
            for (const auto& [name, mode] : modes) {
                if (value == name) {
                    from_tls = mode;
                }
            }
            if (!from_tls) {
                return invalid(fmt::format(
                    "unsupported value tls={}: give sslmode (and sslrootcert, sslcert, sslkey) "
                    "instead of a registered TLS configuration (tls=true, skip-verify, "
                    "preferred or false are understood)",
                    log::sanitize(value)));
            }
        } else if (key == "timeout" || key == "readTimeout" || key == "writeTimeout") {
            auto seconds = mysql_timeout_seconds(key, value);
            if (!seconds) {
                return std::move(seconds).error();
            }
        } else if (key == "loc" && value != "UTC") {
            return invalid(fmt::format(
                "unsupported value loc={}: the replicator's MySQL sessions always run in UTC "
                "(time_zone '+00:00'); leave loc out or write loc=UTC",
                log::sanitize(value)));
        } else if (key == "parseTime") {
            static constexpr std::string_view bools[] = {"1", "t", "T", "true",  "TRUE",  "True",
                                                         "0", "f", "F", "false", "FALSE", "False"};
            if (std::find(std::begin(bools), std::end(bools), value) == std::end(bools)) {
                return invalid(
                    fmt::format("bad parseTime={}: expected true or false", log::sanitize(value)));
            }
        }
    }
    if (unknown_count > 0) {
        std::string supported;
        for (const std::string_view name : mysql_params) {
            supported += fmt::format("{}{}", supported.empty() ? "" : ", ", name);
        }
        return invalid(fmt::format("unsupported MySQL connection parameter{}: {} (supported: {})",
                                   unknown_count == 1 ? "" : "s", unknown, supported));
    }
    if (from_tls && has_sslmode) {
        return invalid("give either sslmode or tls, not both");
    }
    return from_tls;
}

}  // namespace

std::string_view to_string(ssl_mode mode) noexcept {
    switch (mode) {
    case ssl_mode::unset: return "";
    case ssl_mode::disable: return "disable";
    case ssl_mode::allow: return "allow";
    case ssl_mode::prefer: return "prefer";
    case ssl_mode::require: return "require";
    case ssl_mode::verify_ca: return "verify-ca";
    case ssl_mode::verify_full: return "verify-full";
    }
    return "";
}

result<conn_url> conn_url::parse(std::string_view raw) {
    const std::string_view text = trim(raw);
    if (text.empty()) {
        return invalid("empty connection string");
    }
    for (size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7F) {
            return invalid(fmt::format(
                "connection string contains a control character (byte {} at offset {})", c, i));
        }
    }
    const size_t sep = text.find("://");
    const std::string_view scheme_text = sep == std::string_view::npos ? "" : text.substr(0, sep);
    if (scheme_text.empty() || !std::all_of(scheme_text.begin(), scheme_text.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '-' ||
                   c == '.';
        })) {
        return invalid(fmt::format("missing scheme in connection string \"{}\": {}",
                                   redact_secrets(text), expected_schemes));
    }
    conn_url url;
    url.scheme_ = lower(scheme_text);
    const auto d = dialect_of_scheme(url.scheme_);
    if (!d) {
        return invalid(fmt::format("unrecognised scheme \"{}\" in connection string ({})",
                                   scheme_text, expected_schemes));
    }
    url.dialect_ = *d;

    std::string_view rest = text.substr(sep + 3);
    if (rest.find('#') != std::string_view::npos) {
        return invalid(
            "unexpected '#' in connection string: write it as %23 (passwords "
            "containing '#' must be percent-encoded)");
    }
    const size_t question = rest.find('?');
    const std::string_view query =
        question == std::string_view::npos ? std::string_view{} : rest.substr(question + 1);
    const std::string_view body = rest.substr(0, question);

    std::string_view network;
    const size_t dsn_at =
        url.dialect_ == dialect::mysql ? find_dsn_network(body, network) : std::string_view::npos;
    std::string_view user_text;
    bool has_userinfo = false;
    if (dsn_at != std::string_view::npos) {
        // go-sql-driver DSN: [user[:password]@]net(address)/dbname
        url.mysql_dsn_ = true;
        if (network != "tcp" && network != "tcp4" && network != "tcp6") {
            if (network == "unix") {
                return error{errc::unsupported,
                             "unix sockets in MySQL DSNs are not supported: use tcp(host:port)"};
            }
            return invalid(
                fmt::format("unknown network \"{}\" in MySQL DSN (expected "
                            "user:password@tcp(host:port)/database)",
                            network));
        }
        const size_t open = dsn_at + network.size();
        const size_t close = body.find(')', open);
        if (close == std::string_view::npos) {
            return invalid(
                fmt::format("unterminated \"{}(\" in MySQL DSN (expected "
                            "user:password@tcp(host:port)/database)",
                            network));
        }
        const std::string_view address = body.substr(open + 1, close - open - 1);
        if (address.empty()) {
            return invalid(
                fmt::format("empty address in \"{}()\" (expected tcp(host:port))", network));
        }
        auto hp = parse_host_port(address);
        if (!hp) {
            return std::move(hp).error();
        }
        url.host_ = std::move(hp->host);
        url.port_ = hp->port;
        const std::string_view after = body.substr(close + 1);
        if (!after.empty() && after.front() != '/') {
            return invalid(
                fmt::format("expected '/' and a database name after \"{}(...)\"", network));
        }
        if (!after.empty()) {
            auto db = parse_database(after.substr(1), url.dialect_);
            if (!db) {
                return std::move(db).error();
            }
            url.database_ = std::move(*db);
        }
        has_userinfo = dsn_at > 0;
        user_text = has_userinfo ? body.substr(0, dsn_at - 1) : std::string_view{};
    } else {
        const size_t slash = body.find('/');
        const std::string_view authority = body.substr(0, slash);
        const std::string_view path =
            slash == std::string_view::npos ? std::string_view{} : body.substr(slash + 1);
        if (path.find('@') != std::string_view::npos) {
            return invalid(
                "unexpected '@' after the host: percent-encode ':', '/', '?', '#' and "
                "'@' in the user name and password (molt escape-password prints the "
                "encoded form)");
        }
        const size_t at = authority.rfind('@');
        has_userinfo = at != std::string_view::npos;
        user_text = has_userinfo ? authority.substr(0, at) : std::string_view{};
        auto hp = parse_host_port(has_userinfo ? authority.substr(at + 1) : authority);
        if (!hp) {
            return std::move(hp).error();
        }
        url.host_ = std::move(hp->host);
        url.port_ = hp->port;
        auto db = parse_database(path, url.dialect_);
        if (!db) {
            return std::move(db).error();
        }
        url.database_ = std::move(*db);
    }
    if (has_userinfo) {
        auto info = parse_userinfo(user_text);
        if (!info) {
            return std::move(info).error();
        }
        url.user_ = std::move(info->user);
        url.password_ = std::move(info->password);
        url.has_password_ = info->has_password;
    }

    // Query parameters: key=value pairs joined by '&'; empty segments are skipped (as Go does).
    size_t pos = 0;
    while (pos <= query.size() && !query.empty()) {
        const size_t amp = std::min(query.find('&', pos), query.size());
        const std::string_view pair = query.substr(pos, amp - pos);
        pos = amp + 1;
        if (pair.empty()) {
            continue;
        }
        const size_t eq = pair.find('=');
        if (eq == std::string_view::npos) {
            return invalid(
                fmt::format("query parameter \"{}\" has no value (expected key=value)", pair));
        }
        auto key = percent_decode(pair.substr(0, eq), "query parameter name", true);
        if (!key) {
            return std::move(key).error();
        }
        if (key->empty()) {
            return invalid("empty query parameter name before '='");
        }
        const bool secret = is_secret_field_name(*key);
        auto value =
            percent_decode(pair.substr(eq + 1),
                           fmt::format("value of query parameter \"{}\"", *key), true, secret);
        if (!value) {
            return std::move(value).error();
        }
        if (url.param(*key)) {
            return invalid(fmt::format("query parameter \"{}\" is given twice", *key));
        }
        url.params_.emplace_back(std::move(*key), std::move(*value));
    }

    if (url.dialect_ == dialect::mysql) {
        auto from_tls = check_mysql_params(url.params_);
        if (!from_tls) {
            return std::move(from_tls).error();
        }
        if (*from_tls) {
            url.tls_.mode = **from_tls;
        }
    }
    if (url.dialect_ == dialect::oracle) {
        // Oracle's TLS and other client settings live in the client's sqlnet.ora and wallet,
        // not in the URL: only the ODBC driver's name may be given here.
        for (const auto& [key, value] : url.params_) {
            if (key != "odbcDriver") {
                return invalid(fmt::format(
                    "unsupported Oracle connection parameter \"{}\" (supported: odbcDriver, the "
                    "name of the ODBC driver registered in odbcinst.ini; TLS and other client "
                    "settings belong in sqlnet.ora)",
                    log::sanitize(key)));
            }
            if (value.empty()) {
                return invalid("odbcDriver must not be empty");
            }
        }
    }
    if (auto mode = url.param("sslmode")) {
        auto parsed = parse_ssl_mode(*mode);
        if (!parsed) {
            return std::move(parsed).error();
        }
        url.tls_.mode = *parsed;
    }
    url.tls_.root_cert = std::string(url.param("sslrootcert").value_or(""));
    url.tls_.cert = std::string(url.param("sslcert").value_or(""));
    url.tls_.key = std::string(url.param("sslkey").value_or(""));
    if (url.tls_.cert.empty() != url.tls_.key.empty()) {
        return invalid(
            "sslcert and sslkey must be given together (client certificate and its key)");
    }

    switch (url.dialect_) {
    case dialect::postgres: break;
    case dialect::mysql:
        if ((url.tls_.mode == ssl_mode::require || url.tls_.mode == ssl_mode::verify_ca ||
             url.tls_.mode == ssl_mode::verify_full) &&
            url.tls_.root_cert.empty()) {
            return invalid(
                fmt::format("sslmode={} needs sslrootcert (the CA certificate file) "
                            "for a MySQL connection",
                            to_string(url.tls_.mode)));
        }
        break;
    case dialect::oracle:
        if (url.host_.empty()) {
            return invalid(
                "missing host in Oracle connection string (expected "
                "oracle://user:password@host:1521/SERVICE)");
        }
        if (url.database_.empty()) {
            return invalid(
                "missing service name in Oracle connection string (expected "
                "oracle://user:password@host:1521/SERVICE)");
        }
        break;
    }
    return url;
}

uint16_t conn_url::port_or_default() const noexcept {
    if (port_) {
        return *port_;
    }
    switch (dialect_) {
    case dialect::postgres: return 5432;
    case dialect::mysql: return 3306;
    case dialect::oracle: return 1521;
    }
    return 0;
}

std::optional<std::string_view> conn_url::param(std::string_view key) const noexcept {
    for (const auto& [k, v] : params_) {
        if (k == key) {
            return std::string_view(v);
        }
    }
    return std::nullopt;
}

std::string conn_url::build_url(bool redact) const {
    std::string out = scheme_ + "://";
    if (!user_.empty() || has_password_) {
        out += percent_encode(user_);
        if (has_password_) {
            out += ':';
            out += redact ? std::string(redacted_marker) : percent_encode(password_);
        }
        out += '@';
    }
    out += host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_;
    if (port_) {
        out += fmt::format(":{}", *port_);
    }
    if (!database_.empty()) {
        out += '/';
        out += percent_encode(database_);
    }
    for (size_t i = 0; i < params_.size(); ++i) {
        const auto& [key, value] = params_[i];
        out += i == 0 ? '?' : '&';
        out += percent_encode(key);
        out += '=';
        out += redact && is_secret_field_name(key) ? std::string(redacted_marker)
                                                   : percent_encode(value);
    }
    return out;
}

std::string conn_url::redacted() const {
    return build_url(true);
}

std::string conn_url::to_url() const {
    return build_url(false);
}

std::string conn_url::libpq_conninfo() const {
    MOLT_CHECK(dialect_ == dialect::postgres, "libpq_conninfo() needs a PostgreSQL URL");
    std::string out;
    if (!host_.empty()) {
        append_kv(out, "host", host_);
    }
    if (port_) {
        append_kv(out, "port", std::to_string(*port_));
    }
    if (!database_.empty()) {
        append_kv(out, "dbname", database_);
    }
    if (!user_.empty()) {
        append_kv(out, "user", user_);
    }
    if (has_password_) {
        append_kv(out, "password", password_);
    }
    for (const auto& [key, value] : params_) {
        append_kv(out, key, value);
    }
    return out;
}

std::string conn_url::soci_mysql() const {
    MOLT_CHECK(dialect_ == dialect::mysql, "soci_mysql() needs a MySQL URL");
    std::string out;
    // The Go driver MOLT uses always dials TCP, defaulting to 127.0.0.1:3306. libmysqlclient
    // would take "localhost" (or no host) to mean the Unix socket, so both are mapped to TCP.
    const std::string host = host_.empty() || host_ == "localhost" ? "127.0.0.1" : host_;
    append_kv(out, "host", host);
    append_kv(out, "port", std::to_string(port_or_default()));
    if (!database_.empty()) {
        append_kv(out, "dbname", database_);
    }
    if (!user_.empty()) {
        append_kv(out, "user", user_);
    }
    if (has_password_) {
        append_kv(out, "password", password_);
    }
    if (tls_.mode != ssl_mode::disable) {
        if (!tls_.root_cert.empty()) {
            append_kv(out, "sslca", tls_.root_cert);
        }
        if (!tls_.cert.empty()) {
            append_kv(out, "sslcert", tls_.cert);
            append_kv(out, "sslkey", tls_.key);
        }
    }
    if (auto charset = param("charset")) {
        append_kv(out, "charset", *charset);
    }
    // go-sql-driver's timeouts (checked by parse()) as SOCI's whole seconds.
    static constexpr std::pair<std::string_view, std::string_view> timeouts[] = {
        {"timeout", "connect_timeout"},
        {"readTimeout", "read_timeout"},
        {"writeTimeout", "write_timeout"}};
    for (const auto& [ours, soci] : timeouts) {
        if (auto value = param(ours)) {
            if (auto seconds = mysql_timeout_seconds(ours, *value)) {
                append_kv(out, soci, std::to_string(*seconds));
            }
        }
    }
    return out;
}

}  // namespace molt
