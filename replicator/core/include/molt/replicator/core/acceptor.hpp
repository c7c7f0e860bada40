#pragma once
// What the HTTP side hands decoded requests to. The immediate applier implements it now; the
// consistent (staging) mode will implement the same interface.

#include <cstddef>

#include "molt/common/hlc.hpp"
#include "molt/common/ident.hpp"
#include "molt/common/result.hpp"
#include "molt/proto/batch.hpp"

namespace molt::replicator {

struct accept_stats {
    size_t upserts = 0;
    size_t deletes = 0;
};

class mutation_acceptor {
public:
    virtual ~mutation_acceptor() = default;
    /// Writes (or durably stages) a request's rows for the target schema. Errors say what the
    /// client should be told: errc::parse_error / invalid_argument (400), not_found (404),
    /// unavailable / timeout (503).
    virtual result<accept_stats> accept_rows(const qualified_name& schema,
                                             const proto::batch& rows) = 0;
    /// Records a resolved timestamp for the target schema.
    virtual result<void> accept_resolved(const qualified_name& schema, hlc resolved) = 0;
};

}  // namespace molt::replicator
