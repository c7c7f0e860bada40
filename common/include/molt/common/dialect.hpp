#pragma once
// The database products we talk to. CockroachDB speaks the PostgreSQL dialect; it is told apart
// from PostgreSQL after connecting (SELECT version()), not by its connection string.

#include <string_view>

namespace molt {

enum class dialect { postgres, mysql, oracle };

/// Product name as MOLT prints it: "PostgreSQL", "MySQL", "Oracle".
[[nodiscard]] std::string_view display_name(dialect d) noexcept;
/// Lower-case key: "postgres", "mysql", "oracle".
[[nodiscard]] std::string_view to_string(dialect d) noexcept;

}  // namespace molt
