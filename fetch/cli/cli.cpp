#include "molt/fetch/cli.hpp"

#include <string>

#include <fmt/format.h>

#include "molt/common/exit_code.hpp"
#include "molt/common/log.hpp"
#include "molt/common/version.hpp"
#include "molt/fetch/failback.hpp"
#include "molt/fetch/fetch_flags.hpp"

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

// cobra's "Error: " prefix, which scripts recognise; printed once, not twice as MOLT did.
int usage_error(std::ostream& err, std::string_view message) {
    err << "Error: " << message << "\n";
    return to_int(exit_code::failure);
}

int run_fetch(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err) {
    fetch_command command = parse_fetch_flags(args);
    if (command.help) {
        print_fetch_help(out);
        return to_int(exit_code::ok);
    }
    const fetch_config& cfg = command.config;
    log::options opts;
    opts.min_level = cfg.logging;
    opts.fmt = cfg.use_console_writer ? log::format::console : log::format::json;
    opts.sinks.push_back(log::stdout_sink());
    if (!cfg.log_file.empty()) {
        auto file = log::file_sink(cfg.log_file);
        if (file) {
            opts.sinks.push_back(std::move(file).value());
        } else {
            command.problems.push_back(fmt::format("--log-file: {}", file.error().message()));
        }
    }
    log::configure(std::move(opts));
    out.flush();
    return run_failback(cfg, std::move(command.problems), err);
}

}  // namespace

int run_cli(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        if (args.size() >= 2 && args[0] == "help" && args[1] == "fetch") {
            print_fetch_help(out);
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
