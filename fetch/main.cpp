// molt: the failback front end. All behaviour lives in molt::fetch_lib.
#include <csignal>
#include <iostream>
#include <string_view>
#include <vector>

#include "molt/fetch/cli.hpp"

int main(int argc, char** argv) {
    // A closed stdout (molt ... | tee, then Ctrl-C) must not kill molt before it has stopped
    // the replicator: writes fail with EPIPE instead.
    std::signal(SIGPIPE, SIG_IGN);
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    return molt::fetch::run_cli(args, std::cout, std::cerr);
}
