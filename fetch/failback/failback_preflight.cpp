// Every check of a failback run before anything starts (see failback_run.hpp).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "molt/common/log.hpp"
#include "molt/common/redact.hpp"
#include "molt/fetch/webhook_tls.hpp"

#include "failback/failback_run.hpp"

namespace molt::fetch {
namespace {

namespace fs = std::filesystem;

// Creates `file` (it must not exist) readable by its owner only, holding `text`.
bool write_new_private_file(const std::string& file, std::string_view text) {
    const int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    const bool written =
        fd >= 0 && write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (fd >= 0) {
        close(fd);
    }
    return written;
}

bool is_executable(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// --replicator-path; next to molt (as the MOLT docs place it: ./replicator or ./bin/replicator);
// the working directory; PATH.
std::optional<std::string> find_replicator(const std::string& given,
                                           std::vector<std::string>& looked) {
    if (!given.empty()) {
        looked.push_back(given);
        return is_executable(given) ? std::optional<std::string>(given) : std::nullopt;
    }
    std::vector<fs::path> dirs;
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        dirs.push_back(self.parent_path());
    }
    dirs.push_back(fs::current_path(ec));
    for (const fs::path& dir : dirs) {
        for (const fs::path& candidate : {dir / "replicator", dir / "bin" / "replicator"}) {
            looked.push_back(candidate.string());
            if (is_executable(candidate.string())) {
                return candidate.string();
            }
        }
    }
    if (const char* path = std::getenv("PATH")) {
        std::stringstream in(path);
        std::string dir;
        while (std::getline(in, dir, ':')) {
            if (!dir.empty() && is_executable(dir + "/replicator")) {
                return dir + "/replicator";
            }
        }
        looked.emplace_back("PATH");
    }
    return std::nullopt;
}

// "scheme://user:pass@host..." → "scheme://user@host..." (canonical URLs percent-encode ':' in
// user names, so the first ':' of the user info starts the password).
std::string without_password(const std::string& url) {
    const size_t start = url.find("://");
    if (start == std::string::npos) {
        return url;
    }
    const size_t at = url.find('@', start + 3);
    const size_t slash = url.find('/', start + 3);
    if (at == std::string::npos || (slash != std::string::npos && slash < at)) {
        return url;
    }
    const size_t colon = url.find(':', start + 3);
    if (colon == std::string::npos || colon > at) {
        return url;
    }
    return url.substr(0, colon) + url.substr(at);
}

// A .pgpass field: ':' and '\' escaped.
std::string pgpass_field(const std::string& s) {
    std::string out;
    for (const char c : s) {
        if (c == ':' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out;
}

std::string now_nanos() {
    return std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count());
}

// The replicator's "Error: " output on one line: its problems joined with "; ".
std::string replicator_complaint(const std::string& output) {
    std::string text;
    std::stringstream in(output);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("Error: ", 0) == 0) {
            line = line.substr(7);
        }
        while (!line.empty() && line.front() == ' ') {
            line.erase(0, 1);
        }
        if (line.empty() || line.find("problems with the command line:") != std::string::npos) {
            continue;
        }
        text += (text.empty() ? " " : "; ") + redact_secrets(line);
    }
    return text;
}

}  // namespace

failback_run::~failback_run() {
    if (!temp_dir_.empty()) {
        std::error_code ec;
        fs::remove_all(temp_dir_, ec);
    }
}

