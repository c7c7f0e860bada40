#pragma once
// The composition root of `replicator start`: wires the target, the apply path and the HTTPS
// server from a checked configuration, runs until SIGTERM/SIGINT, and shuts down within the grace
// period. The only place that names concrete classes.

#include <ostream>
#include <string_view>
#include <vector>

#include "molt/replicator/app/start_config.hpp"
#include "molt/replicator/script/userscript.hpp"

namespace molt::replicator {

/// Runs the server; returns the process exit code (0 after a clean stop).
[[nodiscard]] int run_start(start_config config);

/// The userscript's limits from --userscriptTimeout and --userscriptMaxHeap.
[[nodiscard]] script::limits userscript_limits(const start_config& config);

/// `config` with the flags the loaded userscript's setOptions set (replicator@v1) over the
/// command line's, checked again as a whole; the error names the script.
[[nodiscard]] result<start_config> with_script_options(const start_config& config,
                                                       const script::userscript& userscript);

/// `replicator make-jwt`: the arguments after "make-jwt"; returns the exit code.
[[nodiscard]] int run_make_jwt(const std::vector<std::string_view>& args, std::ostream& out,
                               std::ostream& err);

}  // namespace molt::replicator
