#include "molt/replicator/cli.hpp"

#include <string>

#include "molt/common/exit_code.hpp"
#include "molt/common/log.hpp"
#include "molt/common/version.hpp"

namespace molt::replicator {
namespace {

constexpr std::string_view root_help =
    R"(replicator: applies CockroachDB changefeeds to PostgreSQL, MySQL/MariaDB and Oracle.

Usage:
  replicator [command]

Available Commands:
  start       Start the changefeed webhook server
  version     Print the version and build information
  help        Help about any command

Flags:
  -h, --help      help for replicator
      --version   version for replicator

Use "replicator [command] --help" for more information about a command.
)";

constexpr std::string_view start_help =
    R"(Start the changefeed webhook server: an HTTPS endpoint that a CockroachDB
changefeed (webhook-https://...) posts to, writing every change into the target database.

Status: not available in this build yet; the flags of cockroachdb/replicator
(--bindAddr, --targetConn, --stagingConn, --stagingSchema, --tlsCertificate, ...) arrive with it.

Usage:
  replicator start [flags]

Flags:
  -h, --help   help for start
)";

int usage_error(std::ostream& err, std::string_view message) {
    err << "Error: " << message << "\n";
    return to_int(exit_code::failure);
}

}  // namespace

int run_cli(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        out << (args.size() >= 2 && args[0] == "help" && args[1] == "start" ? start_help
                                                                            : root_help);
        return to_int(exit_code::ok);
    }
    if (args[0] == "--version" || args[0] == "version") {
        out << version_text("replicator");
        return to_int(exit_code::ok);
    }
    if (args[0] == "start") {
        for (size_t i = 1; i < args.size(); ++i) {
            if (args[i] == "--help" || args[i] == "-h") {
                out << start_help;
                return to_int(exit_code::ok);
            }
        }
        return usage_error(err, "replicator start is not available in this build yet");
    }
    if (!args[0].empty() && args[0].front() == '-') {
        return usage_error(err, "unknown flag: " + log::sanitize(args[0]));
    }
    return usage_error(err, "unknown command \"" + log::sanitize(args[0]) +
                                "\" for \"replicator\"\nRun 'replicator --help' for usage.");
}

}  // namespace molt::replicator