void failback_run::static_checks(std::vector<std::string>& problems) {
    auto user = user_replicator_flags::parse(cfg_.replicator_flags);
    if (!user) {
        problems.push_back(user.error().message());
    } else {
        user_ = std::move(user).value();
    }
    std::vector<std::string> looked;
    if (auto path = find_replicator(cfg_.replicator_path, looked)) {
        replicator_path_ = *path;
    } else if (!cfg_.replicator_path.empty()) {
        problems.push_back(
            fmt::format("--replicator-path: {} is not an executable file", cfg_.replicator_path));
    } else {
        problems.push_back(
            fmt::format("replicator binary not found (looked for {}); put it next to molt or pass "
                        "--replicator-path",
                        fmt::join(looked, ", ")));
    }
    if (auto sink = proto::sink_query::parse(cfg_.changefeed.sink_query_parameters)) {
        sink_ = std::move(sink).value();
    }  // else: the override parser already reported it
    if (!user_ || !cfg_.source || !cfg_.target) {
        return;  // the rest needs them
    }
    const user_replicator_flags& user_flags = *user_;

    if (char dir_template[] = "/tmp/molt-fetch-XXXXXX"; const char* dir = mkdtemp(dir_template)) {
        temp_dir_ = dir;  // mode 0700; removed when molt exits
    } else {
        problems.emplace_back("cannot create a temporary directory under /tmp");
        return;
    }
    // Passwords never go on the replicator's command line (where `ps` shows them): for
    // PostgreSQL and CockroachDB they go to a password file (mode 0600) named by PGPASSFILE,
    // with the lines of the user's own password file after them.
    std::string target_url = cfg_.target->to_url();
    std::string source_url = cfg_.source->to_url();
    std::string pgpass;
    for (const auto* c : {&*cfg_.source, &*cfg_.target}) {
        if (c->dialect() == dialect::postgres && c->has_password()) {
            // host:port:*:user:password (any database: the replicator may use others, e.g. the
            // staging one), so two servers, or two users of one, each find their own.
            pgpass += fmt::format(
                "{}:{}:*:{}:{}\n", pgpass_field(c->host().empty() ? "localhost" : c->host()),
                c->port_or_default(), pgpass_field(c->user()), pgpass_field(c->password()));
        }
    }
    if (!pgpass.empty()) {
        const char* own = std::getenv("PGPASSFILE");
        const char* home = std::getenv("HOME");
        const std::string own_file = own != nullptr    ? own
                                     : home != nullptr ? std::string(home) + "/.pgpass"
                                                       : "";
        if (!own_file.empty()) {
            std::ifstream in(own_file);
            std::stringstream rest;
            rest << in.rdbuf();
            pgpass += rest.str();
        }
        const std::string file = temp_dir_ + "/pgpass";
        if (!write_new_private_file(file, pgpass)) {
            problems.emplace_back("cannot write the replicator's password file under /tmp");
            return;
        }
        child_env_.push_back("PGPASSFILE=" + file);
        if (cfg_.target->dialect() == dialect::postgres) {
            target_url = without_password(target_url);
        }
        source_url = without_password(source_url);
    }

    // A MySQL or Oracle password has no such file: the whole connection string goes to a file
    // (mode 0600) that the replicator reads (--targetConnFile).
    replicator_flag target_flag{"targetConn", target_url, true};
    if (cfg_.target->dialect() != dialect::postgres && cfg_.target->has_password()) {
        const std::string file = temp_dir_ + "/targetConn";
        if (!write_new_private_file(file, target_url)) {
            problems.emplace_back("cannot write the replicator's connection file under /tmp");
            return;
        }
        target_flag = {"targetConnFile", file, false};
    }

    staging_schema_ = user_flags.value("stagingSchema").value_or("_replicator_" + now_nanos());
    molt_flags_ = {
        target_flag,
        {"stagingConn", source_url, true},
        {"stagingSchema", staging_schema_, false},
        {"bindAddr", fmt::format("0.0.0.0:{}", cfg_.changefeed.port), false},
        {"stagingCreateSchema", "", false},
    };

    // Who may write: the changefeed must be able to authenticate, or every request is a 401.
    const bool has_client_ca = user_flags.has("tlsClientCA");
    const bool auth_disabled = user_flags.enabled("disableAuthentication");
    std::string client_ca_file = user_flags.value("tlsClientCA").value_or("");
    if (!has_client_ca && !auth_disabled) {
        if (!sink_.client_cert.empty() && sink_.ca_cert.empty()) {
            problems.emplace_back(
                "--changefeeds-path: client_cert is given without ca_cert, so molt cannot set up "
                "client-certificate authentication for the replicator: add ca_cert (the CA that "
                "signed both certificates), or pass --tlsClientCA in --replicator-flags");
        } else if (!sink_.client_cert.empty()) {
            client_ca_file = temp_dir_ + "/changefeed-ca.crt";
            std::ofstream out(client_ca_file);
            out << sink_.ca_cert;
            out.close();
            if (!out) {
                problems.emplace_back("cannot write the client CA for the replicator under /tmp");
            }
            molt_flags_.push_back({"tlsClientCA", client_ca_file, false});
        } else {
            problems.emplace_back(
                "the replicator would refuse every changefeed request (401): give the changefeed "
                "a client certificate (client_cert, client_key and ca_cert in the "
                "sink_query_parameters of --changefeeds-path), or pass --tlsClientCA, or "
                "--disableAuthentication (any caller may then write) in --replicator-flags");
        }
    } else if (has_client_ca && !auth_disabled && sink_.client_cert.empty()) {
        problems.emplace_back(
            "--replicator-flags has --tlsClientCA, so the replicator requires a client "
            "certificate, but the changefeed sends none: add client_cert and client_key to the "
            "sink_query_parameters of --changefeeds-path");
    }

    webhook_tls_material material;
    material.webhook_host = cfg_.changefeed.host;
    material.insecure_tls_skip_verify = sink_.insecure_tls_skip_verify;
    material.ca_cert_pem = sink_.ca_cert;
    material.client_cert_pem = sink_.client_cert;
    material.client_key_pem = sink_.client_key;
    material.self_signed = user_flags.enabled("tlsSelfSigned");
    material.server_cert_file = user_flags.value("tlsCertificate").value_or("");
    material.server_key_file = user_flags.value("tlsPrivateKey").value_or("");
    material.client_ca_file = client_ca_file;
    for (std::string& p : check_webhook_tls(material)) {
        problems.push_back(std::move(p));
    }

    // Where molt reads /_/healthz and /_/varz.
    const std::string bind = user_flags.value("bindAddr").value_or(molt_flags_[3].value);
    const auto metrics_addr = user_flags.value("metricsAddr");
    const auto addr = parse_net_address(metrics_addr.value_or(bind));
    if (addr) {
        diagnostics_.host = addr->host.empty() || addr->host == "0.0.0.0" || addr->host == "::"
                                ? "127.0.0.1"
                                : addr->host;
        diagnostics_.port = addr->port;
    }
    diagnostics_.tls = !metrics_addr && !user_flags.enabled("insecureHTTP");
    diagnostics_check_target_ = !metrics_addr;
    if (addr && addr->port == 0) {
        problems.emplace_back(
            "--replicator-flags: port 0 cannot be used for --bindAddr or --metricsAddr here: "
            "the changefeed and molt need to know the port");
    }
    if (auto user_bind = user_flags.value("bindAddr")) {
        if (auto b = parse_net_address(*user_bind); b && b->port != cfg_.changefeed.port) {
            problems.push_back(fmt::format(
                "--replicator-flags has --bindAddr {}, but the changefeed posts to port {} (the "
                "\"port\" of --changefeeds-path, default 30004): make them the same",
                *user_bind, cfg_.changefeed.port));
        }
    }

    // The replicator's own verdict on the command line molt would give it.
    if (!replicator_path_.empty()) {
        std::vector<std::string> argv = build_replicator_argv(molt_flags_, user_flags);
        argv.insert(argv.begin() + 1, "--dryRun");
        auto dry = run_and_capture(replicator_path_, argv, std::chrono::seconds(30), child_env_);
        if (!dry) {
            problems.push_back(fmt::format("cannot check the replicator's flags with {}: {}",
                                           replicator_path_, dry.error().message()));
        } else if (dry->exit_status != 0) {
            problems.push_back(fmt::format(
                "--replicator-flags: the replicator refuses the command line molt would start "
                "it with:{}",
                replicator_complaint(dry->output)));
        }
    }
}

