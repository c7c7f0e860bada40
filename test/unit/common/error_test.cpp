#include "molt/common/error.hpp"

#include <catch2/catch.hpp>

#include "molt/common/exit_code.hpp"
#include "molt/common/result.hpp"

namespace {

molt::result<int> half(int x) {
    if (x % 2 != 0) {
        return molt::error{molt::errc::invalid_argument, "odd number"};
    }
    return x / 2;
}

molt::result<void> check_positive(int x) {
    if (x <= 0) {
        return molt::error{molt::errc::invalid_argument, "not positive"};
    }
    return molt::ok();
}

}  // namespace

TEST_CASE("result: carries a value or an error", "[error]") {
    auto good = half(8);
    REQUIRE(good);
    CHECK(*good == 4);
    auto bad = half(7);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code() == molt::errc::invalid_argument);
    CHECK(bad.error().message() == "odd number");
    CHECK(check_positive(1).has_value());
    REQUIRE_FALSE(check_positive(0));
    CHECK(check_positive(0).error().message() == "not positive");

    molt::result<std::string> text = std::string("moved");
    const std::string taken = std::move(text).value();
    CHECK(taken == "moved");
}

TEST_CASE("error: context prefixes the message", "[error]") {
    const molt::error e{molt::errc::database_error, "connection refused"};
    const molt::error wrapped = e.with_context("error connect");
    CHECK(wrapped.message() == "error connect: connection refused");
    CHECK(wrapped.code() == molt::errc::database_error);
    CHECK(molt::to_string(molt::errc::limit_exceeded) == "limit_exceeded");
}

TEST_CASE("exit codes match the originals", "[error]") {
    CHECK(molt::to_int(molt::exit_code::ok) == 0);
    CHECK(molt::to_int(molt::exit_code::failure) == 1);
}
