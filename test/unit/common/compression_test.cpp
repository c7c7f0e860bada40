#include "molt/common/compression.hpp"

#include <catch2/catch.hpp>

using namespace molt;
using compression::codec;

namespace {

std::string sample(size_t n) {
    std::string s;
    for (size_t i = 0; s.size() < n; ++i) {
        s += "{\"after\": {\"id\": " + std::to_string(i) + ", \"v\": \"r\\u00e9sum\\u00e9\"}},";
    }
    s.resize(n);
    return s;
}

}  // namespace

TEST_CASE("compression: codec names as Content-Encoding and the compression option give them") {
    CHECK(compression::parse("gzip").value() == codec::gzip);
    CHECK(compression::parse(" GZip ").value() == codec::gzip);
    CHECK(compression::parse("x-gzip").value() == codec::gzip);
    CHECK(compression::parse("ZSTD").value() == codec::zstd);
    CHECK(compression::parse("").value() == codec::identity);
    CHECK(compression::parse("identity").value() == codec::identity);
    for (const char* other : {"br", "deflate", "gzip, identity", "gzip2"}) {
        auto refused = compression::parse(other);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().code() == errc::unsupported);
        CHECK_THAT(refused.error().message(), Catch::Contains(other));
        CHECK_THAT(refused.error().message(), Catch::Contains("gzip and zstd are supported"));
    }
    CHECK(compression::name(codec::gzip) == "gzip");
    CHECK(compression::name(codec::zstd) == "zstd");
}

TEST_CASE("compression: gzip and zstd round-trip, empty and large bodies included") {
    for (const codec c : {codec::gzip, codec::zstd, codec::identity}) {
        for (const size_t n : {size_t{0}, size_t{1}, size_t{1000}, size_t{3'000'000}}) {
            const std::string plain = sample(n);
            const std::string packed = compression::compress(c, plain);
            if (c != codec::identity && n >= 1000) {
                CHECK(packed.size() < plain.size() / 2);
            }
            auto back = compression::decompress(c, packed, plain.size());
            REQUIRE(back);
            CHECK(*back == plain);
        }
    }
    // The magic numbers: what a receiver or a packet capture sees.
    CHECK(compression::compress(codec::gzip, "x").substr(0, 2) == "\x1f\x8b");
    CHECK(compression::compress(codec::zstd, "x").substr(0, 4) == "\x28\xb5\x2f\xfd");
}

TEST_CASE("compression: concatenated gzip members and zstd frames are one body") {
    for (const codec c : {codec::gzip, codec::zstd}) {
        const std::string packed = compression::compress(c, "{\"payload\":[") +
                                   compression::compress(c, "],\"length\":0}");
        auto back = compression::decompress(c, packed, 1000);
        REQUIRE(back);
        CHECK(*back == "{\"payload\":[],\"length\":0}");
    }
}

TEST_CASE("compression: more than the limit out is refused, however small the input") {
    const std::string zeros(10'000'000, ' ');
    for (const codec c : {codec::gzip, codec::zstd}) {
        const std::string bomb = compression::compress(c, zeros);
        CHECK(bomb.size() < 100'000);
        auto refused = compression::decompress(c, bomb, 9'000'000);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().code() == errc::limit_exceeded);
        CHECK_THAT(refused.error().message(),
                   Catch::Contains(std::string(compression::name(c)) +
                                   " body decompresses to more than 9000000 bytes"));
        // Exactly the limit is fine.
        CHECK(compression::decompress(c, bomb, zeros.size()));
    }
    // zstd: a frame whose header asks for a window larger than the limit needs is refused before
    // any memory is set aside for it. Hand-made: magic, no content size, window 2^27 (128 MiB),
    // one raw last block holding "x".
    const std::string big_window("\x28\xb5\x2f\xfd\x00\x88\x09\x00\x00x", 10);
    auto windowed = compression::decompress(codec::zstd, big_window, 1'000'000);
    REQUIRE_FALSE(windowed);
    CHECK(windowed.error().code() == errc::limit_exceeded);
    CHECK_THAT(windowed.error().message(),
               Catch::Contains("the zstd body asks for a window of more than 8388608 bytes"));
    auto allowed = compression::decompress(codec::zstd, big_window, size_t{64} << 20);
    REQUIRE(allowed);
    CHECK(*allowed == "x");
    auto plain = compression::decompress(codec::identity, "12345", 4);
    REQUIRE_FALSE(plain);
    CHECK(plain.error().code() == errc::limit_exceeded);
}

TEST_CASE("compression: corrupt, truncated or trailing bytes are refused, naming the codec") {
    const std::string plain = sample(5000);
    for (const codec c : {codec::gzip, codec::zstd}) {
        const std::string name(compression::name(c));
        const std::string packed = compression::compress(c, plain);
        auto check_refused = [&](const std::string& bytes, const std::string& why) {
            INFO(name << ": " << why);
            auto refused = compression::decompress(c, bytes, 1'000'000);
            REQUIRE_FALSE(refused);
            CHECK(refused.error().code() == errc::parse_error);
            CHECK_THAT(refused.error().message(),
                       Catch::Contains("the " + name + " body does not decompress"));
        };
        check_refused("", "empty");
        check_refused(plain, "not compressed at all");
        check_refused(packed.substr(0, packed.size() / 2), "cut in half");
        check_refused(packed.substr(0, packed.size() - 1), "last byte missing");
        check_refused(packed + "garbage", "trailing bytes");
        std::string flipped = packed;
        flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x55);
        check_refused(flipped, "a flipped byte");
        auto cut = compression::decompress(c, packed.substr(0, packed.size() / 2), 1'000'000);
        REQUIRE_FALSE(cut);
        CHECK_THAT(cut.error().message(), Catch::Contains("truncated"));
    }
}
