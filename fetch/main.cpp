// molt: the failback front end. All behaviour lives in molt::fetch_lib.
#include <iostream>
#include <string_view>
#include <vector>

#include "molt/fetch/cli.hpp"

int main(int argc, char** argv) {
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    return molt::fetch::run_cli(args, std::cout, std::cerr);
}
