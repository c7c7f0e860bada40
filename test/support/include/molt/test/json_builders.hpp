#pragma once
// Short builders for changefeed message values in tests.

#include <cstdint>
#include <string>
#include <vector>

#include "molt/proto/json.hpp"

namespace molt::test {

inline proto::json obj(std::vector<proto::json::member> members) {
    return proto::json::object(std::move(members));
}
inline proto::json num(int64_t n) {
    return proto::json::number(n);
}
inline proto::json str(std::string s) {
    return proto::json::string(std::move(s));
}
inline proto::json key(std::vector<proto::json> values) {
    return proto::json::array(std::move(values));
}

}  // namespace molt::test
