#pragma once
// `molt fetch --mode failback`: check everything, start the replicator, create or reuse the
// changefeed, supervise until SIGTERM/SIGINT. Returns the process exit code.

#include <ostream>
#include <string>
#include <vector>

#include "molt/fetch/fetch_flags.hpp"

namespace molt::fetch {

/// `problems` are those the flag parser found; the run adds its own preflight problems and
/// reports all of them together on `err` (exit 1) before starting anything.
[[nodiscard]] int run_failback(const fetch_config& config, std::vector<std::string> problems,
                               std::ostream& err);

}  // namespace molt::fetch
