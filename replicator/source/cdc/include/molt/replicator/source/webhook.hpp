#pragma once
// The changefeed webhook: from a request's path and body to the acceptor. No sockets here.
//
// Path rules (replicator.md §3): the escaped path is split on '/', empty segments are skipped,
// each segment is percent-decoded ('+' is a space), at most 8 segments. The first N segments
// name the target schema, N by dialect: PostgreSQL 2 (/db/schema), MySQL 1 (/db), Oracle 1
// (/SCHEMA). Other shapes (CDC-query feeds /db/schema/table, cloud-storage file paths) are not
// served and answer errc::not_found with the expected form.

#include <cstddef>
#include <string>
#include <string_view>

#include "molt/common/dialect.hpp"
#include "molt/common/ident.hpp"
#include "molt/common/result.hpp"
#include "molt/proto/decoder.hpp"
#include "molt/replicator/core/acceptor.hpp"

namespace molt::replicator {

/// The target schema a request path names. `target` may carry a query string (ignored).
[[nodiscard]] result<qualified_name> parse_webhook_path(std::string_view target,
                                                        molt::dialect target_dialect);

struct webhook_outcome {
    bool resolved = false;  ///< a resolved timestamp, not rows
    size_t messages = 0;
    accept_stats stats;
};

/// Decodes a body and hands it to the acceptor for the schema.
[[nodiscard]] result<webhook_outcome> handle_webhook(mutation_acceptor& acceptor,
                                                     const qualified_name& schema, std::string body,
                                                     const proto::decode_limits& limits,
                                                     const request_context& context = {});

}  // namespace molt::replicator
