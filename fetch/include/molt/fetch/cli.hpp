#pragma once
// The `molt` command line: dispatches subcommands, prints help and version, maps every outcome
// to an exit code (common/exit_code.hpp). Output goes to the given streams so tests can capture it.

#include <ostream>
#include <string_view>
#include <vector>

namespace molt::fetch {

[[nodiscard]] int run_cli(const std::vector<std::string_view>& args, std::ostream& out,
                          std::ostream& err);

}  // namespace molt::fetch
