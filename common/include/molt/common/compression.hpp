#pragma once
// Request body compression: the codecs a changefeed's `compression` option names (gzip, zstd;
// CockroachDB v25.2+ webhook sinks compress the whole body and say so in Content-Encoding).
// The replicator decompresses, bounded by its body limit; the stand-in compresses.

#include <cstddef>
#include <string>
#include <string_view>

#include "molt/common/result.hpp"

namespace molt::compression {

enum class codec { identity, gzip, zstd };

/// The codec a Content-Encoding header (or a `compression` option) names: case-insensitive,
/// blanks around it ignored; empty and "identity" are identity, "x-gzip" is gzip. Anything else
/// (other codecs, lists of several): errc::unsupported naming it and what is supported.
[[nodiscard]] result<codec> parse(std::string_view name);

/// "identity", "gzip", "zstd".
[[nodiscard]] std::string_view name(codec c) noexcept;

/// The bytes `data` compresses to (one gzip member, or one zstd frame); identity returns them.
[[nodiscard]] std::string compress(codec c, std::string_view data);

/// The bytes `data` decompresses to, every concatenated member or frame included. More than
/// `limit` bytes out: errc::limit_exceeded (nothing more is inflated). Corrupt, truncated or
/// trailing bytes: errc::parse_error naming the codec.
[[nodiscard]] result<std::string> decompress(codec c, std::string_view data, size_t limit);

}  // namespace molt::compression
