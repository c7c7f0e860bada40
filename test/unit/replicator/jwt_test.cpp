// JWT checks (replicator/server/jwt.hpp): the accept/reject matrix on tokens signed here with
// libjwt directly (so that tokens our make_token() would never produce can be tested), and
// make_token() checked by the verifier. Interoperability with an independent implementation
// (PyJWT) is in test/e2e/jwt_auth_test.sh.

#include "molt/replicator/server/jwt.hpp"

#include <jwt.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

using namespace molt;
using namespace molt::replicator;
using std::chrono::system_clock;

namespace {

struct key_pair {
    std::string private_pem;
    std::string public_pem;
};

std::string pem_of(EVP_PKEY* key, bool private_part) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (private_part) {
        PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    } else {
        PEM_write_bio_PUBKEY(bio, key);
    }
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<size_t>(size));
    BIO_free(bio);
    return out;
}

key_pair make_pair(EVP_PKEY* key) {
    REQUIRE(key != nullptr);
    key_pair out{pem_of(key, true), pem_of(key, false)};
    EVP_PKEY_free(key);
    return out;
}

const key_pair& ec256() {
    static const key_pair k = make_pair(EVP_EC_gen("P-256"));
    return k;
}
const key_pair& ec384() {
    static const key_pair k = make_pair(EVP_EC_gen("P-384"));
    return k;
}
const key_pair& ec521() {
    static const key_pair k = make_pair(EVP_EC_gen("P-521"));
    return k;
}
const key_pair& rsa() {
    static const key_pair k = make_pair(EVP_RSA_gen(2048));
    return k;
}
const key_pair& other_ec() {
    static const key_pair k = make_pair(EVP_EC_gen("P-256"));
    return k;
}

// Signs `claims` with libjwt: any algorithm, any key bytes.
std::string sign(const std::string& claims, jwt_alg_t alg, const std::string& key) {
    jwt_t* j = nullptr;
    REQUIRE(jwt_new(&j) == 0);
    REQUIRE(jwt_add_grants_json(j, claims.c_str()) == 0);
    REQUIRE(jwt_set_alg(j, alg,
                        key.empty() ? nullptr : reinterpret_cast<const unsigned char*>(key.data()),
                        static_cast<int>(key.size())) == 0);
    char* text = jwt_encode_str(j);
    REQUIRE(text != nullptr);
    std::string out(text);
    std::free(text);  // NOLINT: libjwt's allocation
    jwt_free(j);
    return out;
}

std::string claims(std::string_view extra = "",
                   std::string_view schemas = R"([["appdb","public"]])",
                   std::string_view ns = jwt::claim_namespace) {
    return fmt::format(R"({{"jti":"id-1","{}":{{"schemas":{}}}{}}})", ns, schemas, extra);
}

qualified_name schema(std::string a, std::string b) {
    return qualified_name{{std::move(a), std::move(b)}};
}

