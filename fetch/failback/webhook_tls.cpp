#include "molt/fetch/webhook_tls.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string_view>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "net/openssl_ptr.hpp"

namespace molt::fetch {
namespace {

template <typename T, void (*Free)(T*)>
using deleter = openssl_deleter<T, Free>;
using store_ptr = std::unique_ptr<X509_STORE, deleter<X509_STORE, X509_STORE_free>>;
using store_ctx_ptr = std::unique_ptr<X509_STORE_CTX, deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
void free_x509_stack(STACK_OF(X509) * s) {
    sk_X509_free(s);  // a macro: the deleter needs a function
}
using stack_ptr = std::unique_ptr<STACK_OF(X509), deleter<STACK_OF(X509), free_x509_stack>>;
using names_ptr = std::unique_ptr<GENERAL_NAMES, deleter<GENERAL_NAMES, GENERAL_NAMES_free>>;
using certs = std::vector<x509_ptr>;

constexpr std::string_view unknown_authority = "x509: certificate signed by unknown authority";

/// Never asks for a passphrase (OpenSSL's default would prompt on the terminal): an encrypted
/// key is reported as unusable instead.
int no_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
    return 0;
}

bio_ptr memory_bio(std::string_view pem) {
    return bio_ptr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

/// "2026-01-01 00:00:00 UTC"
std::string utc_text(const ASN1_TIME* t) {
    std::tm tm{};
    if (ASN1_TIME_to_tm(t, &tm) != 1) {
        return "an unreadable date";
    }
    return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC", tm.tm_year + 1900, tm.tm_mon + 1,
                       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string common_name(X509* cert) {
    char buf[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf) <
        0) {
        return {};
    }
    return buf;
}

/// The DNS names and IP addresses of subjectAltName, as text.
std::vector<std::string> alt_names(X509* cert) {
    std::vector<std::string> out;
    names_ptr names(static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
        const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
        if (name->type == GEN_DNS) {
            const ASN1_STRING* s = name->d.dNSName;
            out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                             static_cast<size_t>(ASN1_STRING_length(s)));
        } else if (name->type == GEN_IPADD) {
            const ASN1_OCTET_STRING* ip = name->d.iPAddress;
            const int len = ASN1_STRING_length(ip);
            char text[INET6_ADDRSTRLEN] = {};
            if ((len == 4 || len == 16) &&
                inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(ip), text,
                          sizeof text) != nullptr) {
                out.emplace_back(text);
            }
        }
    }
    return out;
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) {
        out += out.empty() ? "" : ", ";
        out += item;
    }
    return out;
}

bool is_ip_literal(const std::string& host) {
    unsigned char buf[sizeof(in6_addr)];
    return inet_pton(AF_INET, host.c_str(), buf) == 1 ||
           inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

/// Collects the problems of one check_webhook_tls call.
class checker {
public:
    checker(const webhook_tls_material& m, std::time_t now) : m_(m), now_(now) {}

    std::vector<std::string> run();

private:
    void problem(std::string text) { problems_.push_back(std::move(text)); }
    std::optional<std::string> read(const std::string& path, const std::string& source);
    certs parse_certs(std::string_view pem, const std::string& source, std::string_view hint);
    evp_key_ptr parse_key(std::string_view pem, const std::string& source, std::string_view hint);
    void check_validity(const certs& chain, const std::string& source);
    void check_host(X509* leaf, const std::string& source);
    /// Empty when `chain` (leaf first) verifies against `roots`; else OpenSSL's reason and code.
    std::optional<std::pair<int, std::string>> verify(const certs& chain, const certs& roots,
                                                      int purpose, bool partial_chain);
    void check_server_chain(const certs& chain, const certs& ca, const std::string& source);
    void check_client_chain(const certs& chain);

    const webhook_tls_material& m_;
    std::time_t now_;
    std::vector<std::string> problems_;
};

std::optional<std::string> checker::read(const std::string& path, const std::string& source) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        problem(fmt::format("{} cannot be read: {}", source, std::strerror(errno)));
        return std::nullopt;
    }
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

certs checker::parse_certs(std::string_view pem, const std::string& source, std::string_view hint) {
    certs out;
    bio_ptr bio = memory_bio(pem);
    ERR_clear_error();
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr)) {
        out.emplace_back(cert);
    }
    const unsigned long err = ERR_peek_last_error();
    ERR_clear_error();
    const bool clean_end =
        ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
    if (out.empty()) {
        problem(fmt::format("{} holds no PEM certificate{}", source, hint));
    } else if (err != 0 && !clean_end) {
        problem(
            fmt::format("{} holds a malformed PEM block after certificate {}", source, out.size()));
        out.clear();
    }
    return out;
}

