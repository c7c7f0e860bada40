#pragma once
// Certificates made in-test with OpenSSL (P-256 keys), and a temporary directory for files:
// shared by the fetch unit tests of the HTTPS client and the webhook TLS checks.

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace molt::test_certs {

template <typename T, void (*Free)(T*)>
struct deleter {
    void operator()(T* p) const noexcept { Free(p); }
};
using x509_ptr = std::unique_ptr<X509, deleter<X509, X509_free>>;
using key_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY, EVP_PKEY_free>>;
using bio_ptr = std::unique_ptr<BIO, deleter<BIO, BIO_free_all>>;

inline void require(bool ok, const char* what) {
    if (!ok) {
        throw std::runtime_error(std::string("test certificate: ") + what);
    }
}

struct cert_spec {
    std::string cn = "test";
    std::string sans{};  ///< e.g. "DNS:localhost,IP:127.0.0.1"; empty: no subjectAltName
    bool ca = false;
    std::string eku{};             ///< "serverAuth", "clientAuth", or empty (no extendedKeyUsage)
    long not_before = -3600;       ///< seconds from now
    long not_after = 86400;        ///< seconds from now
    std::string not_before_abs{};  ///< "YYYYMMDDHHMMSSZ": overrides not_before
    std::string not_after_abs{};   ///< "YYYYMMDDHHMMSSZ": overrides not_after
};

struct issued {
    x509_ptr cert;
    key_ptr key;
    std::string cert_pem;
    std::string key_pem;
};

inline std::string bio_text(BIO* b) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    return {data, static_cast<size_t>(n)};
}

inline std::string to_pem(X509* cert) {
    bio_ptr out(BIO_new(BIO_s_mem()));
    require(PEM_write_bio_X509(out.get(), cert) == 1, "write certificate");
    return bio_text(out.get());
}

inline std::string to_pem(EVP_PKEY* key) {
    bio_ptr out(BIO_new(BIO_s_mem()));
    require(PEM_write_bio_PrivateKey(out.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
            "write key");
    return bio_text(out.get());
}

inline void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    require(ext != nullptr, "extension");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

/// A certificate for `spec`, signed by `issuer` (self-signed without one).
inline issued make_cert(const cert_spec& spec, const issued* issuer = nullptr) {
    issued out;
    out.key.reset(EVP_EC_gen("P-256"));
    require(out.key != nullptr, "key");
    out.cert.reset(X509_new());
    X509* cert = out.cert.get();
    unsigned char serial_bytes[16];
    RAND_bytes(serial_bytes, sizeof serial_bytes);
    serial_bytes[0] &= 0x7F;
    std::unique_ptr<BIGNUM, deleter<BIGNUM, BN_free>> serial(
        BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr));
    X509_set_version(cert, 2);
    BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert));
    if (spec.not_before_abs.empty()) {
        X509_gmtime_adj(X509_getm_notBefore(cert), spec.not_before);
    } else {
        require(ASN1_TIME_set_string(X509_getm_notBefore(cert), spec.not_before_abs.c_str()) == 1,
                "notBefore");
    }
    if (spec.not_after_abs.empty()) {
        X509_gmtime_adj(X509_getm_notAfter(cert), spec.not_after);
    } else {
        require(ASN1_TIME_set_string(X509_getm_notAfter(cert), spec.not_after_abs.c_str()) == 1,
                "notAfter");
    }
    X509_set_pubkey(cert, out.key.get());
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1, 0);
    X509* issuer_cert = issuer != nullptr ? issuer->cert.get() : cert;
    X509_set_issuer_name(cert, X509_get_subject_name(issuer_cert));
    add_ext(cert, issuer_cert, NID_basic_constraints, spec.ca ? "critical,CA:TRUE" : "CA:FALSE");
    add_ext(cert, issuer_cert, NID_subject_key_identifier, "hash");
    if (spec.ca) {
        add_ext(cert, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(cert, issuer_cert, NID_key_usage, "critical,digitalSignature");
    }
    if (!spec.sans.empty()) {
        add_ext(cert, issuer_cert, NID_subject_alt_name, spec.sans);
    }
    if (!spec.eku.empty()) {
        add_ext(cert, issuer_cert, NID_ext_key_usage, spec.eku);
    }
    EVP_PKEY* signer = issuer != nullptr ? issuer->key.get() : out.key.get();
    require(X509_sign(cert, signer, EVP_sha256()) != 0, "sign");
    out.cert_pem = to_pem(cert);
    out.key_pem = to_pem(out.key.get());
    return out;
}

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class temp_dir {
public:
    temp_dir() {
        const char* base = std::getenv("TMPDIR");
        std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/molt-fetch-XXXXXX";
        require(::mkdtemp(pattern.data()) != nullptr, "mkdtemp");
        path_ = pattern;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ignored;  // best effort: a leftover temp dir is not a test failure
        std::filesystem::remove_all(path_, ignored);
    }

    /// Writes `text` to `name` in the directory; returns the full path.
    std::string write(const std::string& name, const std::string& text) const {
        const std::string file = (path_ / name).string();
        std::ofstream out(file, std::ios::binary);
        out << text;
        require(static_cast<bool>(out), "write file");
        return file;
    }

private:
    std::filesystem::path path_;
};

}  // namespace molt::test_certs
