#pragma once
// A monotonic byte arena: stable pointers, freed all at once. Holds decoded strings with escapes,
// canonical key text and nested JSON text of one batch.

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace molt::proto::detail {

class arena {
public:
    explicit arena(size_t first_chunk = 16 * 1024) : next_chunk_(first_chunk) {}

    [[nodiscard]] std::string_view copy(std::string_view text) {
        if (text.empty()) {
            return {};
        }
        char* p = allocate(text.size());
        std::memcpy(p, text.data(), text.size());
        return {p, text.size()};
    }

    [[nodiscard]] char* allocate(size_t n) {
        if (n > left_) {
            const size_t size = n > next_chunk_ ? n : next_chunk_;
            chunks_.push_back(std::make_unique<char[]>(size));
            cur_ = chunks_.back().get();
            left_ = size;
            if (next_chunk_ < 1024 * 1024) {
                next_chunk_ *= 2;
            }
        }
        char* p = cur_;
        cur_ += n;
        left_ -= n;
        return p;
    }

private:
    std::vector<std::unique_ptr<char[]>> chunks_;
    char* cur_ = nullptr;
    size_t left_ = 0;
    size_t next_chunk_;
};

}  // namespace molt::proto::detail