evp_key_ptr checker::parse_key(std::string_view pem, const std::string& source,
                               std::string_view hint) {
    bio_ptr bio = memory_bio(pem);
    evp_key_ptr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
    ERR_clear_error();
    if (!key) {
        problem(fmt::format("{} holds no unencrypted PEM private key{}", source, hint));
    }
    return key;
}

void checker::check_validity(const certs& chain, const std::string& source) {
    for (size_t i = 0; i < chain.size(); ++i) {
        X509* cert = chain[i].get();
        const std::string which = chain.size() == 1
                                      ? source
                                      : fmt::format("{} (certificate {} of {}, CN \"{}\")", source,
                                                    i + 1, chain.size(), common_name(cert));
        if (X509_cmp_time(X509_get0_notAfter(cert), &now_) < 0) {
            problem(fmt::format("{} expired on {}", which, utc_text(X509_get0_notAfter(cert))));
        } else if (X509_cmp_time(X509_get0_notBefore(cert), &now_) > 0) {
            problem(fmt::format("{} is not valid before {} (not yet valid)", which,
                                utc_text(X509_get0_notBefore(cert))));
        }
    }
}

void checker::check_host(X509* leaf, const std::string& source) {
    std::string host = m_.webhook_host;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    if (host.empty()) {
        return;
    }
    // Go ignores the Common Name; so does this check.
    const unsigned flags =
        X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS;
    const bool ok = is_ip_literal(host)
                        ? X509_check_ip_asc(leaf, host.c_str(), flags) == 1
                        : X509_check_host(leaf, host.c_str(), host.size(), flags, nullptr) == 1;
    ERR_clear_error();
    if (ok) {
        return;
    }
    const std::vector<std::string> names = alt_names(leaf);
    const std::string cn = common_name(leaf);
    const std::string named =
        !names.empty() ? "it names: " + join(names)
        : cn.empty()   ? std::string("it has no subjectAltName")
                       : fmt::format(
                             "it has no subjectAltName, and CockroachDB ignores its Common "
                               "Name \"{}\"",
                             cn);
    problem(
        fmt::format("{} is not valid for host \"{}\" (the changefeed connects to the \"host\" "
                    "of --changefeeds-path); {}",
                    source, host, named));
}

std::optional<std::pair<int, std::string>> checker::verify(const certs& chain, const certs& roots,
                                                           int purpose, bool partial_chain) {
    store_ptr store(X509_STORE_new());
    for (const auto& root : roots) {
        X509_STORE_add_cert(store.get(), root.get());
    }
    stack_ptr untrusted(sk_X509_new_null());
    for (size_t i = 1; i < chain.size(); ++i) {
        sk_X509_push(untrusted.get(), chain[i].get());  // borrowed: the stack frees no certs
    }
    store_ctx_ptr ctx(X509_STORE_CTX_new());
    if (!store || !untrusted || !ctx ||
        X509_STORE_CTX_init(ctx.get(), store.get(), chain.front().get(), untrusted.get()) != 1) {
        ERR_clear_error();
        return std::pair{X509_V_ERR_UNSPECIFIED, std::string("cannot set up the verification")};
    }
    X509_STORE_CTX_set_purpose(ctx.get(), purpose);
    // Validity is reported per certificate with its date; here only the signatures count.
    unsigned long flags = X509_V_FLAG_NO_CHECK_TIME;
    if (partial_chain) {
        flags |= X509_V_FLAG_PARTIAL_CHAIN;
    }
    X509_STORE_CTX_set_flags(ctx.get(), flags);
    const int rc = X509_verify_cert(ctx.get());
    const int code = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    if (rc == 1) {
        return std::nullopt;
    }
    return std::pair{code, std::string(X509_verify_cert_error_string(code))};
}

bool is_unknown_authority(int code) {
    switch (code) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE: return true;
    default: return false;
    }
}

void checker::check_server_chain(const certs& chain, const certs& ca, const std::string& source) {
    // Go accepts any certificate of its root pool as the anchor: partial chains allowed.
    const auto failure = verify(chain, ca, X509_PURPOSE_SSL_SERVER, true);
    if (!failure) {
        return;
    }
    if (is_unknown_authority(failure->first)) {
        problem(
            fmt::format("{} is not signed by the ca_cert of --changefeeds-path (CockroachDB "
                        "would refuse it: {})",
                        source, unknown_authority));
    } else {
        problem(
            fmt::format("{} does not chain to the ca_cert of --changefeeds-path: {} "
                        "(CockroachDB would refuse it)",
                        source, failure->second));
    }
}

