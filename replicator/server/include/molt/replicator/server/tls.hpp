#pragma once
// TLS material for the HTTPS server: a certificate chain and its private key in PEM, from files
// or generated (--tlsSelfSigned: an EC P-256 key and a certificate for localhost, 127.0.0.1 and
// ::1, valid for one year). Errors name the file and the problem, never key material.

#include <chrono>
#include <string>
#include <string_view>

#include "molt/common/result.hpp"

namespace molt::replicator {

struct tls_material {
    std::string certificate_pem;  ///< the chain, leaf first
    std::string private_key_pem;  ///< secret: never logged
    std::string client_ca_file;   ///< when set, client certificates are verified against it
};

[[nodiscard]] result<tls_material> load_tls_material(const std::string& certificate_file,
                                                     const std::string& private_key_file);

[[nodiscard]] result<tls_material> generate_self_signed();

/// When the first (leaf) certificate of a PEM chain is valid: notBefore to notAfter.
struct certificate_validity {
    std::chrono::system_clock::time_point not_before;
    std::chrono::system_clock::time_point not_after;
};
[[nodiscard]] result<certificate_validity> validity_of(std::string_view certificate_pem);

}  // namespace molt::replicator
