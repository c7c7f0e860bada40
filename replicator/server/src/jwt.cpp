#include "molt/replicator/server/jwt.hpp"

#include <jwt.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <unordered_set>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "molt/common/percent.hpp"

namespace molt::replicator::jwt {
namespace {

// A token longer than this is refused unread (CockroachDB's are a few hundred bytes).
constexpr size_t max_token_bytes = 16 * 1024;
// RSA keys shorter than this are refused (RFC 7518 §3.3).
constexpr int min_rsa_bits = 2048;

error unauthenticated(std::string_view why) {
    return error{errc::unauthenticated, fmt::format("missing or invalid access token: {}", why)};
}

struct jwt_deleter {
    void operator()(jwt_t* j) const noexcept { jwt_free(j); }
};
using jwt_ptr = std::unique_ptr<jwt_t, jwt_deleter>;

struct bio_deleter {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;

struct pkey_deleter {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;

struct malloc_deleter {
    void operator()(char* p) const noexcept { std::free(p); }  // NOLINT: libjwt's strings
};
using c_string = std::unique_ptr<char, malloc_deleter>;

// The algorithms accepted, exactly as RFC 7518 spells them (libjwt's jwt_str_alg ignores case).
constexpr std::string_view accepted_algorithms[] = {"ES256", "ES384", "ES512",
                                                    "RS256", "RS384", "RS512"};

bool accepted_algorithm(std::string_view name) {
    return std::find(std::begin(accepted_algorithms), std::end(accepted_algorithms), name) !=
           std::end(accepted_algorithms);
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    return size > 0 ? std::string(data, static_cast<size_t>(size)) : std::string();
}

// The curve of an EC key as a JWT algorithm; empty for other curves.
std::string ec_algorithm(EVP_PKEY* key) {
    std::array<char, 64> group{};
    size_t length = 0;
    if (EVP_PKEY_get_group_name(key, group.data(), group.size(), &length) != 1) {
        return {};
    }
    const std::string_view name(group.data(), length);
    if (name == "prime256v1" || name == "P-256") {
        return "ES256";
    }
    if (name == "secp384r1" || name == "P-384") {
        return "ES384";
    }
    if (name == "secp521r1" || name == "P-521") {
        return "ES512";
    }
    return {};
}

// Refuses to prompt for a passphrase: keys must be unencrypted files.
int no_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
    return 0;
}

// Parses a JSON NumericDate; absent is fine, anything but a number is not.
result<std::optional<double>> numeric_date(const rapidjson::Value& claims, const char* name) {
    const auto it = claims.FindMember(name);
    if (it == claims.MemberEnd()) {
        return std::optional<double>{};
    }
    if (!it->value.IsNumber() || !std::isfinite(it->value.GetDouble())) {
        return unauthenticated(fmt::format("\"{}\" is not a number of seconds", name));
    }
    return std::optional<double>{it->value.GetDouble()};
}

result<schema_list> schemas_of(const rapidjson::Value& claims) {
    auto it = claims.FindMember(claim_namespace.data());
    if (it == claims.MemberEnd()) {
        it = claims.FindMember(legacy_claim_namespace.data());
    }
    if (it == claims.MemberEnd()) {
        return unauthenticated(fmt::format(
            "the token has no \"{}\" claim listing the schemas it may write", claim_namespace));
    }
    const rapidjson::Value& claim = it->value;
    const auto listed = claim.IsObject() ? claim.FindMember("schemas") : claim.MemberEnd();
    if (!claim.IsObject() || listed == claim.MemberEnd() || !listed->value.IsArray()) {
        return unauthenticated(
            fmt::format("the \"{}\" claim must be {{\"schemas\": [[\"db\", \"schema\"], ...]}}",
                        it->name.GetString()));
    }
    schema_list out;
    for (const auto& entry : listed->value.GetArray()) {
        if (!entry.IsArray() || entry.Empty()) {
            return unauthenticated("each entry of \"schemas\" must be a list of name parts");
        }
        std::vector<std::string> parts;
        for (const auto& part : entry.GetArray()) {
            if (!part.IsString()) {
                return unauthenticated("each entry of \"schemas\" must be a list of name parts");
            }
            parts.emplace_back(part.GetString(), part.GetStringLength());
        }
        out.push_back(std::move(parts));
    }
    return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Requests

std::string token_of(std::string_view authorization, std::string_view target) {
    constexpr std::string_view scheme = "bearer";
    if (authorization.size() > scheme.size() &&
        ident_equal(authorization.substr(0, scheme.size()), scheme) &&
        (authorization[scheme.size()] == ' ' || authorization[scheme.size()] == '\t')) {
        std::string_view token = authorization.substr(scheme.size());
        while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) {
            token.remove_prefix(1);
        }
        while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) {
            token.remove_suffix(1);
        }
        return std::string(token);
    }
    const size_t query = target.find('?');
    if (query == std::string_view::npos) {
        return {};
    }
    std::string_view rest = target.substr(query + 1);
    while (!rest.empty()) {
        const size_t amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
        constexpr std::string_view key = "access_token=";
        if (pair.rfind(key, 0) == 0) {
            auto value = percent_decode(pair.substr(key.size()), "access_token", true, true);
            return value ? std::move(value).value() : std::string();
        }
    }
    return {};
}

std::string without_access_token(std::string_view target) {
    const size_t query = target.find('?');
    if (query == std::string_view::npos) {
        return std::string(target);
    }
    std::string out(target.substr(0, query));
    std::string_view rest = target.substr(query + 1);
    char separator = '?';
    while (!rest.empty()) {
        const size_t amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
        if (pair.rfind("access_token=", 0) == 0 || pair == "access_token") {
            continue;
        }
        out += separator;
        out += pair;
        separator = '&';
    }
    return out;
}

bool allows(const schema_list& allowed, const qualified_name& schema) {
    for (const auto& parts : allowed) {
        if (parts.size() != schema.parts.size()) {
            continue;
        }
        bool match = true;
        for (size_t i = 0; i < parts.size() && match; ++i) {
            match = parts[i] == "*" || ident_equal(parts[i], schema.parts[i]);
        }
        if (match) {
            return true;
        }
    }
    return false;
}

// ---------------------------------------------------------------------------------------------
// Verifier

struct verifier::keys {
    struct usable_key {
        public_key key;
        std::string kind;  ///< "RS" (any RS*), or the one ES* its curve signs
    };
    std::vector<usable_key> usable;
    std::unordered_set<std::string> revoked;
};

struct verifier::verified {
    std::optional<double> expires;     ///< exp
    std::optional<double> not_before;  ///< nbf
    schema_list schemas;
};

verifier::verifier() : keys_(std::make_shared<const keys>()) {}
verifier::~verifier() = default;

std::vector<std::string> verifier::replace(const key_set& given) {
    auto next = std::make_shared<keys>();
    std::vector<std::string> problems;
    for (const auto& key : given.keys) {
        bio_ptr bio(BIO_new_mem_buf(key.pem.data(), static_cast<int>(key.pem.size())));
        pkey_ptr parsed(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr)
                            : nullptr);
        if (!parsed) {
            problems.push_back(fmt::format(
                "public key {} is not a PEM public key (-----BEGIN PUBLIC KEY-----)", key.id));
            continue;
        }
        const int type = EVP_PKEY_get_base_id(parsed.get());
        std::string kind = type == EVP_PKEY_RSA  ? "RS"
                           : type == EVP_PKEY_EC ? ec_algorithm(parsed.get())
                                                 : std::string();
        if (kind.empty()) {
            problems.push_back(fmt::format(
                "public key {} is neither RSA nor EC on P-256, P-384 or P-521", key.id));
            continue;
        }
        if (kind == "RS" && EVP_PKEY_get_bits(parsed.get()) < min_rsa_bits) {
            problems.push_back(fmt::format("public key {} is an RSA key of {} bits (at least {})",
                                           key.id, EVP_PKEY_get_bits(parsed.get()), min_rsa_bits));
            continue;
        }
        next->usable.push_back({key, std::move(kind)});
    }
    next->revoked.insert(given.revoked_ids.begin(), given.revoked_ids.end());
    std::lock_guard lock(mu_);
    keys_ = std::move(next);
    cache_.clear();
    return problems;
}

size_t verifier::key_count() const {
    std::lock_guard lock(mu_);
    return keys_->usable.size();
}

result<std::shared_ptr<const verifier::verified>> verifier::verify(
    std::string_view token, const std::shared_ptr<const keys>& current) const {
    if (token.size() > max_token_bytes) {
        return unauthenticated("the token is too long");
    }
    const std::string text(token);
    // Unverified first: is it a JWT at all, and does it name an algorithm we take?
    jwt_t* raw = nullptr;
    if (jwt_decode(&raw, text.c_str(), nullptr, 0) != 0 || raw == nullptr) {
        return unauthenticated("the token is not a JWT (header.payload.signature)");
    }
    jwt_ptr unverified(raw);
    const char* alg_name = jwt_get_header(unverified.get(), "alg");
    const std::string alg = alg_name ? alg_name : "";
    if (!accepted_algorithm(alg)) {
        return unauthenticated(fmt::format(
            "algorithm \"{}\" is refused: tokens must be signed with ES256, ES384, ES512, RS256, "
            "RS384 or RS512",
            alg.substr(0, 16)));
    }
    if (current->usable.empty()) {
        return unauthenticated(
            "no public keys are configured (jwt_public_keys holds no active key)");
    }
    // Only keys that fit the algorithm (RFC 7518: ES256 is P-256, and so on).
    const std::string kind = alg.rfind("RS", 0) == 0 ? "RS" : alg;
    jwt_ptr checked;
    bool any_of_kind = false;
    for (const auto& candidate : current->usable) {
        if (candidate.kind != kind) {
            continue;
        }
        any_of_kind = true;
        const std::string& pem = candidate.key.pem;
        raw = nullptr;
        if (jwt_decode(&raw, text.c_str(), reinterpret_cast<const unsigned char*>(pem.data()),
                       static_cast<int>(pem.size())) == 0 &&
            raw != nullptr) {
            checked.reset(raw);
            break;
        }
        jwt_free(raw);
    }
    if (!any_of_kind) {
        return unauthenticated(fmt::format("no active public key can verify {} ({})", alg,
                                           kind == "RS" ? "an RSA key" : "an EC key on its curve"));
    }
    if (!checked) {
        return unauthenticated("the signature matches no active public key");
    }
    const char* verified_alg = jwt_alg_str(jwt_get_alg(checked.get()));
    if (verified_alg == nullptr || !accepted_algorithm(verified_alg)) {
        return unauthenticated("the token's algorithm is refused");
    }
    c_string json(jwt_get_grants_json(checked.get(), nullptr));
    rapidjson::Document claims;
    if (!json || claims.Parse(json.get()).HasParseError() || !claims.IsObject()) {
        return unauthenticated("the token's claims are not a JSON object");
    }
    const auto jti = claims.FindMember("jti");
    if (jti == claims.MemberEnd() || !jti->value.IsString() || jti->value.GetStringLength() == 0) {
        return unauthenticated("the token has no \"jti\" (token id)");
    }
    if (current->revoked.count(std::string(jti->value.GetString(), jti->value.GetStringLength()))) {
        return unauthenticated("the token has been revoked (jwt_revoked_ids)");
    }
    auto out = std::make_shared<verified>();
    auto expires = numeric_date(claims, "exp");
    auto not_before = numeric_date(claims, "nbf");
    auto schemas = schemas_of(claims);
    if (!expires || !not_before || !schemas) {
        return !expires ? expires.error() : !not_before ? not_before.error() : schemas.error();
    }
    out->expires = *expires;
    out->not_before = *not_before;
    out->schemas = std::move(schemas).value();
    return std::shared_ptr<const verified>(std::move(out));
}

result<void> verifier::check(std::string_view token, const qualified_name* schema,
                             std::chrono::system_clock::time_point now) const {
    if (token.empty()) {
        return unauthenticated(
            "none was sent (Authorization: Bearer <token>, from the changefeed's "
            "webhook_auth_header)");
    }
    std::shared_ptr<const keys> current;
    std::shared_ptr<const verified> found;
    {
        std::lock_guard lock(mu_);
        current = keys_;
        if (const auto it = cache_.find(std::string(token)); it != cache_.end()) {
            found = it->second;
        }
    }
    if (!found) {
        auto fresh = verify(token, current);
        if (!fresh) {
            return fresh.error();
        }
        found = *fresh;
        std::lock_guard lock(mu_);
        if (keys_ == current) {
            constexpr size_t max_cached = 1024;
            if (cache_.size() >= max_cached) {
                cache_.clear();
            }
            cache_.emplace(std::string(token), found);
        }
    }
    const double seconds = std::chrono::duration<double>(now.time_since_epoch()).count();
    if (found->expires && seconds >= *found->expires) {
        return unauthenticated("the token has expired");
    }
    if (found->not_before && seconds < *found->not_before) {
        return unauthenticated("the token is not valid yet (nbf)");
    }
    if (schema != nullptr && !allows(found->schemas, *schema)) {
        return error{errc::forbidden, fmt::format("the access token does not allow writing to {}",
                                                  schema->to_string())};
    }
    return {};
}

// ---------------------------------------------------------------------------------------------
// make-jwt

result<std::vector<std::string>> parse_allowed(std::string_view text) {
    auto name = parse_qualified_name(text, dialect::postgres, 1, 2);
    if (!name) {
        return error{errc::invalid_argument,
                     fmt::format("--allow {}: expected db.schema (or db for MySQL), each part "
                                 "a name or *: {}",
                                 text, name.error().message())};
    }
    return std::move(name->parts);
}

std::string claims_json(const schema_list& schemas, std::string_view id) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartObject();
    w.Key(claim_namespace.data(), static_cast<rapidjson::SizeType>(claim_namespace.size()));
    w.StartObject();
    w.Key("schemas");
    w.StartArray();
    for (const auto& parts : schemas) {
        w.StartArray();
        for (const auto& part : parts) {
            w.String(part.data(), static_cast<rapidjson::SizeType>(part.size()));
        }
        w.EndArray();
    }
    w.EndArray();
    w.EndObject();
    w.Key("iss");
    w.String("replicator");
    w.Key("jti");
    w.String(id.data(), static_cast<rapidjson::SizeType>(id.size()));
    w.EndObject();
    return {buffer.GetString(), buffer.GetSize()};
}