void checker::check_client_chain(const certs& chain) {
    const std::string ca_source = !m_.client_ca_source.empty()
                                      ? m_.client_ca_source
                                      : fmt::format("--tlsClientCA {}", m_.client_ca_file);
    const auto text = read(m_.client_ca_file, ca_source);
    if (!text) {
        return;
    }
    const certs ca = parse_certs(*text, ca_source, "");
    if (ca.empty()) {
        return;
    }
    check_validity(ca, ca_source);
    // As the replicator verifies it: OpenSSL's defaults for a TLS server checking a client.
    const auto failure = verify(chain, ca, X509_PURPOSE_SSL_CLIENT, false);
    if (!failure) {
        return;
    }
    if (is_unknown_authority(failure->first)) {
        problem(
            fmt::format("sink_query_parameters client_cert is not signed by {} (the replicator "
                        "would refuse the changefeed's connection: {})",
                        ca_source, failure->second));
    } else {
        problem(
            fmt::format("sink_query_parameters client_cert does not chain to {}: {} (the "
                        "replicator would refuse the changefeed's connection)",
                        ca_source, failure->second));
    }
}

std::vector<std::string> checker::run() {
    constexpr std::string_view b64_hint =
        " (expected the base64 of a PEM file, URL-encoded in sink_query_parameters)";
    // The changefeed's side.
    certs ca;
    if (!m_.ca_cert_pem.empty()) {
        ca = parse_certs(m_.ca_cert_pem, "sink_query_parameters ca_cert", b64_hint);
        check_validity(ca, "sink_query_parameters ca_cert");
    }
    const bool has_cert = !m_.client_cert_pem.empty();
    const bool has_key = !m_.client_key_pem.empty();
    if (has_cert != has_key) {
        problem(has_cert ? "sink_query_parameters has client_cert but no client_key (CockroachDB "
                           "needs both)"
                         : "sink_query_parameters has client_key but no client_cert (CockroachDB "
                           "needs both)");
    }
    if (has_cert) {
        const certs client =
            parse_certs(m_.client_cert_pem, "sink_query_parameters client_cert", b64_hint);
        evp_key_ptr key;
        if (has_key) {
            key = parse_key(m_.client_key_pem, "sink_query_parameters client_key", b64_hint);
        }
        if (!client.empty()) {
            if (key && X509_check_private_key(client.front().get(), key.get()) != 1) {
                problem("sink_query_parameters client_key does not match client_cert");
            }
            ERR_clear_error();
            check_validity(client, "sink_query_parameters client_cert");
            if (!m_.client_ca_file.empty()) {
                check_client_chain(client);
            }
        }
    } else if (has_key) {
        (void)parse_key(m_.client_key_pem, "sink_query_parameters client_key", b64_hint);
    }

    // The replicator's side.
    if (m_.self_signed && !m_.insecure_tls_skip_verify) {
        problem(fmt::format(
            "--tlsSelfSigned makes the replicator generate its own certificate at start, which {}: "
            "CockroachDB would refuse it ({}); add insecure_tls_skip_verify=true to the "
            "sink_query_parameters of --changefeeds-path, or give the replicator --tlsCertificate "
            "and --tlsPrivateKey{}",
            m_.ca_cert_pem.empty() ? "no CA has signed"
                                   : "the ca_cert of --changefeeds-path cannot have signed",
            unknown_authority, m_.ca_cert_pem.empty() ? "" : " signed by ca_cert"));
    }
    if (!m_.server_cert_file.empty()) {
        const std::string source = "--tlsCertificate " + m_.server_cert_file;
        certs server;
        if (auto text = read(m_.server_cert_file, source)) {
            server = parse_certs(*text, source, "");
        }
        if (!server.empty()) {
            check_validity(server, source);
            if (!m_.insecure_tls_skip_verify) {
                check_host(server.front().get(), source);
                if (!ca.empty()) {
                    check_server_chain(server, ca, source);
                }
            }
        }
        if (!m_.server_key_file.empty()) {
            const std::string key_source = "--tlsPrivateKey " + m_.server_key_file;
            evp_key_ptr key;
            if (auto text = read(m_.server_key_file, key_source)) {
                key = parse_key(*text, key_source, "");
            }
            if (key && !server.empty() &&
                X509_check_private_key(server.front().get(), key.get()) != 1) {
                problem(fmt::format("{} does not match {}", key_source, source));
            }
            ERR_clear_error();
        }
    }
    return std::move(problems_);
}

}  // namespace

std::vector<std::string> check_webhook_tls(const webhook_tls_material& material,
                                           std::chrono::system_clock::time_point now) {
    return checker(material, std::chrono::system_clock::to_time_t(now)).run();
}

}  // namespace molt::fetch
