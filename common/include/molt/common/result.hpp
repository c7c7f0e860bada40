#pragma once
// molt::result<T>: a value or a molt::error. Our own small type because std::expected is C++23
// and Boost 1.74 has no boost::system::result; the interface follows std::expected so that a
// later swap is mechanical.

#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "molt/common/assert.hpp"
#include "molt/common/error.hpp"

namespace molt {

template <typename T>
class [[nodiscard]] result {
    static_assert(!std::is_same_v<std::remove_cv_t<T>, molt::error>, "result<error> is ambiguous");

public:
    using value_type = T;

    result(T value)
        : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
    result(molt::error err)
        : state_(std::in_place_index<1>, std::move(err)) {}  // NOLINT: implicit by design

    [[nodiscard]] bool has_value() const noexcept { return state_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    [[nodiscard]] T& value() & {
        MOLT_CHECK(has_value(), "result::value() on an error");
        return std::get<0>(state_);
    }
    [[nodiscard]] const T& value() const& {
        MOLT_CHECK(has_value(), "result::value() on an error");
        return std::get<0>(state_);
    }
    [[nodiscard]] T&& value() && {
        MOLT_CHECK(has_value(), "result::value() on an error");
        return std::get<0>(std::move(state_));
    }
    [[nodiscard]] const molt::error& error() const& {
        MOLT_CHECK(!has_value(), "result::error() on a value");
        return std::get<1>(state_);
    }
    [[nodiscard]] molt::error&& error() && {
        MOLT_CHECK(!has_value(), "result::error() on a value");
        return std::get<1>(std::move(state_));
    }

    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

private:
    std::variant<T, molt::error> state_;
};

template <>
class [[nodiscard]] result<void> {
public:
    result() = default;
    result(molt::error err) : error_(std::move(err)) {}  // NOLINT: implicit by design

    [[nodiscard]] bool has_value() const noexcept { return !error_.has_value(); }
    explicit operator bool() const noexcept { return has_value(); }
    [[nodiscard]] const molt::error& error() const& {
        MOLT_CHECK(!has_value(), "result::error() on a value");
        return *error_;
    }

private:
    std::optional<molt::error> error_;
};

/// A successful result<void>.
[[nodiscard]] inline result<void> ok() {
    return {};
}

}  // namespace molt
