#pragma once
// A monotonic arena: stable pointers, freed all at once. Holds a batch's decoded strings, the
// canonical text of keys and nested JSON, and the column and key arrays of every row.
//
// Chunks are 64 KiB: small enough that malloc serves and reuses them from its heap (larger
// blocks would be fresh mmap()s, paid for in page faults on every request).

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace molt::proto::detail {

class arena {
public:
    static constexpr size_t chunk_size = 64 * 1024;

    [[nodiscard]] std::string_view copy(std::string_view text) {
        if (text.empty()) {
            return {};
        }
        char* p = static_cast<char*>(allocate(text.size(), 1));
        std::memcpy(p, text.data(), text.size());
        return {p, text.size()};
    }

    /// Copies trivially copyable elements into the arena.
    template <typename T>
    [[nodiscard]] std::span<const T> copy(std::span<const T> items) {
        static_assert(std::is_trivially_copyable_v<T>);
        if (items.empty()) {
            return {};
        }
        T* p = static_cast<T*>(allocate(items.size_bytes(), alignof(T)));
        std::memcpy(static_cast<void*>(p), items.data(), items.size_bytes());
        return {p, items.size()};
    }

    [[nodiscard]] void* allocate(size_t n, size_t align) {
        size_t pad = (align - reinterpret_cast<uintptr_t>(cur_) % align) % align;
        if (n + pad > left_) {
            if (n > chunk_size / 4) {
                // A large item gets a block of its own; the current chunk stays in use.
                big_.push_back(std::make_unique<char[]>(n));
                return big_.back().get();
            }
            chunks_.push_back(std::make_unique<char[]>(chunk_size));
            cur_ = chunks_.back().get();
            left_ = chunk_size;
            pad = 0;
        }
        char* p = cur_ + pad;
        cur_ += pad + n;
        left_ -= pad + n;
        return p;
    }

private:
    std::vector<std::unique_ptr<char[]>> chunks_;
    std::vector<std::unique_ptr<char[]>> big_;
    char* cur_ = nullptr;
    size_t left_ = 0;
};

}  // namespace molt::proto::detail
