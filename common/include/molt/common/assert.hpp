#pragma once
// MOLT_ASSERT(cond, msg): a programmer invariant, checked in debug builds only.
// MOLT_CHECK(cond, msg): an invariant that must hold in production too; on failure it prints the
// condition, location and message to stderr and aborts. Neither is used for bad input, which is
// an expected failure returned as molt::result (see error.hpp).

namespace molt::detail {
[[noreturn]] void check_failed(const char* condition, const char* message, const char* file,
                               int line) noexcept;
}  // namespace molt::detail

#define MOLT_CHECK(cond, msg)                                               \
    do {                                                                    \
        if (!(cond)) [[unlikely]] {                                         \
            ::molt::detail::check_failed(#cond, (msg), __FILE__, __LINE__); \
        }                                                                   \
    } while (false)

#ifdef NDEBUG
#define MOLT_ASSERT(cond, msg) \
    do {                       \
    } while (false)
#else
#define MOLT_ASSERT(cond, msg) MOLT_CHECK(cond, msg)
#endif