std::string random_id() {
    std::array<unsigned char, 16> b{};
    if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) {
        std::abort();  // no randomness: nothing safe to do
    }
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
    return fmt::format(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-"
        "{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15]);
}

result<minted> make_token(std::string_view private_key_pem, const schema_list& schemas) {
    bio_ptr in(BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size())));
    pkey_ptr key(in ? PEM_read_bio_PrivateKey(in.get(), nullptr, no_passphrase, nullptr) : nullptr);
    if (!key) {
        return error{errc::invalid_argument,
                     "not an unencrypted PEM private key (PKCS#8, EC or RSA; for an encrypted "
                     "one: openssl pkey -in key.pem -out plain.pem)"};
    }
    minted out;
    jwt_alg_t alg = JWT_ALG_INVAL;
    switch (EVP_PKEY_get_base_id(key.get())) {
    case EVP_PKEY_RSA:
        if (const int bits = EVP_PKEY_get_bits(key.get()); bits < min_rsa_bits) {
            // The verifier would skip its public key: a token nobody accepts helps no one.
            return error{errc::invalid_argument,
                         fmt::format("the key is an RSA key of {} bits; the replicator verifies "
                                     "RSA keys of at least {} bits (openssl genrsa -out key.pem "
                                     "{})",
                                     bits, min_rsa_bits, min_rsa_bits)};
        }
        out.algorithm = "RS256";
        alg = JWT_ALG_RS256;
        break;
    case EVP_PKEY_EC:
        out.algorithm = ec_algorithm(key.get());
        alg = jwt_str_alg(out.algorithm.c_str());
        break;
    default: break;
    }
    if (out.algorithm.empty()) {
        return error{errc::invalid_argument,
                     "the key must be RSA or EC on P-256, P-384 or P-521 (tokens are signed "
                     "with RS256 or ES256/384/512)"};
    }
    bio_ptr pub(BIO_new(BIO_s_mem()));
    bio_ptr pkcs8(BIO_new(BIO_s_mem()));
    if (!pub || !pkcs8 || PEM_write_bio_PUBKEY(pub.get(), key.get()) != 1 ||
        PEM_write_bio_PrivateKey(pkcs8.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
            1) {
        return error{errc::internal, "cannot encode the key"};
    }
    out.public_key_pem = bio_text(pub.get());
    std::string signing = bio_text(pkcs8.get());
    out.id = random_id();

    jwt_t* raw = nullptr;
    if (jwt_new(&raw) != 0 || raw == nullptr) {
        OPENSSL_cleanse(signing.data(), signing.size());
        return error{errc::internal, "cannot create a token"};
    }
    jwt_ptr token(raw);
    const std::string claims = claims_json(schemas, out.id);
    const bool ok =
        jwt_add_grants_json(token.get(), claims.c_str()) == 0 &&
        jwt_set_alg(token.get(), alg, reinterpret_cast<const unsigned char*>(signing.data()),
                    static_cast<int>(signing.size())) == 0;
    OPENSSL_cleanse(signing.data(), signing.size());
    c_string encoded(ok ? jwt_encode_str(token.get()) : nullptr);
    if (!encoded) {
        return error{errc::internal, "cannot sign the token"};
    }
    out.token = encoded.get();
    return out;
}

}  // namespace molt::replicator::jwt