const system_clock::time_point now = system_clock::time_point(std::chrono::seconds(1'800'000'000));

jwt::verifier& verifier_with(jwt::verifier& v, std::vector<std::string> revoked = {}) {
    jwt::key_set keys;
    keys.keys = {{"k-ec256", ec256().public_pem},
                 {"k-ec384", ec384().public_pem},
                 {"k-ec521", ec521().public_pem},
                 {"k-rsa", rsa().public_pem}};
    keys.revoked_ids = std::move(revoked);
    CHECK(v.replace(keys).empty());
    CHECK(v.key_count() == 4);
    return v;
}

// The status the router would answer: 0 when accepted.
int status(const jwt::verifier& v, const std::string& token,
           const qualified_name& where = schema("appdb", "public")) {
    auto checked = v.check(token, &where, now);
    if (checked) {
        return 0;
    }
    CHECK(checked.error().message().find(token.empty() ? "\x01" : token) == std::string::npos);
    return checked.error().code() == errc::forbidden         ? 403
           : checked.error().code() == errc::unauthenticated ? 401
                                                             : 500;
}

}  // namespace

TEST_CASE("jwt: every accepted algorithm, with the current and the legacy claim", "[jwt]") {
    jwt::verifier v;
    verifier_with(v);
    CHECK(status(v, sign(claims(), JWT_ALG_ES256, ec256().private_pem)) == 0);
    CHECK(status(v, sign(claims(), JWT_ALG_ES384, ec384().private_pem)) == 0);
    CHECK(status(v, sign(claims(), JWT_ALG_ES512, ec521().private_pem)) == 0);
    CHECK(status(v, sign(claims(), JWT_ALG_RS256, rsa().private_pem)) == 0);
    CHECK(status(v, sign(claims(), JWT_ALG_RS384, rsa().private_pem)) == 0);
    CHECK(status(v, sign(claims(), JWT_ALG_RS512, rsa().private_pem)) == 0);
    CHECK(status(v, sign(claims("", R"([["appdb","public"]])", jwt::legacy_claim_namespace),
                         JWT_ALG_ES256, ec256().private_pem)) == 0);
}

TEST_CASE("jwt: the reject matrix", "[jwt]") {
    jwt::verifier v;
    verifier_with(v, {"revoked-1"});
    const auto es = [](const std::string& c) {
        return sign(c, JWT_ALG_ES256, ec256().private_pem);
    };
    const long t = 1'800'000'000;

    CHECK(status(v, "") == 401);                               // missing
    CHECK(status(v, "not-a-token") == 401);                    // malformed
    CHECK(status(v, "eyJhbGciOiJFUzI1NiJ9.e30.AAAA") == 401);  // bad signature
    CHECK(status(v, sign(claims(), JWT_ALG_ES256, other_ec().private_pem)) == 401);  // unknown key
    CHECK(status(v, es(claims(fmt::format(R"(,"exp":{})", t)))) == 401);     // expired (exp == now)
    CHECK(status(v, es(claims(fmt::format(R"(,"exp":{})", t + 60)))) == 0);  // not expired
    CHECK(status(v, es(claims(fmt::format(R"(,"nbf":{})", t + 1)))) == 401);  // not yet valid
    CHECK(status(v, es(claims(fmt::format(R"(,"nbf":{})", t)))) == 0);
    CHECK(status(v, es(claims(R"(,"exp":"tomorrow")"))) == 401);
    CHECK(
        status(
            v,
            es(R"({"jti":"revoked-1","https://github.com/cockroachdb/replicator":{"schemas":[["appdb","public"]]}})")) ==
        401);
    CHECK(
        status(
            v,
            es(R"({"https://github.com/cockroachdb/replicator":{"schemas":[["appdb","public"]]}})")) ==
        401);  // no jti
    CHECK(
        status(v,
               es(R"({"jti":"x","https://example.com/other":{"schemas":[["appdb","public"]]}})")) ==
        401);  // no claim
    CHECK(
        status(
            v,
            es(R"({"jti":"x","https://github.com/cockroachdb/replicator":{"sch":[["appdb","public"]]}})")) ==
        401);
    CHECK(status(v, es(claims("", R"(["appdb","public"])"))) == 401);  // not a list of lists

    // HMAC, with the public key's PEM as the secret (the classic confusion attack), and none.
    CHECK(status(v, sign(claims(), JWT_ALG_HS256, ec256().public_pem)) == 401);
    CHECK(status(v, sign(claims(), JWT_ALG_HS256, rsa().public_pem)) == 401);
    CHECK(status(v, sign(claims(), JWT_ALG_HS512, "secret")) == 401);
    CHECK(status(v, sign(claims(), JWT_ALG_NONE, "")) == 401);
    const auto where = schema("appdb", "public");
    auto none = v.check(sign(claims(), JWT_ALG_NONE, ""), &where, now);
    REQUIRE_FALSE(none);
    CHECK(none.error().message().find("algorithm \"none\" is refused") != std::string::npos);
    // Algorithm names are case-sensitive (RFC 7515): "es256" is not ES256.
    const std::string good = sign(claims(), JWT_ALG_ES256, ec256().private_pem);
    const std::string lower =
        "eyJhbGciOiJlczI1NiIsInR5cCI6IkpXVCJ9" + good.substr(good.find('.'));  // {"alg":"es256"}
    auto lowered = v.check(lower, &where, now);
    REQUIRE_FALSE(lowered);
    CHECK(lowered.error().message().find("algorithm \"es256\" is refused") != std::string::npos);
}

TEST_CASE("jwt: the key must fit the algorithm", "[jwt]") {
    jwt::verifier v;
    jwt::key_set keys;
    keys.keys = {{"k-ec384", ec384().public_pem}, {"k-rsa", rsa().public_pem}};
    CHECK(v.replace(keys).empty());
    // ES256 is P-256 only (RFC 7518): a signature made with a P-384 key under "ES256" is refused
    // although the key would verify it.
    auto mismatched = v.check(sign(claims(), JWT_ALG_ES256, ec384().private_pem), nullptr, now);
    REQUIRE_FALSE(mismatched);
    CHECK(mismatched.error().message().find("no active public key can verify ES256") !=
          std::string::npos);
    CHECK(v.check(sign(claims(), JWT_ALG_ES384, ec384().private_pem), nullptr, now));
    CHECK(v.check(sign(claims(), JWT_ALG_RS384, rsa().private_pem), nullptr, now));
}

TEST_CASE("jwt: a token that expires while cached is refused from then on", "[jwt]") {
    jwt::verifier v;
    verifier_with(v);
    const long t = 1'800'000'000;
    const std::string token =
        sign(claims(fmt::format(R"(,"exp":{})", t + 10)), JWT_ALG_ES256, ec256().private_pem);
    const auto where = schema("appdb", "public");
    CHECK(v.check(token, &where, now));
    CHECK(v.check(token, &where, now + std::chrono::seconds(9)));
    auto later = v.check(token, &where, now + std::chrono::seconds(10));
    REQUIRE_FALSE(later);
    CHECK(later.error().message().find("expired") != std::string::npos);
}

TEST_CASE("jwt: a good token for another schema is 403; wildcards are per part", "[jwt]") {
    jwt::verifier v;
    verifier_with(v);
    const auto es = [](std::string_view schemas) {
        return sign(claims("", schemas), JWT_ALG_ES256, ec256().private_pem);
    };
    CHECK(status(v, es(R"([["appdb","public"]])"), schema("appdb", "other")) == 403);
    CHECK(status(v, es(R"([["appdb","public"]])"), schema("AppDB", "PUBLIC")) == 0);
    CHECK(status(v, es(R"([["appdb","*"]])"), schema("appdb", "other")) == 0);
    CHECK(status(v, es(R"([["appdb","*"]])"), schema("otherdb", "public")) == 403);
    CHECK(status(v, es(R"([["*","*"]])"), schema("x", "y")) == 0);
    CHECK(status(v, es(R"([["*"]])"), schema("x", "y")) == 403);  // parts must match in number
    CHECK(status(v, es(R"([["*"]])"), qualified_name{{"mysqldb"}}) == 0);
    CHECK(status(v, es(R"([])"), schema("appdb", "public")) == 403);
    CHECK(status(v, es(R"([["a","b"],["appdb","public"]])"), schema("appdb", "public")) == 0);
}

TEST_CASE("jwt: new keys and revocations apply to tokens already seen", "[jwt]") {
    jwt::verifier v;
    verifier_with(v);
    const std::string token = sign(claims(), JWT_ALG_ES256, ec256().private_pem);
    CHECK(status(v, token) == 0);
    CHECK(status(v, token) == 0);  // from the cache

    jwt::key_set revoked;
    revoked.keys = {{"k-ec256", ec256().public_pem}};
    revoked.revoked_ids = {"id-1"};
    CHECK(v.replace(revoked).empty());
    CHECK(status(v, token) == 401);

    jwt::key_set other;
    other.keys = {{"k-other", other_ec().public_pem}};
    CHECK(v.replace(other).empty());
    CHECK(status(v, token) == 401);

    CHECK(v.replace(jwt::key_set{}).empty());
    const auto where = schema("appdb", "public");
    auto empty = v.check(token, &where, now);
    CHECK_FALSE(v.check(token, nullptr, now));
    REQUIRE_FALSE(empty);
    CHECK(empty.error().message().find("no public keys are configured") != std::string::npos);
}

TEST_CASE("jwt: keys that cannot verify are skipped and named", "[jwt]") {
    jwt::verifier v;
    jwt::key_set keys;
    EVP_PKEY* ed = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    EVP_PKEY* short_rsa = EVP_RSA_gen(1024);
    keys.keys = {{"k-garbage", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"},
                 {"k-private", ec256().private_pem},
                 {"k-ed25519", pem_of(ed, false)},
                 {"k-rsa1024", pem_of(short_rsa, false)},
                 {"k-good", ec256().public_pem}};
    EVP_PKEY_free(ed);
    EVP_PKEY_free(short_rsa);
    const auto problems = v.replace(keys);
    REQUIRE(problems.size() == 4);
    CHECK(problems[0].find("k-garbage") != std::string::npos);
    CHECK(problems[1].find("k-private") != std::string::npos);
    CHECK(problems[2].find("k-ed25519") != std::string::npos);
    CHECK(problems[3].find("k-rsa1024 is an RSA key of 1024 bits") != std::string::npos);
    CHECK(v.key_count() == 1);
    CHECK(status(v, sign(claims(), JWT_ALG_ES256, ec256().private_pem)) == 0);
}

TEST_CASE("jwt: make_token signs by the key's type and the verifier takes it", "[jwt]") {
    jwt::verifier v;
    verifier_with(v);
    const jwt::schema_list allowed = {{"appdb", "public"}, {"mysqldb"}};
    for (const auto& [key, alg] : {std::pair{&ec256(), "ES256"}, std::pair{&ec384(), "ES384"},
                                   std::pair{&ec521(), "ES512"}, std::pair{&rsa(), "RS256"}}) {
        auto made = jwt::make_token(key->private_pem, allowed);
        REQUIRE(made);
        CHECK(made->algorithm == alg);
        CHECK(made->public_key_pem == key->public_pem);
        CHECK(made->id.size() == 36);
        CHECK(status(v, made->token) == 0);
        CHECK(status(v, made->token, qualified_name{{"mysqldb"}}) == 0);
        CHECK(status(v, made->token, schema("appdb", "other")) == 403);
    }
    // Two tokens never share an id.
    CHECK(jwt::make_token(ec256().private_pem, allowed)->id !=
          jwt::make_token(ec256().private_pem, allowed)->id);

    EVP_PKEY* ed = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    const std::string ed_pem = pem_of(ed, true);
    EVP_PKEY_free(ed);
    auto refused = jwt::make_token(ed_pem, allowed);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().message().find("RSA or EC") != std::string::npos);
    auto garbage = jwt::make_token("not a key", allowed);
    REQUIRE_FALSE(garbage);
    CHECK(garbage.error().message().find("PEM private key") != std::string::npos);
    auto public_only = jwt::make_token(ec256().public_pem, allowed);
    CHECK_FALSE(public_only);

    // A key the server would skip (RSA under 2048 bits) signs nothing: no token, no INSERT.
    EVP_PKEY* short_rsa = EVP_RSA_gen(1024);
    const std::string short_pem = pem_of(short_rsa, true);
    EVP_PKEY_free(short_rsa);
    auto too_short = jwt::make_token(short_pem, allowed);
    REQUIRE_FALSE(too_short);
    CHECK(too_short.error().message() ==
          "the key is an RSA key of 1024 bits; the replicator verifies RSA keys of at least 2048 "
          "bits (openssl genrsa -out key.pem 2048)");
}

TEST_CASE("jwt: where a request carries its token", "[jwt]") {
    CHECK(jwt::token_of("Bearer abc.def.ghi", "/appdb/public") == "abc.def.ghi");
    CHECK(jwt::token_of("bearer   abc ", "/appdb/public") == "abc");
    CHECK(jwt::token_of("Basic dXNlcjpwdw==", "/appdb/public").empty());
    CHECK(jwt::token_of("", "/appdb/public?access_token=a.b%2Ec&x=1") == "a.b.c");
    CHECK(jwt::token_of("", "/appdb/public?x=1&access_token=t") == "t");
    CHECK(jwt::token_of("Bearer h", "/appdb/public?access_token=q") == "h");
    CHECK(jwt::token_of("", "/appdb/public?my_access_token=q").empty());
    CHECK(jwt::without_access_token("/appdb/public?access_token=secret&x=1") ==
          "/appdb/public?x=1");
    CHECK(jwt::without_access_token("/appdb/public?x=1&access_token=secret") ==
          "/appdb/public?x=1");
    CHECK(jwt::without_access_token("/appdb/public?access_token=secret") == "/appdb/public");
    CHECK(jwt::without_access_token("/appdb/public") == "/appdb/public");
}

TEST_CASE("jwt: --allow values", "[jwt]") {
    CHECK(*jwt::parse_allowed("appdb.public") == std::vector<std::string>{"appdb", "public"});
    CHECK(*jwt::parse_allowed("*.*") == std::vector<std::string>{"*", "*"});
    CHECK(*jwt::parse_allowed("mysqldb") == std::vector<std::string>{"mysqldb"});
    CHECK(*jwt::parse_allowed(R"("my.db".public)") == std::vector<std::string>{"my.db", "public"});
    CHECK_FALSE(jwt::parse_allowed("a.b.c"));
    CHECK_FALSE(jwt::parse_allowed(""));
    CHECK(
        jwt::claims_json({{"a", "b"}}, "id") ==
        R"({"https://github.com/cockroachdb/replicator":{"schemas":[["a","b"]]},"iss":"replicator","jti":"id"})");
}
