#include "molt/replicator/server/tls.hpp"

#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace molt::replicator {
namespace {

template <typename T, void (*Free)(T*)>
struct deleter {
    void operator()(T* p) const noexcept { Free(p); }
};
using evp_key = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY, EVP_PKEY_free>>;
using x509 = std::unique_ptr<X509, deleter<X509, X509_free>>;
using bio = std::unique_ptr<BIO, deleter<BIO, BIO_free_all>>;

std::string openssl_error() {
    const unsigned long code = ERR_get_error();
    if (code == 0) {
        return "unknown OpenSSL error";
    }
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

error tls_error(std::string what) {
    return {errc::tls_error, std::move(what)};
}

std::string bio_text(BIO* b) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    return std::string(data, static_cast<size_t>(n));
}

result<std::string> read_file(const std::string& path, std::string_view flag) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return error{errc::io_error, fmt::format("{}: cannot read \"{}\"", flag, path)};
    }
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// A time_t as a system_clock time point, clamped to what it can hold (its nanoseconds end in
// 2262; RFC 5280's "no expiry" date is 9999-12-31).
std::chrono::system_clock::time_point clamped(time_t t) {
    using clock = std::chrono::system_clock;
    constexpr auto limit =
        std::chrono::duration_cast<std::chrono::seconds>(clock::duration::max()).count();
    if (t >= limit) {
        return clock::time_point::max();
    }
    if (t <= -limit) {
        return clock::time_point::min();
    }
    return clock::from_time_t(t);
}

// Never prompts for a passphrase (a reload must not wait on a terminal): encrypted keys fail.
int no_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
    return 0;
}

}  // namespace

result<certificate_validity> validity_of(std::string_view certificate_pem) {
    bio in(BIO_new_mem_buf(certificate_pem.data(), static_cast<int>(certificate_pem.size())));
    x509 leaf(in ? PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr) : nullptr);
    struct tm from {};
    struct tm until {};
    if (!leaf || ASN1_TIME_to_tm(X509_get0_notBefore(leaf.get()), &from) != 1 ||
        ASN1_TIME_to_tm(X509_get0_notAfter(leaf.get()), &until) != 1) {
        ERR_clear_error();
        return tls_error("the certificate's validity dates cannot be read");
    }
    return certificate_validity{clamped(timegm(&from)), clamped(timegm(&until))};
}

result<tls_material> load_tls_material(const std::string& certificate_file,
                                       const std::string& private_key_file) {
    auto cert = read_file(certificate_file, "--tlsCertificate");
    if (!cert) {
        return std::move(cert).error();
    }
    auto key = read_file(private_key_file, "--tlsPrivateKey");
    if (!key) {
        return std::move(key).error();
    }
    // Parse both here, so a bad file is reported by name before the server starts.
    bio cert_bio(BIO_new_mem_buf(cert->data(), static_cast<int>(cert->size())));
    x509 leaf(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
    if (!leaf) {
        ERR_clear_error();
        return tls_error(
            fmt::format("--tlsCertificate: \"{}\" holds no PEM certificate", certificate_file));
    }
    bio key_bio(BIO_new_mem_buf(key->data(), static_cast<int>(key->size())));
    evp_key pkey(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_passphrase, nullptr));
    if (!pkey) {
        ERR_clear_error();
        return tls_error(fmt::format("--tlsPrivateKey: \"{}\" holds no unencrypted PEM private key",
                                     private_key_file));
    }
    if (X509_check_private_key(leaf.get(), pkey.get()) != 1) {
        ERR_clear_error();
        return tls_error(
            fmt::format("--tlsPrivateKey \"{}\" does not match --tlsCertificate \"{}\"",
                        private_key_file, certificate_file));
    }
    return tls_material{std::move(*cert), std::move(*key), {}};
}

result<tls_material> generate_self_signed() {
    evp_key key(EVP_EC_gen("P-256"));
    if (!key) {
        return tls_error("cannot generate a P-256 key: " + openssl_error());
    }
    x509 cert(X509_new());
    if (!cert) {
        return tls_error("cannot create a certificate: " + openssl_error());
    }
    unsigned char serial_bytes[16];
    RAND_bytes(serial_bytes, sizeof serial_bytes);
    serial_bytes[0] &= 0x7F;  // a positive serial number
    std::unique_ptr<BIGNUM, deleter<BIGNUM, BN_free>> serial(
        BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr));
    X509_set_version(cert.get(), 2);
    BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()));
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("replicator"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    for (const auto& [nid, value] :
         {std::pair<int, const char*>{NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"},
          {NID_basic_constraints, "critical,CA:FALSE"},
          {NID_ext_key_usage, "serverAuth"}}) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
        if (ext == nullptr) {
            return tls_error("cannot build a certificate extension: " + openssl_error());
        }
        X509_add_ext(cert.get(), ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
        return tls_error("cannot sign the self-signed certificate: " + openssl_error());
    }
    bio cert_out(BIO_new(BIO_s_mem()));
    bio key_out(BIO_new(BIO_s_mem()));
    if (PEM_write_bio_X509(cert_out.get(), cert.get()) != 1 ||
        PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
            1) {
        return tls_error("cannot write the self-signed certificate: " + openssl_error());
    }
    return tls_material{bio_text(cert_out.get()), bio_text(key_out.get()), {}};
}

}  // namespace molt::replicator
