#pragma once
// A single-pass JSON reader over one contiguous buffer, made for the decoder's hot path:
// numbers are returned as their exact text, strings without escapes as views into the input,
// every error carries the byte offset, UTF-8 is validated, and nesting depth is limited.
// The first error wins; functions return false once it is set.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "molt/common/error.hpp"
#include "molt/common/json_text.hpp"

namespace molt::proto::detail {

class json_reader {
public:
    json_reader(std::string_view input, size_t max_depth)
        : begin_(input.data()),
          p_(input.data()),
          end_(input.data() + input.size()),
          max_depth_(max_depth) {}

    [[nodiscard]] size_t offset() const noexcept { return static_cast<size_t>(p_ - begin_); }
    [[nodiscard]] bool at_end() const noexcept { return p_ >= end_; }
    /// The next byte after whitespace, or 0 at the end.
    [[nodiscard]] char peek() noexcept {
        skip_ws();
        return p_ < end_ ? *p_ : '\0';
    }

    void skip_ws() noexcept {
        while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) {
            ++p_;
        }
    }

    /// Consumes `c` after whitespace, or fails with "expected <what>".
    bool expect(char c, std::string_view what);
    /// After whitespace: consumes `c` and returns true if it is next.
    bool try_consume(char c) noexcept {
        skip_ws();
        if (p_ < end_ && *p_ == c) {
            ++p_;
            return true;
        }
        return false;
    }

    /// Reads a string (cursor on '"' after whitespace). `out` views the input when the string
    /// has no escapes (escaped = false), otherwise an internal buffer valid until the next call.
    bool read_string(std::string_view& out, bool& escaped);
    /// Reads a number and returns its exact text.
    bool read_number(std::string_view& out);
    /// Reads true, false or null; `out` is the literal's text.
    bool read_literal(std::string_view& out);
    /// Reads any value and appends it as compact canonical JSON; `depth` is the nesting depth of
    /// the enclosing container.
    bool append_canonical(std::string& out, size_t depth);

    /// Records an error at `at` (a byte offset) unless one is already recorded; returns false.
    bool fail(size_t at, std::string message, errc code = errc::parse_error);
    bool fail_here(std::string message) { return fail(offset(), std::move(message)); }
    /// Fails when a container at `depth` would exceed the limit.
    bool check_depth(size_t depth);

    [[nodiscard]] bool failed() const noexcept { return failed_; }
    [[nodiscard]] size_t error_offset() const noexcept { return error_offset_; }
    [[nodiscard]] const std::string& error_message() const noexcept { return error_message_; }
    [[nodiscard]] errc error_code() const noexcept { return error_code_; }

private:
    bool read_string_slow(const char* start, std::string_view& out);

    const char* begin_;
    const char* p_;
    const char* end_;
    size_t max_depth_;
    std::string scratch_;
    bool failed_ = false;
    size_t error_offset_ = 0;
    std::string error_message_;
    errc error_code_ = errc::parse_error;
};

using molt::append_json_string;
using molt::utf8_sequence_length;

}  // namespace molt::proto::detail
