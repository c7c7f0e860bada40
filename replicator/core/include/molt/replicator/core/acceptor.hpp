#pragma once
// What the HTTP side hands decoded requests to. The immediate applier implements it now; the
// consistent (staging) mode will implement the same interface.

#include <chrono>
#include <cstddef>
#include <functional>

#include "molt/common/hlc.hpp"
#include "molt/common/ident.hpp"
#include "molt/common/result.hpp"
#include "molt/proto/batch.hpp"

namespace molt::replicator {

struct accept_stats {
    size_t upserts = 0;
    size_t deletes = 0;
};

/// What the handler of a request knows about it beyond its body.
struct request_context {
    /// When its headers were read: its deadline counts from here, time in the queue included.
    std::chrono::steady_clock::time_point arrived = std::chrono::steady_clock::now();
    /// True once the client has closed its connection and no longer waits for the answer
    /// (empty: never).
    std::function<bool()> client_gone;

    [[nodiscard]] bool gone() const { return client_gone && client_gone(); }
};

class mutation_acceptor {
public:
    virtual ~mutation_acceptor() = default;
    /// Writes (or durably stages) a request's rows for the target schema. Errors say what the
    /// client should be told: errc::parse_error / invalid_argument (400), not_found (404),
    /// unavailable / timeout (503).
    virtual result<accept_stats> accept_rows(const qualified_name& schema, const proto::batch& rows,
                                             const request_context& context = {}) = 0;
    /// Records a resolved timestamp for the target schema.
    virtual result<void> accept_resolved(const qualified_name& schema, hlc resolved) = 0;
};

}  // namespace molt::replicator
