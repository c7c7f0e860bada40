#pragma once
// Build information printed by `molt --version` and `replicator --version`, and logged at
// startup.

#include <string>
#include <string_view>
#include <vector>

namespace molt {

struct build_info {
    std::string_view version;     ///< project version, e.g. "0.1.0"
    std::string_view commit;      ///< git commit the build came from, or "unknown"
    std::string_view build_type;  ///< CMake build type
    std::string_view compiler;    ///< compiler id and version
};

[[nodiscard]] const build_info& build() noexcept;

/// Target dialects compiled into this build, e.g. {"postgres", "mysql"}.
[[nodiscard]] std::vector<std::string_view> built_dialects();

/// The multi-line text of --version: "<program> version <v>" first (as cobra prints it), then
/// commit, build type, compiler and dialects.
[[nodiscard]] std::string version_text(std::string_view program);

}  // namespace molt
