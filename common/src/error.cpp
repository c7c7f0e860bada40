#include "molt/common/error.hpp"

#include <cstdio>
#include <cstdlib>

#include "molt/common/assert.hpp"

namespace molt {

std::string_view to_string(errc code) noexcept {
    switch (code) {
    case errc::invalid_argument: return "invalid_argument";
    case errc::parse_error: return "parse_error";
    case errc::not_found: return "not_found";
    case errc::unsupported: return "unsupported";
    case errc::io_error: return "io_error";
    case errc::tls_error: return "tls_error";
    case errc::database_error: return "database_error";
    case errc::unavailable: return "unavailable";
    case errc::unauthenticated: return "unauthenticated";
    case errc::forbidden: return "forbidden";
    case errc::limit_exceeded: return "limit_exceeded";
    case errc::timeout: return "timeout";
    case errc::cancelled: return "cancelled";
    case errc::internal: return "internal";
    }
    return "unknown";
}

std::string_view to_string(retry_class r) noexcept {
    switch (r) {
    case retry_class::none: return "none";
    case retry_class::retry_now: return "retry_now";
    case retry_class::reconnect: return "reconnect";
    case retry_class::defer: return "defer";
    case retry_class::schema: return "schema";
    case retry_class::unique: return "unique";
    case retry_class::fatal: return "fatal";
    }
    return "unknown";
}

error error::with_context(std::string_view context) const {
    std::string message;
    message.reserve(context.size() + 2 + message_.size());
    message.append(context).append(": ").append(message_);
    return {code_, std::move(message), retry_};
}

namespace detail {

void check_failed(const char* condition, const char* message, const char* file, int line) noexcept {
    std::fprintf(stderr, "MOLT_CHECK failed: %s (%s) at %s:%d\n", condition, message, file, line);
    std::fflush(stderr);
    std::abort();
}

}  // namespace detail
}  // namespace molt
