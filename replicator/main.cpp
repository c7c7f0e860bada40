// replicator: the changefeed webhook daemon. All behaviour lives in molt::replicator_app.
#include <malloc.h>

#include <iostream>
#include <string_view>
#include <vector>

#include "molt/replicator/cli.hpp"

int main(int argc, char** argv) {
    // Each request allocates and frees a few MiB (its body, decoded rows, statements). With
    // glibc's defaults that memory went back to the kernel after every request (free space
    // above 128 KiB trimmed; large blocks mapped and unmapped) and was faulted in again, zeroed,
    // by the next: 12.8 % of the replicator's CPU samples in page faults (bench/, immediate
    // mode, perf), 5.4 % once up to 64 MiB stay free per arena and blocks below 32 MiB come from
    // the heap; measured in bench/README.md ("Changes measured since").
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    return molt::replicator::run_cli(args, std::cout, std::cerr);
}