void failback_run::database_checks(std::vector<std::string>& problems) {
    const auto timeout = std::chrono::duration_cast<std::chrono::seconds>(cfg_.connect_timeout);
    std::vector<table_info> source_tables;
    std::vector<table_info> target_tables;
    bool listed = true;
    log::info().msg("checking database details");
    if (auto c = connect_sql(*cfg_.source, "--source", timeout); !c) {
        problems.push_back(c.error().message());
        listed = false;
    } else {
        source_ = std::move(c).value();
        auto version = source_->query("SELECT version()");
        if (!version) {
            problems.push_back(version.error().message());
            listed = false;
        } else if (version->rows.empty() ||
                   version->rows[0][0].value_or("").find("CockroachDB") == std::string::npos) {
            problems.push_back(fmt::format(
                "--source must be a CockroachDB cluster, but it is {}: failback streams "
                "CockroachDB's changes to the original database (--target)",
                version->rows.empty() ? "unknown" : version->rows[0][0].value_or("unknown")));
            listed = false;
        } else {
            auto setting = source_->query("SHOW CLUSTER SETTING kv.rangefeed.enabled");
            if (!setting) {
                problems.push_back(setting.error().message());
            } else if (const std::string v =
                           setting->rows.empty() ? "" : setting->rows[0][0].value_or("");
                       v != "true" && v != "t" && v != "on") {
                problems.emplace_back(
                    "--source: rangefeeds are off (kv.rangefeed.enabled = false), so no "
                    "changefeed can run: run SET CLUSTER SETTING kv.rangefeed.enabled = true; on "
                    "the cluster as an admin");
            }
            auto tables = list_tables(*source_, true);
            if (!tables) {
                problems.push_back(tables.error().message());
                listed = false;
            } else {
                source_tables = std::move(tables).value();
            }
        }
    }
    if (auto c = connect_sql(*cfg_.target, "--target", timeout); !c) {
        problems.push_back(c.error().message());
        listed = false;
    } else {
        target_ = std::move(c).value();
        // Oracle's connection check is MOLT's (SELECT 1 FROM DUAL); it is never CockroachDB.
        auto version =
            target_->query(cfg_.target->dialect() == dialect::oracle ? "SELECT 'Oracle' FROM DUAL"
                                                                     : "SELECT version()");
        if (!version) {
            problems.push_back(version.error().message());
            listed = false;
        } else if (!version->rows.empty() &&
                   version->rows[0][0].value_or("").find("CockroachDB") != std::string::npos) {
            problems.emplace_back(
                "--target is a CockroachDB cluster: failback goes from CockroachDB back to the "
                "original PostgreSQL, MySQL or Oracle database, not to CockroachDB");
            listed = false;
        } else {
            auto tables = list_tables(*target_, false);
            if (!tables) {
                problems.push_back(tables.error().message());
                listed = false;
            } else {
                target_tables = std::move(tables).value();
            }
        }
    }
    if (!listed) {
        return;
    }

    log::info().msg("verifying common tables");
    table_filters filters{cfg_.schema_filter, cfg_.table_filter, cfg_.table_exclusion_filter,
                          cfg_.case_sensitive};
    auto selection = select_tables(source_tables, target_tables, filters, cfg_.target->dialect());
    if (!selection) {
        problems.push_back(selection.error().message());
        return;
    }
    selection_ = std::move(selection).value();
    for (const std::string& skipped : selection_.skipped) {
        log::warn()
            .str("table", skipped.substr(0, skipped.find(':')))
            .str("reason", skipped.substr(skipped.find(':') + 2))
            .msg("ignoring table");
    }
    if (selection_.tables.empty()) {
        std::string message = "no table(s) to be imported, exiting molt fetch";
        if (selection_.skipped.empty()) {
            message +=
                fmt::format(": no source table matches --schema-filter '{}', --table-filter '{}'{}",
                            cfg_.schema_filter, cfg_.table_filter,
                            cfg_.table_exclusion_filter.empty()
                                ? ""
                                : fmt::format(" and --table-exclusion-filter '{}'",
                                              cfg_.table_exclusion_filter));
        } else {
            message += ":";
            for (const std::string& s : selection_.skipped) {
                message += "\n" + s;
            }
        }
        problems.push_back(message);
        return;
    }
    std::vector<std::string> schemas;
    for (const table_pair& p : selection_.tables) {
        log::info()
            .str("source_table", p.source.display())
            .str("target_table", p.target.display())
            .msg("found matching table");
        if (std::find(schemas.begin(), schemas.end(), p.target.schema) == schemas.end()) {
            schemas.push_back(p.target.schema);
        }
    }
    if (schemas.size() > 1) {
        problems.push_back(fmt::format(
            "the selected tables are in {} target schemas ({}), but one changefeed writes one "
            "target schema: narrow --schema-filter (or run one molt per schema)",
            schemas.size(), fmt::join(schemas, ", ")));
        return;
    }
    target_schema_ = schemas.front();
    const bool immediate = user_ && user_->enabled("immediate");
    auto privileges =
        check_target_privileges(*target_, cfg_.target->user(), selection_.tables, !immediate);
    if (!privileges) {
        problems.push_back(privileges.error().message());
    } else {
        for (std::string& p : *privileges) {
            problems.push_back(std::move(p));
        }
    }

    auto db = source_->query("SELECT current_database()");
    if (!db || db->rows.empty() || !db->rows[0][0]) {
        problems.push_back(db ? "--source: no current database" : db.error().message());
        return;
    }
    std::vector<std::string> names;
    for (const table_pair& p : selection_.tables) {
        names.push_back(*db->rows[0][0] + "." + p.source.schema + "." + p.source.name);
    }
    spec_ = make_changefeed_spec(cfg_.changefeed, webhook_path(*cfg_.target, target_schema_),
                                 std::move(names));

    // The staging schema: the user's; else the one an earlier molt left for this target (so
    // the same command resumes where it stopped, staged rows included); else a new one.
    const std::string group = target_group(*cfg_.target, target_schema_);
    if (user_ && !user_->value("stagingSchema")) {
        auto earlier = find_earlier_staging(*source_, group);
        if (!earlier) {
            problems.push_back(earlier.error().message());
        } else if (*earlier) {
            staging_schema_ = **earlier;
            molt_flags_[2].value = staging_schema_;
            log::info()
                .str("staging_schema", staging_schema_)
                .msg("using the staging database an earlier run left for this target");
        }
    }
    // A second changefeed into one target schema would interleave two streams of resolved
    // timestamps: refuse.
    if (auto jobs = show_changefeed_jobs(*source_); !jobs) {
        problems.push_back(jobs.error().message());
    } else {
        for (const changefeed_job& j : conflicting_jobs(*jobs, spec_)) {
            problems.push_back(fmt::format(
                "changefeed job {} ({}) already posts to {} for other tables ({}); a second "
                "changefeed into the same target would break its transactional consistency: "
                "CANCEL JOB {}; first, or use another port",
                j.id, j.status, spec_.sink_base, fmt::join(j.tables, ", "), j.id));
        }
    }
}

}  // namespace molt::fetch
