#pragma once
// `molt fetch` flags, spelled as MOLT Fetch spells them (kebab-case), parsed the way cobra/pflag
// parses them: `--name value` or `--name=value` for strings, `--name` or `--name=true|false` for
// booleans (a boolean never takes the next word as its value). parse_fetch_flags() checks every
// flag alone and together and reports all problems at once; it touches no network (files named
// by flags are read: --changefeeds-path).

#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "molt/common/conn_url.hpp"
#include "molt/common/log.hpp"
#include "molt/common/net_address.hpp"
#include "molt/common/result.hpp"
#include "molt/proto/changefeed_override.hpp"

namespace molt::fetch {

struct fetch_config {
    std::optional<conn_url> source;  ///< --source: the CockroachDB cluster (unset if invalid)
    std::optional<conn_url> target;  ///< --target: the original database (unset if invalid)
    std::string schema_filter = ".*";
    std::string table_filter = ".*";
    std::string table_exclusion_filter;
    bool case_sensitive = false;
    std::string replicator_flags;  ///< --replicator-flags, as written
    std::string changefeeds_path;
    proto::changefeed_settings changefeed;  ///< defaults merged with --changefeeds-path
    bool allow_tls_mode_disable = false;
    log::level logging = log::level::info;
    std::string log_file;  ///< "" or "stdout": stdout only; otherwise stdout and the file
    bool use_console_writer = false;
    net_address metrics_listen_addr{"127.0.0.1", 3030};
    bool non_interactive = false;
    // Ours.
    std::string replicator_path;  ///< empty: next to molt, then PATH
    bool cancel_changefeed_on_exit = false;
    std::chrono::nanoseconds progress_interval = std::chrono::seconds(10);
    std::chrono::nanoseconds replicator_ready_timeout = std::chrono::seconds(60);
    std::chrono::nanoseconds replicator_stop_timeout = std::chrono::seconds(60);
    int replicator_max_restarts = 5;
    std::chrono::nanoseconds connect_timeout = std::chrono::seconds(15);
};

/// What the command line asked for: help, or a run with what could be parsed, and every
/// problem found (the run must not start unless `problems` is empty; later checks add theirs
/// so that the user sees all of them at once).
struct fetch_command {
    bool help = false;
    fetch_config config;
    std::vector<std::string> problems;
};

[[nodiscard]] fetch_command parse_fetch_flags(const std::vector<std::string_view>& args);

void print_fetch_help(std::ostream& out);

}  // namespace molt::fetch
