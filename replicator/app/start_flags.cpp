#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "molt/common/duration.hpp"
#include "molt/common/flag_text.hpp"
#include "molt/replicator/app/start_config.hpp"

namespace molt::replicator {
namespace {

namespace po = boost::program_options;

enum class kind { string, duration, integer, size, boolean };

struct flag {
    std::string_view name;
    kind type;
    std::string_view default_text;  ///< as shown in help; empty: no default shown
    std::string_view help;
};

// The flags of `replicator start`, in help order.
constexpr flag flags[] = {
    {"allowBackwardsCheckpoint", kind::boolean, "",
     "accepted for compatibility: resolved timestamps older than the newest one (a restarted or "
     "recreated changefeed) are always acknowledged and ignored now"},
    {"applyTimeout", kind::duration, "30s",
     "the maximum time a request or a target transaction may spend applying"},
    {"bindAddr", kind::string, ":26258", "the network address to bind to"},
    {"disableAuthentication", kind::boolean, "",
     "let any caller write to the target database: no JWT, no client certificate (logged loudly "
     "at startup)"},
    {"dlqTableName", kind::string, "replicator_dlq",
     "the dead-letter queue table in each target schema, which --fatalRowPolicy dlq writes the "
     "rows the target refuses to (never created by the replicator; its columns are checked); "
     "accepted without --fatalRowPolicy dlq, where it is not used"},
    {"dryRun", kind::boolean, "",
     "check the flags and the files they name, print nothing and exit 0 without starting "
     "(molt fetch asks this before it spawns the replicator)"},
    {"fatalRowPolicy", kind::string, "stall",
     "what to do with a row the target refuses (NOT NULL, CHECK, a value too long or out of "
     "range): stall (retry its transaction until it is fixed by hand, logged at error level "
     "every minute, apply_stalled) or dlq (write it to --dlqTableName in the same transaction "
     "and go on)"},
    {"flushPeriod", kind::duration, "1s",
     "how often the apply loop looks for work when it is not woken by a resolved timestamp"},
    {"flushSize", kind::integer, "1000",
     "the most rows written by one SQL statement; in consistent mode also about the mutations of "
     "one target transaction"},
    {"gracePeriod", kind::duration, "30s",
     "how long in-flight requests may take to finish after SIGTERM or SIGINT"},
    {"httpIdleTimeout", kind::duration, "90s", "close a keep-alive connection idle this long"},
    {"httpReadTimeout", kind::duration, "1m0s",
     "the longest time to read one request (TLS handshake, headers and body)"},
    {"httpResponseTimeout", kind::duration, "2m0s",
     "the deadline of one request once it is read (the smaller of this and --applyTimeout): "
     "waits for a connection and retries stop there, and the answer is 503"},
    {"immediate", kind::boolean, "",
     "apply each request directly to the target, then acknowledge it (eventually consistent)"},
    {"insecureHTTP", kind::boolean, "",
     "serve plain HTTP without TLS (tests only: CockroachDB's webhook sink needs HTTPS)"},
    {"jwtRefresh", kind::duration, "1m0s",
     "how often the JWT public keys and revoked token ids are read again from jwt_public_keys "
     "and jwt_revoked_ids in --stagingSchema (SIGHUP reads them at once)"},
    {"logDestination", kind::string, "", "write logs to this file instead of stdout"},
    {"logFormat", kind::string, "json",
     "log format: json (as molt writes it) or text; fluent is json"},
    {"maxBodySize", kind::size, "64MiB", "the largest request body accepted (413 above it)"},
    {"maxConnections", kind::integer, "256",
     "the most open connections on --bindAddr; beyond, a new connection gets 503 with "
     "Retry-After and is closed"},
    {"maxQueuedRequests", kind::integer, "64",
     "changefeed requests admitted beyond the --parallelism being handled (their bodies being "
     "read, or waiting for a worker); beyond, 503 with Retry-After"},
    {"metricsAddr", kind::string, "",
     "serve /_/varz, /_/healthz (liveness) and /_/readyz (readiness) on this plain-HTTP "
     "address; --bindAddr then keeps only /_/healthz (readiness)"},
    {"parallelism", kind::integer, "16",
     "the most requests handled at once, and target transactions with disjoint keys applied at "
     "once per target schema"},
    {"retireOffset", kind::duration, "24h0m0s",
     "how long applied mutations stay in staging before they are deleted (0 is allowed)"},
    {"scanSize", kind::integer, "10000", "rows per staging read query, per table"},
    {"schemaRefresh", kind::duration, "1m0s",
     "how often the target's tables are introspected again"},
    {"skipForeignKeyChecks", kind::boolean, "",
     "with --immediate: write with the target's foreign-key checks off (PostgreSQL: "
     "session_replication_role replica, which needs a superuser or GRANT SET ON PARAMETER and "
     "keeps ordinary triggers from firing, as PostgreSQL's logical replication; MySQL: "
     "foreign_key_checks 0), so a child that arrives before its parent is written at once "
     "instead of waiting for it"},
    {"stagingConn", kind::string, "",
     "the staging database (CockroachDB or PostgreSQL); default: --targetConn when it is "
     "PostgreSQL"},
    {"stagingConnFile", kind::string, "",
     "read --stagingConn from this file (e.g. a systemd credential), so its password is not in "
     "the process list"},
    {"stagingCreateSchema", kind::boolean, "",
     "create the staging database and schema if missing; without it a missing one is an error, "
     "so a mistyped --stagingSchema cannot strand a backlog (molt fetch passes it)"},
    {"stagingMaxBacklog", kind::integer, "0",
     "answer 503 while this many resolved mutations of one target schema wait for the target "
     "(0: no bound)"},
    {"stagingMaxPoolSize", kind::integer, "128", "the most connections to the staging database"},
    {"stagingSchema", kind::string, "_replicator.public",
     "the schema that holds staging tables and checkpoints (see replicator/README.md)"},
    {"targetConn", kind::string, "", "the target database connection string (required)"},
    {"targetConnFile", kind::string, "",
     "read --targetConn from this file (e.g. a systemd credential), so its password is not in "
     "the process list"},
    {"targetMaxPoolSize", kind::integer, "128", "the most connections to the target"},
    {"tlsCertificate", kind::string, "", "the PEM certificate chain of the HTTPS server"},
    {"tlsClientCA", kind::string, "",
     "require client certificates (mTLS) signed by this PEM CA to write; a JWT is then checked "
     "only when one is sent"},
    {"tlsPrivateKey", kind::string, "", "the PEM private key of the HTTPS server"},
    {"tlsSelfSigned", kind::boolean, "",
     "generate a self-signed certificate for localhost, 127.0.0.1 and ::1"},
    {"userscript", kind::string, "",
     "a TypeScript or JavaScript file that filters, changes and routes rows with the "
     "replicator@v2 API (see replicator/README.md, Userscripts); needs esbuild on PATH"},
    {"userscriptMaxHeap", kind::size, "512MiB",
     "the most memory one call into the userscript may allocate; beyond, the call fails"},
    {"userscriptTimeout", kind::duration, "10s",
     "the longest one userscript handler (or the script's loading) may run; beyond, it is "
     "stopped and its batch fails"},
};

// Flags of cockroachdb/replicator that this build does not support yet: refused by name rather
// than silently ignored, so a command line never means something it does not do.
constexpr std::string_view unsupported_flags[] = {
    "assumeIdempotent",
    "bestEffortOnly",
    "bestEffortWindow",
    "collapseMutations",
    "disableCheckpointStream",
    "discard",
    "discardDelay",
    "enableCheckpointStream",
    "enableParallelApplies",
    "healthCheckTimeout",
    "limitLookahead",
    "maxRetries",
    "metricsSnapshotPeriod",
    "ndjsonBufferSize",
    "quiescentPeriod",
    "retryInitialBackoff",
    "retryMaxBackoff",
    "retryMultiplier",
    "stageDisableCreateTableReaderIndex",
    "stageMarkAppliedLimit",
    "stageSanityCheckPeriod",
    "stageSanityCheckWindow",
    "stageUnappliedPeriod",
    "stagingIdleTime",
    "stagingJitterTime",
    "stagingMaxLifetime",
    "targetApplyQueueSize",
    "targetIdleTime",
    "targetJitterTime",
    "targetMaxLifetime",
    "targetStatementCacheSize",
    "taskGracePeriod",
    "timestampLimit",
};

// Those of them that are booleans (they take no value).
constexpr std::string_view unsupported_bool_flags[] = {
    "assumeIdempotent",
    "bestEffortOnly",
    "collapseMutations",
    "disableCheckpointStream",
    "discard",
    "enableCheckpointStream",
    "enableParallelApplies",
    "stageDisableCreateTableReaderIndex",
};

std::string_view type_name(kind k) {
    switch (k) {
    case kind::string: return "string";
    case kind::duration: return "duration";
    case kind::integer: return "int";
    case kind::size: return "bytes";
    case kind::boolean: return "";
    }
    return "";
}

// "64MiB", "1048576", "512KiB", "2GiB".
result<size_t> parse_size(std::string_view text) {
    size_t i = 0;
    uint64_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && n < (uint64_t{1} << 50)) {
        n = n * 10 + static_cast<uint64_t>(text[i++] - '0');
    }
    const std::string_view unit = text.substr(i);
    uint64_t scale = 0;
    for (const auto& [name, s] : {std::pair<std::string_view, uint64_t>{"", 1},
                                  {"B", 1},
                                  {"KiB", 1024},
                                  {"MiB", 1024 * 1024},
                                  {"GiB", 1024 * 1024 * 1024}}) {
        if (unit == name) {
            scale = s;
        }
    }
    if (i == 0 || scale == 0 || n * scale > (uint64_t{1} << 40)) {
        return error{errc::invalid_argument,
                     fmt::format("bad size \"{}\" (expected bytes, or a number with KiB, MiB or "
                                 "GiB, e.g. 64MiB)",
                                 text)};
    }
    return static_cast<size_t>(n * scale);
}

// Whether `name` (without "--") is a boolean flag, supported or not.
bool is_boolean_flag(std::string_view name) {
    const auto supported = std::find_if(std::begin(flags), std::end(flags), [&](const flag& f) {
        return f.name == name && f.type == kind::boolean;
    });
    return supported != std::end(flags) ||
           std::find(std::begin(unsupported_bool_flags), std::end(unsupported_bool_flags), name) !=
               std::end(unsupported_bool_flags);
}

bool readable_file(const std::string& path) {
    std::ifstream in(path);
    return in.good();
}

}  // namespace

