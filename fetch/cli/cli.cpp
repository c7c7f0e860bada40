#include "molt/fetch/cli.hpp"

#include <string>

#include "molt/common/exit_code.hpp"
#include "molt/common/log.hpp"
#include "molt/common/version.hpp"

namespace molt::fetch {
namespace {

constexpr std::string_view root_help = R"(molt: the failback front end of the MOLT toolkit.

Usage:
  molt [command]

Available Commands:
  fetch       Run a fetch; --mode failback streams CockroachDB changes back to the original database
  help        Help about any command

Flags:
  -h, --help      help for molt
      --version   version for molt

Use "molt [command] --help" for more information about a command.
)";

constexpr std::string_view fetch_help =
    R"(Run a fetch. In failback mode (--mode failback), molt starts a replicator,
creates a CockroachDB changefeed that posts to it, and streams every change made on
CockroachDB back to the original PostgreSQL, MySQL or Oracle database.

Status: failback mode is not available in this build yet; the flags of MOLT Fetch
(--source, --target, --mode, --replicator-flags, --changefeeds-path, ...) arrive with it.

Usage:
  molt fetch [flags]

Flags:
  -h, --help   help for fetch
)";

// cobra's "Error: " prefix, which scripts recognise; printed once, not twice as MOLT did.
int usage_error(std::ostream& err, std::string_view message) {
    err << "Error: " << message << "\n";
    return to_int(exit_code::failure);
}

int run_fetch(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err) {
    for (const std::string_view arg : args) {
        if (arg == "--help" || arg == "-h") {
            out << fetch_help;
            return to_int(exit_code::ok);
        }
    }
    return usage_error(err,
                       "molt fetch is not available in this build yet: failback mode "
                       "(--mode failback) is still being built");
}

}  // namespace

int run_cli(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        if (args.size() >= 2 && args[0] == "help" && args[1] == "fetch") {
            out << fetch_help;
        } else {
            out << root_help;
        }
        return to_int(exit_code::ok);
    }
    if (args[0] == "--version" || args[0] == "version") {
        out << version_text("molt");
        return to_int(exit_code::ok);
    }
    if (args[0] == "fetch") {
        return run_fetch({args.begin() + 1, args.end()}, out, err);
    }
    if (!args[0].empty() && args[0].front() == '-') {
        return usage_error(err, "unknown flag: " + log::sanitize(args[0]));
    }
    return usage_error(err, "unknown command \"" + log::sanitize(args[0]) +
                                "\" for \"molt\"\nRun 'molt --help' for usage.");
}

}  // namespace molt::fetch
