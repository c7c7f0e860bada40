// molt-fault-proxy: molt::test::fault_proxy as a process, for shell tests. See --help.
#include <signal.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "molt/test/fault_proxy.hpp"

namespace {

constexpr std::string_view help =
    R"(molt-fault-proxy: a TCP proxy that injects network faults, for tests.

Usage: molt-fault-proxy --target HOST:PORT [--listen IP:PORT] [--port-file FILE]
                        [--control IP:PORT] [--control-port-file FILE]

  --target HOST:PORT         where each connection is forwarded
  --listen IP:PORT           where clients connect (default 127.0.0.1:0, a free port)
  --port-file FILE           write the listening port there (written whole, then renamed)
  --control IP:PORT          the control port (default 127.0.0.1:0, a free port)
  --control-port-file FILE   write the control port there

The control port takes one line per command and answers one line (`ok`, the stats line,
or `error: ...`):
  pass                           forward everything (clears every fault)
  latency MS                     hold each chunk MS milliseconds, in each direction
  reset [refuse]                 RST every open connection; `refuse`: also each new one, until pass
  blackhole                      accept, forward nothing, close nothing, until pass
  cut-after N [up|down|either]   RST a connection once N bytes have passed in a direction
  stats                          accepted=A active=O up=U down=D resets=R mode=... latency_ms=...
From bash: exec 3<>/dev/tcp/127.0.0.1/$CONTROL; echo blackhole >&3; read -r reply <&3
SIGTERM or SIGINT closes every connection and exits 0.
)";

std::optional<std::pair<std::string, uint16_t>> host_port(std::string_view text) {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
        return std::nullopt;
    }
    unsigned long port = 0;
    try {
        size_t used = 0;
        const std::string digits(text.substr(colon + 1));
        port = std::stoul(digits, &used);
        if (used != digits.size() || port > 65535) {
            return std::nullopt;
        }
    } catch (const std::exception&) {
        return std::nullopt;
    }
    return std::pair{std::string(text.substr(0, colon)), static_cast<uint16_t>(port)};
}

// Writes "PORT\n" to path through a temporary file and a rename, so a reader polling for the
// file never sees it half written.
void write_port(const std::string& path, uint16_t port) {
    const std::string temporary = path + ".tmp";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << port << '\n';
        if (!out.flush()) {
            throw std::runtime_error("cannot write " + temporary);
        }
    }
    std::filesystem::rename(temporary, path);
}

int usage_error(const std::string& message) {
    std::cerr << "molt-fault-proxy: " << message << " (see --help)\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::optional<std::pair<std::string, uint16_t>> target;
    std::pair<std::string, uint16_t> listen{"127.0.0.1", 0};
    std::pair<std::string, uint16_t> control{"127.0.0.1", 0};
    std::string port_file;
    std::string control_port_file;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::cout << help;
            return 0;
        }
        if (i + 1 >= argc) {
            return usage_error("unknown argument or missing value: " + std::string(arg));
        }
        const std::string_view value = argv[++i];
        if (arg == "--port-file") {
            port_file = value;
        } else if (arg == "--control-port-file") {
            control_port_file = value;
        } else if (arg == "--target" || arg == "--listen" || arg == "--control") {
            const auto parsed = host_port(value);
            if (!parsed) {
                return usage_error(std::string(arg) + " takes HOST:PORT, not \"" +
                                   std::string(value) + "\"");
            }
            if (arg == "--target") {
                target = *parsed;
            } else {
                (arg == "--listen" ? listen : control) = *parsed;
            }
        } else {
            return usage_error("unknown argument: " + std::string(arg));
        }
    }
    if (!target) {
        return usage_error("--target HOST:PORT is required");
    }

    // Block the stop signals before the proxy's thread starts, so only sigwait sees them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    try {
        molt::test::fault_proxy proxy(target->first, target->second, listen.first, listen.second);
        const uint16_t control_port = proxy.listen_control(control.first, control.second);
        if (!port_file.empty()) {
            write_port(port_file, proxy.port());
        }
        if (!control_port_file.empty()) {
            write_port(control_port_file, control_port);
        }
        std::cout << "molt-fault-proxy: " << listen.first << ":" << proxy.port() << " -> "
                  << target->first << ":" << target->second << ", control on " << control.first
                  << ":" << control_port << std::endl;
        int signal = 0;
        sigwait(&stop_signals, &signal);
        std::cout << "molt-fault-proxy: stopping on signal " << signal << ": " << proxy.stats_line()
                  << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "molt-fault-proxy: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
