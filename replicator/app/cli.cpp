#include "molt/replicator/cli.hpp"

#include <string>

#include "molt/common/exit_code.hpp"
#include "molt/common/log.hpp"
#include "molt/common/version.hpp"
#include "molt/replicator/app/application.hpp"
#include "molt/replicator/app/start_config.hpp"
#include "molt/replicator/script/userscript.hpp"

namespace molt::replicator {
namespace {

constexpr std::string_view root_help =
    R"(replicator: applies CockroachDB changefeeds to PostgreSQL, MySQL/MariaDB and Oracle.

Usage:
  replicator [command]

Available Commands:
  make-jwt    Make a JSON Web Token that lets a changefeed write to given schemas
  start       Start the changefeed webhook server
  userscript  Print the userscript API's TypeScript declarations and an example
  version     Print the version and build information
  help        Help about any command

Flags:
  -h, --help      help for replicator
      --version   version for replicator

Use "replicator [command] --help" for more information about a command.
)";

int usage_error(std::ostream& err, std::string_view message) {
    err << "Error: " << message << "\n";
    return to_int(exit_code::failure);
}

constexpr std::string_view userscript_help =
    R"(A userscript (replicator start --userscript FILE.ts) filters, changes and routes rows on their
way to the target, written in TypeScript or JavaScript against the replicator@v2 API below.
The replicator strips its types with esbuild (on PATH) and runs it in an embedded JavaScript
engine; files of the script's folder can be imported. See replicator/README.md, "Userscripts".

Usage:
  replicator userscript [--api]

Flags:
      --api   print only the API's declarations (replicator userscript --api > replicator@v2.d.ts)
)";

int run_userscript(const std::vector<std::string_view>& args, std::ostream& out,
                   std::ostream& err) {
    if (args.size() == 1 && args[0] == "--api") {
        out << script::api_declarations();
        return to_int(exit_code::ok);
    }
    if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
        out << userscript_help;
        return to_int(exit_code::ok);
    }
    if (!args.empty()) {
        return usage_error(err, "unknown argument " + log::sanitize(args[0]) +
                                    " for \"replicator userscript\" (only --api)");
    }
    out << userscript_help << "\n===== VVV replicator@v2.d.ts VVV =====\n\n"
        << script::api_declarations() << "\n===== VVV example-userscript.ts VVV ===== \n\n"
        << script::example_script();
    return to_int(exit_code::ok);
}

}  // namespace

int run_cli(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        if (args.size() >= 2 && args[0] == "help" && args[1] == "start") {
            print_start_help(out);
        } else if (args.size() >= 2 && args[0] == "help" && args[1] == "make-jwt") {
            return run_make_jwt({"--help"}, out, err);
        } else {
            out << root_help;
        }
        return to_int(exit_code::ok);
    }
    if (args[0] == "--version" || args[0] == "version") {
        out << version_text("replicator");
        return to_int(exit_code::ok);
    }
    if (args[0] == "userscript") {
        return run_userscript({args.begin() + 1, args.end()}, out, err);
    }
    if (args[0] == "make-jwt") {
        return run_make_jwt({args.begin() + 1, args.end()}, out, err);
    }
    if (args[0] == "start") {
        const std::vector<std::string_view> rest(args.begin() + 1, args.end());
        if (wants_help(rest)) {
            print_start_help(out);
            return to_int(exit_code::ok);
        }
        auto config = parse_start_flags(rest);
        if (!config) {
            return usage_error(err, config.error().message());
        }
        if (config->dry_run) {
            // The userscript too, as it would load (molt's preflight runs this): a script that
            // does not load is a command line that does not start.
            if (!config->userscript.empty()) {
                auto loaded =
                    script::userscript::load(config->userscript, userscript_limits(*config));
                if (!loaded) {
                    return usage_error(err, loaded.error().message());
                }
                if (auto checked = with_script_options(*config, **loaded); !checked) {
                    return usage_error(err, checked.error().message());
                }
            }
            return to_int(exit_code::ok);
        }
        return run_start(std::move(config).value());
    }
    if (!args[0].empty() && args[0].front() == '-') {
        return usage_error(err, "unknown flag: " + log::sanitize(args[0]));
    }
    return usage_error(err, "unknown command \"" + log::sanitize(args[0]) +
                                "\" for \"replicator\"\nRun 'replicator --help' for usage.");
}

}  // namespace molt::replicator
