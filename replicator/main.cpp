// replicator: the changefeed webhook daemon. All behaviour lives in molt::replicator_app.
#include <iostream>
#include <string_view>
#include <vector>

#include "molt/replicator/cli.hpp"

int main(int argc, char** argv) {
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    return molt::replicator::run_cli(args, std::cout, std::cerr);
}
