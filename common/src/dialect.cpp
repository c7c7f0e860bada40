#include "molt/common/dialect.hpp"

namespace molt {

std::string_view display_name(dialect d) noexcept {
    switch (d) {
    case dialect::postgres: return "PostgreSQL";
    case dialect::mysql: return "MySQL";
    case dialect::oracle: return "Oracle";
    }
    return "unknown";
}

std::string_view to_string(dialect d) noexcept {
    switch (d) {
    case dialect::postgres: return "postgres";
    case dialect::mysql: return "mysql";
    case dialect::oracle: return "oracle";
    }
    return "unknown";
}

}  // namespace molt
