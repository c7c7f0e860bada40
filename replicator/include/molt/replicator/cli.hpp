#pragma once
// The `replicator` command line: subcommands, help, version, exit codes.

#include <ostream>
#include <string_view>
#include <vector>

namespace molt::replicator {

[[nodiscard]] int run_cli(const std::vector<std::string_view>& args, std::ostream& out,
                          std::ostream& err);

}  // namespace molt::replicator
