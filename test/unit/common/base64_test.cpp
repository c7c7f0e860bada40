#include "molt/common/base64.hpp"

#include <catch2/catch.hpp>

TEST_CASE("base64: RFC 4648 test vectors", "[base64]") {
    const std::pair<const char*, const char*> vectors[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [plain, encoded] : vectors) {
        CHECK(molt::base64_encode(plain) == encoded);
        CHECK(molt::base64_decode(encoded).value() == plain);
    }
    std::string all;
    for (int i = 0; i < 256; ++i) {
        all.push_back(static_cast<char>(i));
    }
    CHECK(molt::base64_decode(molt::base64_encode(all)).value() == all);
}

TEST_CASE("base64: malformed input", "[base64]") {
    CHECK(molt::base64_decode("Zm9").error().message() ==
          "bad base64: length 3 is not a multiple of 4");
    CHECK(molt::base64_decode("Zm-v").error().message() ==
          "bad base64: unexpected character at offset 2");
    CHECK(molt::base64_decode("Z===").error().message() ==
          "bad base64: unexpected character at offset 1");
    CHECK(molt::base64_decode("Zg==Zg==").error().message() ==
          "bad base64: unexpected character at offset 2");
    CHECK(molt::base64_decode("Zm 9").error().message() ==
          "bad base64: unexpected character at offset 2");
}
