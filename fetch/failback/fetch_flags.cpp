#include "molt/fetch/fetch_flags.hpp"

#include <regex.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "molt/common/duration.hpp"
#include "molt/common/flag_text.hpp"

namespace molt::fetch {
namespace {

enum class kind { string, boolean, duration, integer };

struct flag {
    std::string_view name;
    kind type;
    std::string_view default_text;
    std::string_view help;
};

// In help order. MOLT's names first, then ours.
constexpr flag flags[] = {
    {"source", kind::string, "",
     "the CockroachDB cluster to fail back from (postgres://user@host:26257/db?sslmode=...); "
     "required"},
    {"target", kind::string, "",
     "the original database to fail back to: postgres://..., mysql://... (URL or "
     "user:pass@tcp(host:port)/db); required"},
    {"mode", kind::string, "data-load",
     "what to do; this molt does failback only, so it must be \"failback\""},
    {"schema-filter", kind::string, ".*",
     "POSIX regular expression: schemas whose tables are replicated (whole name; case-"
     "insensitive unless --case-sensitive)"},
    {"table-filter", kind::string, ".*",
     "POSIX regular expression: tables to replicate (whole name), e.g. 'employees|payments'"},
    {"table-exclusion-filter", kind::string, "",
     "POSIX regular expression: tables not to replicate (whole name; may not be .*)"},
    {"case-sensitive", kind::boolean, "", "compare schema and table names case-sensitively"},
    {"replicator-flags", kind::string, "",
     "flags for the replicator, one string split as a shell would (quotes removed); they come "
     "last, so they win over molt's, e.g. '--stagingSchema _replicator_1739996035106984000 "
     "--tlsCertificate ./certs/server.crt --tlsPrivateKey ./certs/server.key'"},
    {"changefeeds-path", kind::string, "",
     "JSON file overriding the changefeed's defaults: host, port, sink_query_parameters "
     "(client_cert, client_key, ca_cert), resolved, min_checkpoint_frequency, initial_scan, "
     "webhook_sink_config, webhook_client_timeout"},
    {"allow-tls-mode-disable", kind::boolean, "",
     "allow connections without TLS (sslmode=disable or unset), and the insecure default "
     "changefeed (webhook-https://localhost:30004, insecure_tls_skip_verify=true) when "
     "--changefeeds-path is not given"},
    {"logging", kind::string, "info", "log level: trace, debug, info, warn, error, fatal, panic"},
    {"log-file", kind::string, "",
     "also write the log to this file (appended); empty or \"stdout\": stdout only"},
    {"use-console-writer", kind::boolean, "", "human-readable log lines instead of JSON lines"},
    {"metrics-listen-addr", kind::string, "127.0.0.1:3030",
     "serve /metrics (Prometheus), /healthz and /status (JSON) here; empty: off"},
    {"non-interactive", kind::boolean, "",
     "never prompt (failback never does; accepted for MOLT command lines)"},
    {"replicator-path", kind::string, "",
     "the replicator executable; default: next to molt (./replicator, ./bin/replicator), then "
     "PATH"},
    {"cancel-changefeed-on-exit", kind::boolean, "",
     "cancel the changefeed when molt stops (by default it is kept, as MOLT does, so a later "
     "run resumes it)"},
    {"progress-interval", kind::duration, "10s", "how often a progress line is logged"},
    {"replicator-ready-timeout", kind::duration, "1m0s",
     "how long the replicator may take to answer /_/healthz after it is started"},
    {"replicator-stop-timeout", kind::duration, "1m0s",
     "how long the replicator may take to drain after SIGTERM before it is killed"},
    {"replicator-max-restarts", kind::integer, "5",
     "restarts of a replicator that exits unexpectedly, with backoff, before molt gives up "
     "(exit 1)"},
    {"connect-timeout", kind::duration, "15s",
     "the longest wait for a database connection or one of molt's own statements"},
};

// MOLT flags that mean something only in its data-movement modes.
constexpr std::string_view data_mode_flags[] = {
    "bucket-path",
    "local-path",
    "local-path-listen-addr",
    "local-path-crdb-access-addr",
    "direct-copy",
    "use-copy",
    "compression",
    "cleanup",
    "source-cdb",
    "export-concurrency",
    "table-concurrency",
    "row-batch-size",
    "flush-size",
    "flush-rows",
    "fetch-id",
    "continuation-token",
    "continuation-file-name",
    "pglogical-replication-slot-name",
    "pglogical-replication-slot-plugin",
    "pglogical-publication-name",
    "pglogical-publication-and-slot-drop-and-recreate",
    "ignore-replication-check",
};

// MOLT flags accepted for compatibility that change nothing here.
constexpr std::string_view accepted_flags[] = {"pprof-listen-addr", "opt-out-telemetry",
                                               "metrics-scrape-interval", "table-handling"};
constexpr std::string_view accepted_bool_flags[] = {
    "opt-out-telemetry",
    "direct-copy",
    "use-copy",
    "cleanup",
    "pglogical-publication-and-slot-drop-and-recreate",
    "ignore-replication-check"};

const flag* find_flag(std::string_view name) {
    for (const flag& f : flags) {
        if (f.name == name) {
            return &f;
        }
    }
    return nullptr;
}

template <typename Range>
bool contains(const Range& r, std::string_view name) {
    return std::find(std::begin(r), std::end(r), name) != std::end(r);
}

std::optional<std::string> regex_problem(std::string_view flag_name, const std::string& pattern) {
    regex_t re;
    const std::string anchored = "^(" + pattern + ")$";
    const int rc = regcomp(&re, anchored.c_str(), REG_EXTENDED | REG_NOSUB);
    if (rc == 0) {
        regfree(&re);
        return std::nullopt;
    }
    char buffer[256];
    regerror(rc, &re, buffer, sizeof buffer);
    regfree(&re);
    return fmt::format("--{}: \"{}\" is not a POSIX regular expression: {}", flag_name, pattern,
                       buffer);
}

// MOLT's wording (PR cockroachdb/molt#256), naming the connection.
std::optional<std::string> tls_problem(std::string_view flag_name, const conn_url& url) {
    const ssl_mode mode = url.tls().mode;
    if (mode == ssl_mode::unset) {
        return fmt::format(
            "--{}: TLS mode is set to an insecure default. If you are unable to connect via TLS, "
            "use the --allow-tls-mode-disable flag to override this check.",
            flag_name);
    }
    if (mode == ssl_mode::disable || mode == ssl_mode::allow || mode == ssl_mode::prefer) {
        return fmt::format(
            "--{}: TLS mode is set as insecure (sslmode={}). If a secure TLS connection is not "
            "possible, enable the --allow-tls-mode-disable flag to override this check.",
            flag_name, to_string(mode));
    }
    return std::nullopt;
}

}  // namespace

void print_fetch_help(std::ostream& out) {
    out << "Run a fetch. In failback mode (--mode failback), molt checks the source, the target "
           "and the\ncertificates, starts a replicator, creates (or resumes) a CockroachDB "
           "changefeed that posts\nto it, and streams every change made on CockroachDB back to "
           "the original PostgreSQL,\nMySQL or Oracle database until it is stopped with SIGTERM or "
           "SIGINT (exit 0).\n\n"
           "Usage:\n  molt fetch --mode failback --source <crdb> --target <original> [flags]\n\n"
           "Flags:\n";
    size_t width = 0;
    for (const flag& f : flags) {
        width = std::max(width, f.name.size() + 17);  // "      --" name " duration"
    }
    for (const flag& f : flags) {
        const std::string_view type = f.type == kind::string     ? "string"
                                      : f.type == kind::duration ? "duration"
                                      : f.type == kind::integer  ? "int"
                                                                 : "";
        std::string text(f.help);
        if (!f.default_text.empty()) {
            text += f.type == kind::string ? fmt::format(" (default \"{}\")", f.default_text)
                                           : fmt::format(" (default {})", f.default_text);
        }
        out << fmt::format("{:<{}} {}\n", fmt::format("      --{} {}", f.name, type), width, text);
    }
    out << fmt::format("{:<{}} {}\n", "  -h, --help", width, "help for fetch");
}

fetch_command parse_fetch_flags(const std::vector<std::string_view>& args) {
    fetch_command command;
    std::vector<std::string>& problems = command.problems;
    std::map<std::string, std::string, std::less<>> values;

    for (size_t i = 0; i < args.size(); ++i) {
        const std::string_view a = args[i];
        if (a == "--help" || a == "-h") {
            command.help = true;
            return command;
        }
        if (a.size() < 3 || a.substr(0, 2) != "--") {
            problems.push_back(
                fmt::format("unexpected argument \"{}\" (flags are written --name value or "
                            "--name=value)",
                            a));
            continue;
        }
        const size_t eq = a.find('=');
        const std::string name(a.substr(2, eq == std::string_view::npos ? a.npos : eq - 2));
        const std::optional<std::string> inline_value =
            eq == std::string_view::npos ? std::nullopt
                                         : std::optional<std::string>(a.substr(eq + 1));
        const flag* f = find_flag(name);
        const bool boolean =
            (f != nullptr && f->type == kind::boolean) || contains(accepted_bool_flags, name);
        if (f == nullptr && !contains(accepted_flags, name) && !contains(data_mode_flags, name)) {
            problems.push_back(fmt::format("unknown flag: --{}", name));
            continue;
        }
        std::string value;
        if (inline_value) {
            value = *inline_value;
        } else if (boolean) {
            value = "true";
        } else if (i + 1 < args.size()) {
            value = std::string(args[++i]);
        } else {
            problems.push_back(fmt::format("flag needs an argument: --{}", name));
            continue;
        }
        if (values.count(name) != 0) {
            problems.push_back(fmt::format("--{} is given more than once", name));
            continue;
        }
        values.emplace(name, std::move(value));
    }

    for (const std::string_view name : data_mode_flags) {
        if (values.count(name) != 0) {
            problems.push_back(fmt::format(
                "--{} is a flag of MOLT's data-movement modes; failback mode does not use it",
                name));
        }
    }
    if (auto it = values.find("table-handling"); it != values.end() && it->second != "none") {
        problems.push_back(fmt::format(
            "--table-handling {}: failback never creates, drops or truncates target tables; "
            "only \"none\" is accepted",
            it->second));
    }

    auto text = [&](std::string_view name) -> std::optional<std::string> {
        const auto it = values.find(name);
        return it == values.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    fetch_config& cfg = command.config;
    auto boolean = [&](std::string_view name, bool& out) {
        if (auto v = text(name)) {
            if (auto b = parse_flag_bool(*v)) {
                out = *b;
            } else {
                problems.push_back(fmt::format("--{}: \"{}\" is not true or false", name, *v));
            }
        }
    };
    auto duration = [&](std::string_view name, std::chrono::nanoseconds& out) {
        if (auto v = text(name)) {
            auto d = parse_duration(*v);
            if (!d) {
                problems.push_back(fmt::format("--{}: {}", name, d.error().message()));
            } else if (d->count() <= 0) {
                problems.push_back(fmt::format("--{} must be positive", name));
            } else {
                out = *d;
            }
        }
    };

    const auto mode = text("mode");
    if (!mode) {
        problems.emplace_back(
            "--mode failback is required: this molt does failback only (MOLT's data-load and "
            "replication modes are not part of it)");
    } else if (*mode != "failback") {
        problems.push_back(fmt::format(
            "--mode {}: this molt does failback only (--mode failback); MOLT's data-load, "
            "export-only, import-only and replication modes are not part of it",
            *mode));
    }

    std::vector<std::string> missing;
    for (const std::string_view name : {"source", "target"}) {
        if (!text(name)) {
            missing.push_back(fmt::format("\"{}\"", name));
        }
    }
    if (!missing.empty()) {
        problems.push_back(fmt::format("required flag(s) {} not set",
                                       fmt::join(missing.begin(), missing.end(), ", ")));
    }
    boolean("allow-tls-mode-disable", cfg.allow_tls_mode_disable);
    std::optional<conn_url> source;
    std::optional<conn_url> target;
    for (const auto& [name, slot] :
         {std::pair<std::string_view, std::optional<conn_url>*>{"source", &source},
          {"target", &target}}) {
        const auto v = text(name);
        if (!v) {
            continue;
        }
        if (v->empty()) {
            problems.push_back(fmt::format("--{}: empty connection string", name));
            continue;
        }
        auto url = conn_url::parse(*v);
        if (!url) {
            problems.push_back(fmt::format("--{}: {}", name, url.error().message()));
            continue;
        }
        // An Oracle connection's TLS is the Oracle client's (sqlnet.ora, a wallet): its URL has
        // no sslmode to check.
        if (!cfg.allow_tls_mode_disable && url->dialect() != dialect::oracle) {
            if (auto p = tls_problem(name, *url)) {
                problems.push_back(*p);
            }
        }
        *slot = std::move(url).value();
    }
    if (source && source->dialect() != dialect::postgres) {
        problems.push_back(fmt::format(
            "--source must be the CockroachDB cluster (postgres://...), not a {} connection "
            "string: in failback the source is CockroachDB and the target is the original "
            "database",
            display_name(source->dialect())));
    }

    cfg.schema_filter = text("schema-filter").value_or(cfg.schema_filter);
    cfg.table_filter = text("table-filter").value_or(cfg.table_filter);
    cfg.table_exclusion_filter = text("table-exclusion-filter").value_or("");
    boolean("case-sensitive", cfg.case_sensitive);
    for (const auto& [name, pattern] :
         {std::pair<std::string_view, const std::string*>{"schema-filter", &cfg.schema_filter},
          {"table-filter", &cfg.table_filter},
          {"table-exclusion-filter", &cfg.table_exclusion_filter}}) {
        if (pattern->empty() && name != "table-exclusion-filter") {
            problems.push_back(fmt::format("--{} must not be empty (the default is .*)", name));
        } else if (!pattern->empty()) {
            if (auto p = regex_problem(name, *pattern)) {
                problems.push_back(*p);
            }
        }
    }
    if (cfg.table_exclusion_filter == ".*") {
        problems.emplace_back(
            "--table-exclusion-filter may not be .* (it would exclude every table)");
    }

    cfg.replicator_flags = text("replicator-flags").value_or("");
    cfg.changefeeds_path = text("changefeeds-path").value_or("");
    if (!cfg.changefeeds_path.empty()) {
        std::ifstream in(cfg.changefeeds_path);
        if (!in) {
            problems.push_back(
                fmt::format("--changefeeds-path: cannot read \"{}\"", cfg.changefeeds_path));
        } else {
            std::stringstream buffer;
            buffer << in.rdbuf();
            auto settings = proto::parse_changefeed_override(buffer.str());
            if (!settings) {
                problems.push_back(fmt::format("{} (in \"{}\")", settings.error().message(),
                                               cfg.changefeeds_path));
            } else {
                cfg.changefeed = std::move(settings).value();
            }
        }
    } else if (!cfg.allow_tls_mode_disable) {
        problems.emplace_back(
            "failback mode needs --changefeeds-path (the changefeed's webhook host, port and "
            "certificates) or --allow-tls-mode-disable (the insecure default: "
            "webhook-https://localhost:30004 with insecure_tls_skip_verify=true, and "
            "--replicator-flags '--tlsSelfSigned --disableAuthentication')");
    }

    if (auto v = text("logging")) {
        auto lvl = log::parse_level(*v);
        if (lvl) {
            cfg.logging = *lvl;
        } else {
            problems.push_back(fmt::format("--logging: {}", lvl.error().message()));
        }
    }
    cfg.log_file = text("log-file").value_or("");
    if (cfg.log_file == "stdout") {
        cfg.log_file.clear();
    }
    boolean("use-console-writer", cfg.use_console_writer);
    if (auto v = text("metrics-listen-addr")) {
        if (v->empty()) {
            cfg.metrics_listen_addr.port = 0;
            cfg.metrics_listen_addr.host = "off";
        } else if (auto a = parse_net_address(*v)) {
            cfg.metrics_listen_addr = *a;
        } else {
            problems.push_back(fmt::format("--metrics-listen-addr: {}", a.error().message()));
        }
    }
    boolean("non-interactive", cfg.non_interactive);
    cfg.replicator_path = text("replicator-path").value_or("");
    boolean("cancel-changefeed-on-exit", cfg.cancel_changefeed_on_exit);
    duration("progress-interval", cfg.progress_interval);
    duration("replicator-ready-timeout", cfg.replicator_ready_timeout);
    duration("replicator-stop-timeout", cfg.replicator_stop_timeout);
    duration("connect-timeout", cfg.connect_timeout);
    if (cfg.connect_timeout < std::chrono::seconds(1)) {
        problems.emplace_back("--connect-timeout must be at least 1s");
    }
    if (cfg.connect_timeout < std::chrono::seconds(1)) {
        problems.emplace_back("--connect-timeout must be at least 1s");
    }
    if (auto v = text("replicator-max-restarts")) {
        const bool digits =
            !v->empty() && v->size() <= 6 &&
            std::all_of(v->begin(), v->end(), [](char c) { return c >= '0' && c <= '9'; });
        if (digits) {
            cfg.replicator_max_restarts = std::stoi(*v);
        } else {
            problems.push_back(fmt::format(
                "--replicator-max-restarts must be a whole number from 0 to 999999, not \"{}\"",
                *v));
        }
    }

    cfg.source = std::move(source);
    cfg.target = std::move(target);
    return command;
}

}  // namespace molt::fetch
