#pragma once
// Owning pointers for the OpenSSL objects fetch/ uses (private to fetch/); openssl_deleter
// also serves other C "free" functions.

#include <memory>

#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace molt::fetch {

template <typename T, void (*Free)(T*)>
struct openssl_deleter {
    void operator()(T* p) const noexcept { Free(p); }
};
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, openssl_deleter<SSL_CTX, SSL_CTX_free>>;
using ssl_ptr = std::unique_ptr<SSL, openssl_deleter<SSL, SSL_free>>;
using x509_ptr = std::unique_ptr<X509, openssl_deleter<X509, X509_free>>;
using evp_key_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter<EVP_PKEY, EVP_PKEY_free>>;
using bio_ptr = std::unique_ptr<BIO, openssl_deleter<BIO, BIO_free_all>>;

}  // namespace molt::fetch
