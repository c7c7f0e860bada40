#pragma once
// JSON Web Tokens for the webhook, as cockroachdb/replicator issues and checks them
// (replicator.md §5). Token parsing and signatures are libjwt's (over OpenSSL); this file decides
// what a verified token allows.
//
// A token is accepted when:
//   - it is signed with ES256/384/512 or RS256/384/512 by one of the active public keys
//     (HMAC and "none" are refused, whatever key would match);
//   - it carries a `jti` that is not revoked;
//   - `exp` (when present) is in the future and `nbf` (when present) in the past;
//   - its claim "https://github.com/cockroachdb/replicator" (or the legacy
//     "https://github.com/cockroachdb/cdc-sink") is {"schemas": [[part, ...], ...]}.
// It then allows writes to a schema one of those lists matches: as many parts as the schema
// has, each equal ignoring ASCII case, or "*".
//
// Failures are errc::unauthenticated (401: missing, malformed, badly signed, expired, revoked)
// or errc::forbidden (403: a good token that does not allow the schema). Messages never hold the
// token.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "molt/common/ident.hpp"
#include "molt/common/result.hpp"

namespace molt::replicator::jwt {

/// The claim namespaces, current and legacy.
inline constexpr std::string_view claim_namespace = "https://github.com/cockroachdb/replicator";
inline constexpr std::string_view legacy_claim_namespace =
    "https://github.com/cockroachdb/cdc-sink";

/// Schemas a token may write: each a list of name parts, "*" matching any one part.
using schema_list = std::vector<std::vector<std::string>>;

/// An active row of <stagingSchema>.jwt_public_keys.
struct public_key {
    std::string id;   ///< the row's id, for log lines
    std::string pem;  ///< PKIX "PUBLIC KEY" PEM
};

/// What the key tables hold.
struct key_set {
    std::vector<public_key> keys;
    std::vector<std::string> revoked_ids;  ///< jwt_revoked_ids
};

/// The token a request carries: "Authorization: Bearer <token>" (scheme case-insensitive), else
/// the `access_token` query parameter of `target` (percent-decoded). Empty when there is none.
[[nodiscard]] std::string token_of(std::string_view authorization, std::string_view target);

/// `target` without its access_token query parameter: what may be logged.
[[nodiscard]] std::string without_access_token(std::string_view target);

/// Whether `allowed` lets a token write to `schema`.
[[nodiscard]] bool allows(const schema_list& allowed, const qualified_name& schema);

/// Checks tokens against the current keys. Thread-safe; replace() swaps keys while check() runs.
class verifier {
public:
    verifier();
    ~verifier();
    verifier(const verifier&) = delete;
    verifier& operator=(const verifier&) = delete;

    /// Installs keys and revocations. Returns one line per key that cannot verify tokens (not
    /// a PEM public key, or neither RSA nor EC P-256/384/521): those are skipped.
    std::vector<std::string> replace(const key_set& keys);

    /// Number of usable keys installed.
    [[nodiscard]] size_t key_count() const;

    /// `schema` null: authenticate only.
    [[nodiscard]] result<void> check(std::string_view token, const qualified_name* schema,
                                     std::chrono::system_clock::time_point now) const;

private:
    struct keys;
    struct verified;
    [[nodiscard]] result<std::shared_ptr<const verified>> verify(
        std::string_view token, const std::shared_ptr<const keys>& current) const;

    mutable std::mutex mu_;
    std::shared_ptr<const keys> keys_;
    /// Tokens whose signature and claims were checked against keys_ (cleared by replace()):
    /// CockroachDB sends the same token with every request.
    mutable std::unordered_map<std::string, std::shared_ptr<const verified>> cache_;
};

/// A token made by make_token().
struct minted {
    std::string token;
    std::string algorithm;       ///< "ES256", "RS256", ...
    std::string public_key_pem;  ///< for jwt_public_keys
    std::string id;              ///< the jti
};

/// Parses an --allow value: "db.schema" (PostgreSQL, CockroachDB), "db" (MySQL), parts bare or
/// double-quoted, "*" for any.
[[nodiscard]] result<std::vector<std::string>> parse_allowed(std::string_view text);

/// The claims of a token allowing `schemas`, with a fresh random jti (a UUID): compact JSON.
[[nodiscard]] std::string claims_json(const schema_list& schemas, std::string_view id);

/// A random version 4 UUID, as text.
[[nodiscard]] std::string random_id();

/// Signs a token allowing `schemas` with a PEM private key (PKCS#8, SEC1 EC or PKCS#1 RSA):
/// ES256/384/512 for EC keys by curve, RS256 for RSA keys.
[[nodiscard]] result<minted> make_token(std::string_view private_key_pem,
                                        const schema_list& schemas);

}  // namespace molt::replicator::jwt