bool wants_help(const std::vector<std::string_view>& args) {
    return std::any_of(args.begin(), args.end(),
                       [](std::string_view a) { return a == "--help" || a == "-h"; });
}

void print_start_help(std::ostream& out) {
    out << "Start the changefeed webhook server: an HTTPS endpoint that a CockroachDB changefeed\n"
           "(webhook-https://host:port/<database>/<schema>) posts to; every change is written to\n"
           "the target database.\n\n"
           "Usage:\n  replicator start [flags]\n\nFlags:\n";
    for (const flag& f : flags) {
        std::string left = fmt::format("      --{} {}", f.name, type_name(f.type));
        std::string text(f.help);
        if (!f.default_text.empty()) {
            text += f.type == kind::string ? fmt::format(" (default \"{}\")", f.default_text)
                                           : fmt::format(" (default {})", f.default_text);
        }
        out << fmt::format("{:<40} {}\n", left, text);
    }
    out << fmt::format("{:<40} {}\n", "  -h, --help", "help for start");
    out << fmt::format("{:<40} {}\n", "  -v, --verbose count",
                       "-v for debug logging, -vv for trace");
}

result<start_config> parse_start_flags(const std::vector<std::string_view>& raw_args,
                                       const std::vector<flag_override>& overrides) {
    std::vector<std::string> problems;
    start_config cfg;
    cfg.args.assign(raw_args.begin(), raw_args.end());

    // -v, -vv and --verbose count up; pflag-style "--flag=value" and "--flag value" both work,
    // except for booleans: as in pflag, "--flag" alone means true and a value must be attached
    // ("--flag=false"), so "--disableAuthentication foo" leaves "foo" an unexpected argument.
    std::vector<std::string> args;
    bool only_positionals = false;
    for (const std::string_view a : raw_args) {
        if (only_positionals) {
            args.emplace_back(a);
        } else if (a == "--") {
            only_positionals = true;
            args.emplace_back(a);
        } else if (a == "-v" || a == "--verbose") {
            ++cfg.verbosity;
        } else if (a == "-vv") {
            cfg.verbosity += 2;
        } else if (a.substr(0, 2) == "--" && is_boolean_flag(a.substr(2))) {
            args.push_back(fmt::format("{}=true", a));
        } else {
            args.emplace_back(a);
        }
    }

    po::options_description desc;
    for (const flag& f : flags) {
        const std::string name(f.name);
        if (f.type == kind::boolean) {
            desc.add_options()(name.c_str(), po::value<std::string>()->implicit_value("true"));
        } else {
            desc.add_options()(name.c_str(), po::value<std::string>());
        }
    }
    for (const std::string_view name : unsupported_flags) {
        const bool is_bool =
            std::find(std::begin(unsupported_bool_flags), std::end(unsupported_bool_flags), name) !=
            std::end(unsupported_bool_flags);
        desc.add_options()(
            std::string(name).c_str(),
            is_bool ? po::value<std::string>()->implicit_value("true") : po::value<std::string>());
    }
    desc.add_options()("molt-positional", po::value<std::vector<std::string>>());
    po::positional_options_description positional;
    positional.add("molt-positional", -1);
    po::variables_map vm;
    try {
        auto parsed = po::command_line_parser(args)
                          .options(desc)
                          .positional(positional)
                          .style(po::command_line_style::unix_style &
                                 ~po::command_line_style::allow_guessing &
                                 ~po::command_line_style::allow_sticky)
                          .run();
        po::store(parsed, vm);
    } catch (const po::unknown_option& e) {
        return error{errc::invalid_argument,
                     fmt::format("unknown flag: {}", log::sanitize(e.get_option_name()))};
    } catch (const po::error& e) {
        return error{errc::invalid_argument, log::sanitize(e.what())};
    }
    for (const auto& [name, value] : overrides) {
        // Every flag, supported or not, is an option of `desc` (the positional one excepted).
        const bool known = name != "molt-positional" && desc.find_nothrow(name, false) != nullptr;
        static constexpr std::string_view read_before[] = {"userscript",        "userscriptTimeout",
                                                           "userscriptMaxHeap", "logFormat",
                                                           "logDestination",    "dryRun",
                                                           "verbose",           "v"};
        if (std::find(std::begin(read_before), std::end(read_before), name) !=
            std::end(read_before)) {
            problems.push_back(fmt::format(
                "setOptions: --{} is read before the userscript runs: set it on the command line",
                name));
            continue;
        }
        if (!known) {
            problems.push_back(
                fmt::format("setOptions: unknown option \"{}\"", log::sanitize(name)));
            continue;
        }
        // A connection set by the script replaces the command line's, given either way.
        for (const std::string_view pair : {"targetConn", "stagingConn"}) {
            if (name == pair || name == std::string(pair) + "File") {
                vm.erase(std::string(pair));
                vm.erase(std::string(pair) + "File");
            }
        }
        vm.erase(name);
        vm.emplace(name, po::variable_value(boost::any(value), false));
        if (std::find(cfg.set_by_script.begin(), cfg.set_by_script.end(), name) ==
            cfg.set_by_script.end()) {
            cfg.set_by_script.push_back(name);  // the last value set wins
        }
    }
    if (vm.count("molt-positional") != 0U) {
        problems.push_back(fmt::format(
            "unexpected argument \"{}\" (flags are written --name value or --name=value; a "
            "boolean flag takes no separate value: --name or --name=false)",
            vm["molt-positional"].as<std::vector<std::string>>().front()));
    }

    for (const std::string_view name : unsupported_flags) {
        if (vm.count(std::string(name)) != 0U) {
            problems.push_back(
                fmt::format("--{} is a flag of cockroachdb/replicator that this "
                            "replicator does not support yet",
                            name));
        }
    }

    auto text = [&](std::string_view name) -> std::optional<std::string> {
        const auto it = vm.find(std::string(name));
        if (it == vm.end()) {
            return std::nullopt;
        }
        return it->second.as<std::string>();
    };
    auto boolean = [&](std::string_view name, bool& out) {
        if (auto v = text(name)) {
            if (auto b = parse_flag_bool(*v)) {
                out = *b;
            } else {
                problems.push_back(fmt::format("--{}: \"{}\" is not true or false", name, *v));
            }
        }
    };
    auto duration = [&](std::string_view name, std::chrono::nanoseconds& out, bool positive) {
        if (auto v = text(name)) {
            auto d = parse_duration(*v);
            if (!d) {
                problems.push_back(fmt::format("--{}: {}", name, d.error().message()));
            } else if (positive && d->count() <= 0) {
                problems.push_back(fmt::format("--{} must be positive", name));
            } else {
                out = *d;
            }
        }
    };
    auto integer = [&](std::string_view name, int64_t& out, int64_t min, int64_t max) {
        if (auto v = text(name)) {
            const bool digits =
                !v->empty() && v->size() <= 12 &&
                std::all_of(v->begin(), v->end(), [](char c) { return c >= '0' && c <= '9'; });
            const int64_t n = digits ? std::stoll(*v) : -1;
            if (!digits || n < min || n > max) {
                problems.push_back(
                    fmt::format("--{} must be a whole number from {} to {}, not "
                                "\"{}\"",
                                name, min, max, *v));
            } else {
                out = n;
            }
        }
    };
    // --X, or --XFile naming a file that holds it (a systemd credential: no password in the
    // process list). The file's contents are never echoed.
    auto connection = [&](std::string_view name) -> std::optional<conn_url> {
        const std::string file_flag = std::string(name) + "File";
        auto v = text(name);
        auto file = text(file_flag);
        if (v && file) {
            problems.push_back(fmt::format("give --{} or --{}, not both", name, file_flag));
            return std::nullopt;
        }
        std::string value;
        if (file) {
            std::ifstream in(*file, std::ios::binary);
            std::stringstream contents;
            contents << in.rdbuf();
            if (!in) {
                problems.push_back(fmt::format("--{}: cannot read \"{}\"", file_flag, *file));
                return std::nullopt;
            }
            value = contents.str();
            while (!value.empty() && (value.back() == '\n' || value.back() == '\r' ||
                                      value.back() == ' ' || value.back() == '\t')) {
                value.pop_back();
            }
        } else if (v) {
            value = *v;
        } else {
            return std::nullopt;
        }
        auto url = conn_url::parse(value);
        if (!url) {
            problems.push_back(fmt::format("--{}: {}", file ? file_flag : std::string(name),
                                           url.error().message()));
            return std::nullopt;
        }
        return std::move(url).value();
    };

    if (auto v = text("bindAddr")) {
        auto a = parse_net_address(*v);
        if (a) {
            cfg.bind_addr = *a;
        } else {
            problems.push_back(fmt::format("--bindAddr: {}", a.error().message()));
        }
    }
    if (auto v = text("metricsAddr"); v && !v->empty()) {
        auto a = parse_net_address(*v);
        if (a) {
            cfg.metrics_addr = *a;
        } else {
            problems.push_back(fmt::format("--metricsAddr: {}", a.error().message()));
        }
    }
    cfg.tls_certificate = text("tlsCertificate").value_or("");
    cfg.tls_private_key = text("tlsPrivateKey").value_or("");
    cfg.tls_client_ca = text("tlsClientCA").value_or("");
    boolean("tlsSelfSigned", cfg.tls_self_signed);
    boolean("insecureHTTP", cfg.insecure_http);
    boolean("disableAuthentication", cfg.disable_authentication);
    boolean("immediate", cfg.immediate);
    boolean("skipForeignKeyChecks", cfg.skip_foreign_key_checks);
    boolean("dryRun", cfg.dry_run);
    boolean("allowBackwardsCheckpoint", cfg.allow_backwards_checkpoint);
    boolean("stagingCreateSchema", cfg.staging_create_schema);
    if (auto v = text("maxBodySize")) {
        auto size = parse_size(*v);
        if (size && *size >= 1024) {
            cfg.max_body_bytes = *size;
        } else {
            problems.push_back(size ? "--maxBodySize must be at least 1KiB"
                                    : fmt::format("--maxBodySize: {}", size.error().message()));
        }
    }
    if (auto v = text("userscriptMaxHeap")) {
        auto size = parse_size(*v);
        if (size && *size >= (size_t{16} << 20) && *size <= (size_t{4} << 30)) {
            cfg.userscript_max_heap = *size;
        } else {
            problems.push_back(
                size ? "--userscriptMaxHeap must be between 16MiB and 4GiB"
                     : fmt::format("--userscriptMaxHeap: {}", size.error().message()));
        }
    }
    duration("userscriptTimeout", cfg.userscript_timeout, true);
    if (cfg.userscript_timeout < std::chrono::milliseconds(1)) {
        problems.emplace_back("--userscriptTimeout must be at least 1ms");
    }
    duration("httpReadTimeout", cfg.http_read_timeout, true);
    duration("httpIdleTimeout", cfg.http_idle_timeout, true);
    duration("httpResponseTimeout", cfg.http_response_timeout, true);
    duration("applyTimeout", cfg.apply_timeout, true);
    duration("schemaRefresh", cfg.schema_refresh, true);
    duration("jwtRefresh", cfg.jwt_refresh, true);
    duration("gracePeriod", cfg.grace_period, false);
    duration("flushPeriod", cfg.flush_period, true);
    duration("retireOffset", cfg.retire_offset, false);
    if (cfg.retire_offset.count() < 0) {
        problems.emplace_back("--retireOffset must not be negative");
    }
    integer("targetMaxPoolSize", cfg.target_max_pool_size, 1, 10000);
    integer("flushSize", cfg.flush_size, 1, 1000000);
    integer("parallelism", cfg.parallelism, 1, 10000);
    integer("maxConnections", cfg.max_connections, 1, 1000000);
    integer("maxQueuedRequests", cfg.max_queued_requests, 0, 1000000);
    integer("scanSize", cfg.scan_size, 1, 1000000);
    integer("stagingMaxPoolSize", cfg.staging_max_pool_size, 1, 10000);
    integer("stagingMaxBacklog", cfg.staging_max_backlog, 0, 999999999999);
    cfg.log_destination = text("logDestination").value_or("");
    if (auto v = text("logFormat")) {
        if (*v == "json" || *v == "fluent") {
            cfg.log_format = log::format::json;
        } else if (*v == "text") {
            cfg.log_format = log::format::text;
        } else {
            problems.push_back(fmt::format("--logFormat must be json or text, not \"{}\"", *v));
        }
    }
    cfg.staging_schema_given = text("stagingSchema").has_value();
    cfg.staging_schema = text("stagingSchema").value_or(cfg.staging_schema);
    cfg.userscript = text("userscript").value_or("");
    if (auto v = text("fatalRowPolicy")) {
        if (*v == "stall" || *v == "dlq") {
            cfg.fatal_row_dlq = *v == "dlq";
        } else {
            problems.push_back(
                fmt::format("--fatalRowPolicy must be stall or dlq, not \"{}\"", *v));
        }
    }
    cfg.dlq_table_name = text("dlqTableName").value_or(cfg.dlq_table_name);
    if (cfg.dlq_table_name.empty()) {
        problems.emplace_back("--dlqTableName must not be empty");
    }

    // Cross-field rules and the files the flags name.
    cfg.target = connection("targetConn");
    cfg.staging = connection("stagingConn");
    if (!text("targetConn") && !text("targetConnFile")) {
        problems.emplace_back("--targetConn (or --targetConnFile) must be set");
    }
    if (cfg.tls_certificate.empty() != cfg.tls_private_key.empty()) {
        problems.emplace_back(
            "either both of --tlsCertificate and --tlsPrivateKey must be set, "
            "or none");
    }
    if (cfg.tls_self_signed && !cfg.tls_certificate.empty()) {
        problems.emplace_back(
            "self-signed certificate requested (--tlsSelfSigned), but also "
            "specified a TLS certificate (--tlsCertificate)");
    }
    const bool tls = cfg.tls_self_signed || !cfg.tls_certificate.empty();
    if (!tls && !cfg.insecure_http) {
        problems.emplace_back(
            "no TLS configured: pass --tlsCertificate and --tlsPrivateKey, or "
            "--tlsSelfSigned (CockroachDB's webhook sink only speaks HTTPS); "
            "--insecureHTTP serves plain HTTP for tests");
    }
    if (tls && cfg.insecure_http) {
        problems.emplace_back("--insecureHTTP cannot be combined with TLS flags");
    }
    if (!cfg.tls_client_ca.empty() && !tls) {
        problems.emplace_back(
            "--tlsClientCA needs TLS (--tlsCertificate/--tlsPrivateKey or "
            "--tlsSelfSigned)");
    }
    for (const auto& [name, path] :
         {std::pair<std::string_view, const std::string*>{"tlsCertificate", &cfg.tls_certificate},
          {"tlsPrivateKey", &cfg.tls_private_key},
          {"tlsClientCA", &cfg.tls_client_ca}}) {
        // --disableAuthentication ignores --tlsClientCA (application.cpp): its file is not read.
        const bool ignored = name == "tlsClientCA" && cfg.disable_authentication;
        if (!path->empty() && !ignored && !readable_file(*path)) {
            problems.push_back(fmt::format("--{}: cannot read \"{}\"", name, *path));
        }
    }
    if (!cfg.userscript.empty() && !readable_file(cfg.userscript)) {
        problems.push_back(fmt::format("--userscript: cannot read \"{}\"", cfg.userscript));
    }
    if (cfg.staging && cfg.staging->dialect() != dialect::postgres) {
        problems.emplace_back(
            "--stagingConn must be a CockroachDB or PostgreSQL connection string "
            "(postgres://...)");
    }
    if (cfg.skip_foreign_key_checks && !cfg.immediate) {
        problems.emplace_back(
            "--skipForeignKeyChecks is for --immediate: the transactionally consistent mode (the "
            "default) applies parents before children and needs no such thing");
    }
    // MySQL and Oracle targets cannot hold staging or the JWT keys.
    const bool foreign_target = cfg.target && cfg.target->dialect() != dialect::postgres;
    if (cfg.immediate && !cfg.staging && foreign_target && cfg.tls_client_ca.empty() &&
        !cfg.disable_authentication) {
        problems.emplace_back(
            "JWT authentication (the default) reads its public keys from jwt_public_keys in a "
            "CockroachDB or PostgreSQL database: pass --stagingConn (usually the CockroachDB "
            "source), or --tlsClientCA (client certificates), or --disableAuthentication");
    }
    if (!cfg.immediate && !cfg.staging && foreign_target) {
        problems.emplace_back(
            "the transactionally consistent mode (the default) stages changes in CockroachDB "
            "or PostgreSQL: pass --stagingConn (usually the CockroachDB source), or --immediate "
            "to apply each request directly");
    }

    if (!problems.empty()) {
        // Values echoed in problems come from the command line: no control characters.
        return error{errc::invalid_argument, describe_problems(problems)};
    }
    return cfg;
}

}  // namespace molt::replicator
