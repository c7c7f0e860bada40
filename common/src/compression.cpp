#include "molt/common/compression.hpp"

#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <array>
#include <bit>
#include <climits>
#include <memory>

#include <fmt/format.h>

#include "molt/common/assert.hpp"
#include "molt/common/ident.hpp"
#include "molt/common/log.hpp"

namespace molt::compression {
namespace {

std::string_view trimmed(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

constexpr size_t chunk = 64 * 1024;

error too_large(codec c, size_t limit) {
    return error{errc::limit_exceeded,
                 fmt::format("the {} body decompresses to more than {} bytes", name(c), limit)};
}

error corrupt(codec c, std::string_view why) {
    return error{errc::parse_error,
                 fmt::format("the {} body does not decompress: {}", name(c), why)};
}

// zlib counts input in uInt: `data` is handed over in slices, the next one once the last is used.
struct zlib_input {
    const Bytef* next;
    size_t left;

    explicit zlib_input(std::string_view data)
        : next(reinterpret_cast<const Bytef*>(data.data())), left(data.size()) {}
    void feed(z_stream& zs) {
        if (zs.avail_in == 0 && left > 0) {
            const size_t n = std::min<size_t>(left, UINT_MAX);
            zs.next_in = const_cast<Bytef*>(next);  // zlib does not write through it
            zs.avail_in = static_cast<uInt>(n);
            next += n;
            left -= n;
        }
    }
    [[nodiscard]] bool done(const z_stream& zs) const { return zs.avail_in == 0 && left == 0; }
};

result<std::string> gunzip(std::string_view data, size_t limit) {
    z_stream zs{};
    if (inflateInit2(&zs, 15 + 16) != Z_OK) {  // 16: a gzip wrapper, not zlib's
        return error{errc::internal, "zlib: inflateInit2 failed"};
    }
    const std::unique_ptr<z_stream, int (*)(z_stream*)> end(&zs, inflateEnd);
    zlib_input input(data);
    std::string out;
    std::array<char, chunk> buffer{};
    for (;;) {
        input.feed(zs);
        zs.next_out = reinterpret_cast<Bytef*>(buffer.data());
        zs.avail_out = static_cast<uInt>(buffer.size());
        const int rc = inflate(&zs, Z_NO_FLUSH);
        const size_t produced = buffer.size() - zs.avail_out;
        if (produced > limit - out.size()) {
            return too_large(codec::gzip, limit);
        }
        out.append(buffer.data(), produced);
        const bool input_done = input.done(zs);
        if (rc == Z_STREAM_END) {
            if (input_done) {
                return out;
            }
            // Another member follows (Go's reader takes concatenated members too).
            if (inflateReset(&zs) != Z_OK) {
                return error{errc::internal, "zlib: inflateReset failed"};
            }
            continue;
        }
        if (rc == Z_OK || rc == Z_BUF_ERROR) {
            if (input_done && zs.avail_out != 0) {
                return corrupt(codec::gzip, "it is truncated");
            }
            continue;
        }
        if (rc == Z_MEM_ERROR || rc == Z_STREAM_ERROR) {
            return error{errc::internal, fmt::format("zlib: inflate failed ({})", rc)};
        }
        return corrupt(codec::gzip, zs.msg != nullptr ? zs.msg : "invalid data");
    }
}

result<std::string> unzstd(std::string_view data, size_t limit) {
    const std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
    if (ctx == nullptr) {
        return error{errc::internal, "zstd: ZSTD_createDCtx failed"};
    }
    // A frame header can ask for a window of up to 128 MiB before any byte comes out: allow no
    // more than the limit needs (at least 8 MiB, the window Go's encoder uses by default).
    const int window_log = std::clamp(static_cast<int>(std::bit_width(limit)), 23, 27);
    if (ZSTD_isError(ZSTD_DCtx_setParameter(ctx.get(), ZSTD_d_windowLogMax, window_log)) != 0) {
        return error{errc::internal, "zstd: cannot bound the window size"};
    }
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    std::string out;
    std::array<char, chunk> buffer{};
    for (;;) {
        ZSTD_outBuffer o{buffer.data(), buffer.size(), 0};
        const size_t rc = ZSTD_decompressStream(ctx.get(), &o, &in);
        if (ZSTD_isError(rc) != 0) {
            if (ZSTD_getErrorCode(rc) == ZSTD_error_frameParameter_windowTooLarge) {
                return error{errc::limit_exceeded,
                             fmt::format("the zstd body asks for a window of more than {} bytes",
                                         size_t{1} << window_log)};
            }
            return corrupt(codec::zstd, ZSTD_getErrorName(rc));
        }
        if (o.pos > limit - out.size()) {
            return too_large(codec::zstd, limit);
        }
        out.append(buffer.data(), o.pos);
        if (in.pos == in.size) {
            if (rc == 0) {
                return out;  // the last frame is complete
            }
            if (o.pos < o.size) {
                return corrupt(codec::zstd, "it is truncated");
            }
        }
        // rc == 0 with input left: another frame follows.
    }
}

}  // namespace

result<codec> parse(std::string_view text) {
    const std::string_view n = trimmed(text);
    if (n.empty() || ident_equal(n, "identity")) {
        return codec::identity;
    }
    if (ident_equal(n, "gzip") || ident_equal(n, "x-gzip")) {
        return codec::gzip;
    }
    if (ident_equal(n, "zstd")) {
        return codec::zstd;
    }
    return error{errc::unsupported,
                 fmt::format("unsupported compression \"{}\": gzip and zstd are supported",
                             log::sanitize(text.substr(0, 64)))};
}

std::string_view name(codec c) noexcept {
    switch (c) {
    case codec::identity: return "identity";
    case codec::gzip: return "gzip";
    case codec::zstd: return "zstd";
    }
    return "identity";
}

std::string compress(codec c, std::string_view data) {
    switch (c) {
    case codec::identity: return std::string(data);
    case codec::gzip: {
        z_stream zs{};
        const int init =
            deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
        MOLT_CHECK(init == Z_OK, "zlib: deflateInit2 failed");
        const std::unique_ptr<z_stream, int (*)(z_stream*)> end(&zs, deflateEnd);
        std::string out;
        std::array<char, chunk> buffer{};
        zlib_input input(data);
        int rc = Z_OK;
        while (rc != Z_STREAM_END) {
            input.feed(zs);
            zs.next_out = reinterpret_cast<Bytef*>(buffer.data());
            zs.avail_out = static_cast<uInt>(buffer.size());
            rc = deflate(&zs, input.left == 0 ? Z_FINISH : Z_NO_FLUSH);
            MOLT_CHECK(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR,
                       "zlib: deflate failed");
            out.append(buffer.data(), buffer.size() - zs.avail_out);
        }
        return out;
    }
    case codec::zstd: {
        // With a content checksum, as Go's zstd encoder writes by default.
        const std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> ctx(ZSTD_createCCtx(),
                                                                     ZSTD_freeCCtx);
        MOLT_CHECK(ctx != nullptr, "zstd: ZSTD_createCCtx failed");
        MOLT_CHECK(ZSTD_isError(ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_checksumFlag, 1)) == 0,
                   "zstd: no checksum flag");
        std::string out(ZSTD_compressBound(data.size()), '\0');
        const size_t n =
            ZSTD_compress2(ctx.get(), out.data(), out.size(), data.data(), data.size());
        MOLT_CHECK(ZSTD_isError(n) == 0, "zstd: ZSTD_compress2 failed");
        out.resize(n);
        return out;
    }
    }
    return std::string(data);
}

result<std::string> decompress(codec c, std::string_view data, size_t limit) {
    switch (c) {
    case codec::identity:
        if (data.size() > limit) {
            return error{errc::limit_exceeded,
                         fmt::format("the body is larger than {} bytes", limit)};
        }
        return std::string(data);
    case codec::gzip: return gunzip(data, limit);
    case codec::zstd: return unzstd(data, limit);
    }
    return std::string(data);
}

}  // namespace molt::compression
