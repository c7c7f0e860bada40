#pragma once
// Process exit codes shared by `molt` and `replicator`. They match the originals, which scripts
// already test: 0 for success and for a stop requested by SIGINT/SIGTERM, 1 for every error
// (bad flags, failed preflight, lost child, fatal runtime error). A failed MOLT_CHECK aborts
// (SIGABRT, shell status 134), which is never a normal outcome.

namespace molt {

enum class exit_code : int {
    ok = 0,       ///< finished, or stopped cleanly on SIGINT/SIGTERM
    failure = 1,  ///< any error; the reason is on stderr / in the log
};

[[nodiscard]] constexpr int to_int(exit_code code) noexcept {
    return static_cast<int>(code);
}

}  // namespace molt
