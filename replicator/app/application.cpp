#include "molt/replicator/app/application.hpp"

#include <iostream>

#include "molt/common/exit_code.hpp"

namespace molt::replicator {

int run_start(start_config config) {
    (void)config;
    std::cerr << "Error: replicator start is not available in this build yet\n";
    return to_int(exit_code::failure);
}

}  // namespace molt::replicator
