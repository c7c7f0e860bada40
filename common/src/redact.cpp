#include "molt/common/redact.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace molt {
namespace {

char lower(char c) noexcept {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

size_t ifind(std::string_view hay, std::string_view needle, size_t from = 0) noexcept {
    if (needle.size() > hay.size()) {
        return std::string_view::npos;
    }
    for (size_t i = from; i + needle.size() <= hay.size(); ++i) {
        if (iequals(hay.substr(i, needle.size()), needle)) {
            return i;
        }
    }
    return std::string_view::npos;
}

bool is_ident_char(char c) noexcept {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
}

bool is_b64url_char(char c) noexcept {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
}

// Characters that end a URL authority or a parameter value in free text.
bool ends_token(char c) noexcept {
    return std::isspace(static_cast<unsigned char>(c)) != 0 || c == '"' || c == '\'' || c == '`' ||
           c == '<' || c == '>';
}

constexpr std::array<std::string_view, 12> secret_params = {
    "password", "passwd",       "pwd",    "pass",    "sslpassword", "client_key",
    "token",    "access_token", "secret", "api_key", "apikey",      "private_key"};

// Replaces the password in "scheme://user:password@host" forms.
std::string redact_url_passwords(std::string_view in) {
    std::string out;
    size_t pos = 0;
    for (;;) {
        const size_t scheme_end = in.find("://", pos);
        if (scheme_end == std::string_view::npos) {
            break;
        }
        const size_t start = scheme_end + 3;
        // The authority runs to the first '/', '?', '#' or token end; the userinfo to its last '@'.
        // A DSN authority "user:pass@tcp(host:port)" holds '/' only inside unix(...), after '@'.
        size_t end = start;
        while (end < in.size() && !ends_token(in[end]) && in[end] != '/' && in[end] != '?' &&
               in[end] != '#') {
            ++end;
        }
        const std::string_view authority = in.substr(start, end - start);
        const size_t at = authority.rfind('@');
        const size_t colon = at == std::string_view::npos ? at : authority.find(':');
        out.append(in.substr(pos, start - pos));
        if (at != std::string_view::npos && colon != std::string_view::npos && colon < at) {
            out.append(authority.substr(0, colon + 1));
            out.append(redacted_marker);
            out.append(authority.substr(at));
        } else {
            out.append(authority);
        }
        pos = end;
    }
    out.append(in.substr(pos));
    return out;
}

// Replaces the password in scheme-less go-sql-driver DSNs: "user:pass@tcp(" / "@unix(".
std::string redact_dsn_passwords(std::string_view in) {
    std::string out;
    size_t pos = 0;
    for (;;) {
        size_t at = std::string_view::npos;
        for (const std::string_view net : {"@tcp(", "@tcp4(", "@tcp6(", "@unix("}) {
            at = std::min(at, in.find(net, pos));
        }
        if (at == std::string_view::npos) {
            break;
        }
        size_t begin = at;
        while (begin > pos && !ends_token(in[begin - 1]) && in[begin - 1] != '/') {
            --begin;
        }
        const std::string_view userinfo = in.substr(begin, at - begin);
        const size_t colon = userinfo.find(':');
        if (colon != std::string_view::npos && userinfo.substr(colon + 1) != redacted_marker) {
            out.append(in.substr(pos, begin + colon + 1 - pos));
            out.append(redacted_marker);
        } else {
            out.append(in.substr(pos, at - pos));
        }
        out.push_back('@');
        pos = at + 1;
    }
    out.append(in.substr(pos));
    return out;
}

// Replaces values of secret-named parameters: "key=value", "key='quoted value'", "key: value",
// "key={braced value}".
std::string redact_params(std::string_view in) {
    std::string out;
    size_t pos = 0;
    size_t scan = 0;
    while (scan < in.size()) {
        const size_t eq = in.find_first_of("=:", scan);
        if (eq == std::string_view::npos) {
            break;
        }
        // JSON text quotes its keys: "password": "x".
        const size_t key_end = eq > 0 && in[eq - 1] == '"' ? eq - 1 : eq;
        size_t key_begin = key_end;
        while (key_begin > 0 && is_ident_char(in[key_begin - 1])) {
            --key_begin;
        }
        const std::string_view key = in.substr(key_begin, key_end - key_begin);
        const bool secret = std::any_of(secret_params.begin(), secret_params.end(),
                                        [&](std::string_view s) { return iequals(key, s); });
        // "key: value" only counts for JSON-ish "key": value text; '=' always counts.
        if (!secret || (in[eq] == ':' && (eq + 1 >= in.size() || in[eq + 1] != ' '))) {
            scan = eq + 1;
            continue;
        }
        size_t value_begin = eq + 1;
        while (value_begin < in.size() && in[value_begin] == ' ' && in[eq] == ':') {
            ++value_begin;
        }
        size_t value_end = value_begin;
        if (value_begin < in.size() && (in[value_begin] == '\'' || in[value_begin] == '"')) {
            const char quote = in[value_begin];
            value_end = value_begin + 1;
            while (value_end < in.size() && in[value_end] != quote) {
                value_end += in[value_end] == '\\' ? 2 : 1;
            }
            value_end = std::min(value_end + 1, in.size());
        } else if (value_begin < in.size() && in[value_begin] == '{') {
            // An ODBC connection string's braced value, "}}" standing for '}': PWD={p;w}}d}.
            value_end = value_begin + 1;
            while (value_end < in.size()) {
                if (in[value_end] == '}') {
                    if (value_end + 1 < in.size() && in[value_end + 1] == '}') {
                        value_end += 2;
                        continue;
                    }
                    ++value_end;
                    break;
                }
                ++value_end;
            }
        } else {
            while (value_end < in.size() && !ends_token(in[value_end]) && in[value_end] != '&' &&
                   in[value_end] != ';' && in[value_end] != ',') {
                ++value_end;
            }
        }
        if (value_end > value_begin) {
            out.append(in.substr(pos, value_begin - pos));
            out.append(redacted_marker);
            pos = value_end;
        }
        scan = std::max(value_end, eq + 1);
    }
    out.append(in.substr(pos));
    return out;
}

std::string redact_private_keys(std::string_view in) {
    std::string out;
    size_t pos = 0;
    for (;;) {
        const size_t begin = in.find("-----BEGIN ", pos);
        if (begin == std::string_view::npos) {
            break;
        }
        const size_t label_end = in.find("-----", begin + 11);
        if (label_end == std::string_view::npos) {
            break;
        }
        const std::string_view label = in.substr(begin + 11, label_end - begin - 11);
        if (label.find("PRIVATE KEY") == std::string_view::npos) {
            out.append(in.substr(pos, label_end + 5 - pos));
            pos = label_end + 5;
            continue;
        }
        out.append(in.substr(pos, begin - pos));
        out.append("[redacted private key]");
        const size_t end = in.find("-----END ", label_end);
        const size_t end_close = end == std::string_view::npos ? end : in.find("-----", end + 9);
        pos = end_close == std::string_view::npos ? in.size() : end_close + 5;
    }
    out.append(in.substr(pos));
    return out;
}

std::string redact_auth_schemes(std::string_view in) {
    std::string out;
    size_t pos = 0;
    for (;;) {
        size_t hit = std::string_view::npos;
        size_t hit_len = 0;
        for (const std::string_view scheme : {"bearer ", "basic "}) {
            const size_t found = ifind(in, scheme, pos);
            if (found < hit) {
                hit = found;
                hit_len = scheme.size();
            }
        }
        if (hit == std::string_view::npos) {
            break;
        }
        const size_t value_begin = hit + hit_len;
        size_t value_end = value_begin;
        while (value_end < in.size() && !ends_token(in[value_end]) && in[value_end] != ',') {
            ++value_end;
        }
        out.append(in.substr(pos, value_begin - pos));
        // Only a credential-looking word is a secret; "basic auth" in prose stays readable.
        const std::string_view value = in.substr(value_begin, value_end - value_begin);
        const bool credential = value.size() >= 8 || value.find('=') != std::string_view::npos;
        out.append(credential ? redacted_marker : value);
        pos = value_end;
    }
    out.append(in.substr(pos));
    return out;
}

std::string redact_jwts(std::string_view in) {
    std::string out;
    size_t pos = 0;
    for (;;) {
        const size_t begin = in.find("eyJ", pos);
        if (begin == std::string_view::npos) {
            break;
        }
        size_t end = begin;
        int dots = 0;
        while (end < in.size() && (is_b64url_char(in[end]) || in[end] == '.')) {
            dots += in[end] == '.' ? 1 : 0;
            ++end;
        }
        out.append(in.substr(pos, begin - pos));
        out.append(dots == 2 ? redacted_marker : in.substr(begin, end - begin));
        pos = end;
    }
    out.append(in.substr(pos));
    return out;
}

}  // namespace

std::string redact_secrets(std::string_view text) {
    // Fast path: most log text holds none of the markers.
    const bool maybe =
        text.find("://") != std::string_view::npos || text.find('@') != std::string_view::npos ||
        text.find('=') != std::string_view::npos || text.find(": ") != std::string_view::npos ||
        text.find("-----BEGIN") != std::string_view::npos ||
        text.find("eyJ") != std::string_view::npos ||
        ifind(text, "bearer ") != std::string_view::npos ||
        ifind(text, "basic ") != std::string_view::npos;
    if (!maybe) {
        return std::string(text);
    }
    std::string out = redact_private_keys(text);
    out = redact_url_passwords(out);
    out = redact_dsn_passwords(out);
    out = redact_params(out);
    out = redact_auth_schemes(out);
    out = redact_jwts(out);
    return out;
}

bool is_secret_field_name(std::string_view name) noexcept {
    for (const std::string_view marker :
         {"password", "passwd", "secret", "token", "private_key", "privatekey", "client_key",
          "authorization", "jwt", "api_key", "apikey"}) {
        if (ifind(name, marker) != std::string_view::npos) {
            return true;
        }
    }
    return iequals(name, "pwd") || iequals(name, "pass");
}

}  // namespace molt
