#pragma once
// Decoding CockroachDB changefeed request bodies (../shared/spec/changefeed-webhook.md §1.3, §2).
//
//   {"payload":[<message>,...],"length":N}        rows ("length" checked when present)
//   {"resolved":"<hlc>"}                          a resolved timestamp
//   {"__crdb__":{"resolved":"<hlc>"}}             the same, bare envelope
//   (empty body)                                  nothing to do
//
// Messages: wrapped ({"after":…,"before":…,"key":[…],"topic":…,"updated":…}) or bare (columns at
// top level, metadata under "__crdb__"). Unknown fields are skipped and counted, never refused.
// Every error names the byte offset, and for message-level problems the message index; on error
// nothing of the body is returned.

#include <cstddef>
#include <limits>
#include <string>

#include "molt/common/hlc.hpp"
#include "molt/common/result.hpp"
#include "molt/proto/batch.hpp"

namespace molt::proto {

struct decode_limits {
    size_t max_body_bytes = 64 * 1024 * 1024;  ///< larger bodies: errc::limit_exceeded
    size_t max_depth = 128;                    ///< JSON nesting, counted from the body's top
    size_t max_messages = 1'000'000;           ///< messages per body

    /// No size or count limit (the depth limit stays): for bodies the replicator made itself,
    /// such as a userscript's output, which may fan a request's rows out.
    [[nodiscard]] static decode_limits unlimited() {
        decode_limits limits;
        limits.max_body_bytes = std::numeric_limits<size_t>::max();
        limits.max_messages = std::numeric_limits<size_t>::max();
        return limits;
    }
};

struct webhook_body {
    enum class kind { rows, resolved };
    kind type = kind::rows;
    batch rows;    ///< for kind::rows (possibly empty)
    hlc resolved;  ///< for kind::resolved
};

/// Decodes one webhook request body. Takes ownership of the bytes.
[[nodiscard]] result<webhook_body> decode_webhook(std::string body,
                                                  const decode_limits& limits = {});

/// Decodes newline-delimited messages (the cloud-storage sink's files): one message per line.
[[nodiscard]] result<batch> decode_ndjson(std::string body, const decode_limits& limits = {});

}  // namespace molt::proto
