#include "molt/replicator/app/application.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include <fmt/format.h>

#include "molt/common/assert.hpp"
#include "molt/common/duration.hpp"
#include "molt/common/exit_code.hpp"
#include "molt/common/log.hpp"
#include "molt/common/metrics.hpp"
#include "molt/common/odbc_setup.hpp"
#include "molt/common/version.hpp"
#include "molt/replicator/app/jwt_keys.hpp"
#include "molt/replicator/app/tls_watch.hpp"
#include "molt/replicator/dialect/mysql.hpp"
#include "molt/replicator/dialect/oracle.hpp"
#include "molt/replicator/dialect/postgres.hpp"
#include "molt/replicator/script/script_acceptor.hpp"
#include "molt/replicator/script/script_writer.hpp"
#include "molt/replicator/script/userscript.hpp"
#include "molt/replicator/sequencer/consistent_applier.hpp"
#include "molt/replicator/server/http_server.hpp"
#include "molt/replicator/server/router.hpp"
#include "molt/replicator/server/tls.hpp"
#include "molt/replicator/staging/staging_store.hpp"
#include "molt/replicator/target/immediate_applier.hpp"

namespace molt::replicator {
namespace {

int fail(std::string_view message) {
    log::error().err(message).msg("exited");
    return to_int(exit_code::failure);
}

result<void> configure_logging(const start_config& cfg) {
    log::options options;
    options.fmt = cfg.log_format;
    options.min_level = cfg.verbosity >= 2   ? log::level::trace
                        : cfg.verbosity == 1 ? log::level::debug
                                             : log::level::info;
    if (!cfg.log_destination.empty()) {
        auto sink = log::file_sink(cfg.log_destination);
        if (!sink) {
            return sink.error().with_context("--logDestination");
        }
        options.sinks.push_back(std::move(sink).value());
    }
    log::configure(std::move(options));
    return ok();
}

// Pool gauges (in use, idle, max) under pool=<name>, refreshed at each scrape.
void watch_pool(metrics::registry& metrics, const session_pool& pool, std::string name) {
    metrics.on_collect([&metrics, &pool, name = std::move(name)] {
        metrics.gauge("pool_connections_in_use", "Connections in use", {"pool"})
            .with({name})
            .set(static_cast<double>(pool.in_use()));
        metrics.gauge("pool_connections_idle", "Idle open connections", {"pool"})
            .with({name})
            .set(static_cast<double>(pool.idle()));
        metrics.gauge("pool_connections_max", "Most connections allowed", {"pool"})
            .with({name})
            .set(static_cast<double>(pool.max_sessions()));
    });
}

// Pings a pool's database; `what` names it in the error.
result<void> ping(session_pool& pool, std::string_view what) {
    auto session = pool.acquire(std::chrono::steady_clock::now() + std::chrono::seconds(5));
    if (!session) {
        return session.error().with_context(what);
    }
    auto pinged = (*session)->ping();
    if (!pinged) {
        session->mark_broken();
        return pinged.error().with_context(what);
    }
    return ok();
}

// Connects to staging, works out what it is (CockroachDB or PostgreSQL) and where the staging
// schema lives, and creates what is missing.
result<staging_location> open_staging(session_pool& pool, const start_config& cfg) {
    auto session = pool.acquire(std::chrono::steady_clock::now() + std::chrono::seconds(30));
    if (!session) {
        return session.error().with_context("cannot connect to the staging database");
    }
    auto rows = (*session)->query("SELECT version(), current_database()", {});
    if (!rows || rows->empty() || rows->front().size() < 2) {
        session->mark_broken();
        return rows ? error{errc::database_error, "the staging database did not say what it is"}
                    : rows.error().with_context("querying the staging database");
    }
    const std::string version = rows->front()[0].value_or("");
    const bool cockroach = version.find("CockroachDB") != std::string::npos;
    return resolve_staging_schema(cfg.staging_schema, cfg.staging_schema_given, cockroach,
                                  rows->front()[1].value_or(""));
}

std::string_view auth_text(auth_mode m) {
    switch (m) {
    case auth_mode::jwt: return "jwt";
    case auth_mode::disabled: return "disabled";
    case auth_mode::client_certificate: return "client-certificate";
    }
    return "";
}

}  // namespace

script::limits userscript_limits(const start_config& config) {
    script::limits limits;
    limits.call_timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(config.userscript_timeout);
    limits.heap_bytes = config.userscript_max_heap;
    return limits;
}

result<start_config> with_script_options(const start_config& config,
                                         const script::userscript& userscript) {
    if (userscript.options().empty()) {
        return config;
    }
    const std::vector<std::string_view> args(config.args.begin(), config.args.end());
    auto again = parse_start_flags(args, userscript.options());
    if (!again) {
        return error{again.error().code(),
                     fmt::format("--userscript {} set flags (setOptions): {}",
                                 log::sanitize(config.userscript), again.error().message())};
    }
    return again;
}

int run_start(start_config cfg) {
    if (auto logging = configure_logging(cfg); !logging) {
        std::cerr << "Error: " << logging.error().message() << "\n";
        return to_int(exit_code::failure);
    }
    // Signals go to the main thread only (it waits for them below): block them before any
    // thread starts, so every thread inherits the mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    metrics::registry metrics;
    // The userscript, loaded (and run once) before anything listens: a bad one ends here. The
    // flags its setOptions set replace the command line's before anything reads them.
    std::unique_ptr<script::userscript> userscript;
    if (!cfg.userscript.empty()) {
        auto loaded = script::userscript::load(cfg.userscript, userscript_limits(cfg), &metrics);
        if (!loaded) {
            return fail(loaded.error().message());
        }
        userscript = std::move(loaded).value();
        auto with_options = with_script_options(cfg, *userscript);
        if (!with_options) {
            return fail(with_options.error().message());
        }
        cfg = std::move(with_options).value();
        log::info()
            .str("userscript", cfg.userscript)
            .str("setOptions", fmt::format("{}", fmt::join(cfg.set_by_script, ", ")))
            .msg("userscript loaded");
    }

    const conn_url& target = *cfg.target;
    const auth_mode auth = cfg.disable_authentication   ? auth_mode::disabled
                           : !cfg.tls_client_ca.empty() ? auth_mode::client_certificate
                                                        : auth_mode::jwt;
    log::info()
        .str("version", std::string(build().version))
        .str("commit", std::string(build().commit))
        .str("mode", cfg.immediate ? "immediate" : "consistent")
        .boolean("skipForeignKeyChecks", cfg.skip_foreign_key_checks)
        .str("targetConn", target.redacted())
        .str("stagingConn", cfg.immediate ? "" : (cfg.staging ? *cfg.staging : target).redacted())
        .str("bindAddr", cfg.bind_addr.to_string())
        .str("metricsAddr", cfg.metrics_addr ? cfg.metrics_addr->to_string() : "")
        .str("tls", cfg.insecure_http     ? "off (--insecureHTTP)"
                    : cfg.tls_self_signed ? "self-signed"
                                          : "certificate")
        .str("authentication", std::string(auth_text(auth)))
        .unum("maxBodySize", cfg.max_body_bytes)
        .str("httpReadTimeout", format_duration(cfg.http_read_timeout))
        .str("httpIdleTimeout", format_duration(cfg.http_idle_timeout))
        .str("applyTimeout", format_duration(cfg.apply_timeout))
        .str("gracePeriod", format_duration(cfg.grace_period))
        .num("parallelism", cfg.parallelism)
        .num("maxQueuedRequests", cfg.max_queued_requests)
        .num("maxConnections", cfg.max_connections)
        .num("flushSize", cfg.flush_size)
        .num("targetMaxPoolSize", cfg.target_max_pool_size)
        .str("fatalRowPolicy", cfg.fatal_row_dlq ? "dlq" : "stall")
        .str("dlqTableName", cfg.fatal_row_dlq ? cfg.dlq_table_name : "")
        .msg("Replicator starting");
    if (cfg.staging && cfg.immediate && cfg.disable_authentication) {
        log::info().msg("--stagingConn is not used in immediate mode with --disableAuthentication");
    }

    // TLS material. --disableAuthentication trusts every caller: no client certificate is asked
    // for, so one that --tlsClientCA would refuse cannot fail the handshake either.
    const std::string client_ca = cfg.disable_authentication ? std::string() : cfg.tls_client_ca;
    if (cfg.disable_authentication && !cfg.tls_client_ca.empty()) {
        log::warn()
            .str("tlsClientCA", cfg.tls_client_ca)
            .msg(
                "--tlsClientCA is ignored with --disableAuthentication: no client certificate is "
                "asked for");
    }
    std::optional<tls_material> tls;
    if (!cfg.insecure_http) {
        auto material = cfg.tls_self_signed
                            ? generate_self_signed()
                            : load_tls_material(cfg.tls_certificate, cfg.tls_private_key);
        if (!material) {
            return fail(material.error().message());
        }
        material->client_ca_file = client_ca;
        tls = std::move(material).value();
    }

    // The target.
    std::unique_ptr<target_dialect> dialect;
    session_pool::connect_fn connect_target;
    switch (target.dialect()) {
    case dialect::postgres:
        dialect = postgres::make_dialect();
        connect_target = [&target, &cfg] { return postgres::connect(target, cfg.apply_timeout); };
        break;
    case dialect::mysql:
        dialect = mysql::make_dialect();
        connect_target = [&target, &cfg] { return mysql::connect(target, cfg.apply_timeout); };
        break;
    case dialect::oracle:
        if (const char* set = std::getenv("NLS_LANG"); set != nullptr) {
            log::info()
                .str("NLS_LANG", set)
                .msg("Oracle client character set from NLS_LANG (use a UTF-8 one, e.g. .AL32UTF8)");
        } else if (odbc_setup::prepare_oracle_client_environment()) {
            log::info()
                .str("NLS_LANG", ".AL32UTF8")
                .msg(
                    "NLS_LANG was unset: Oracle's client exchanges text with the replicator in "
                    "UTF-8");
        }
        dialect = oracle::make_dialect();
        connect_target = [&target, &cfg] { return oracle::connect(target, cfg.apply_timeout); };
        break;
    }
    if (cfg.skip_foreign_key_checks) {
        connect_target =
            with_session_setting(std::move(connect_target), dialect->no_foreign_key_checks_sql(),
                                 "--skipForeignKeyChecks", dialect->no_foreign_key_checks_hint());
    }
    session_pool pool(std::move(connect_target), static_cast<size_t>(cfg.target_max_pool_size));
    watch_pool(metrics, pool, "target");
    schema_cache schemas(*dialect, pool, cfg.schema_refresh);
    apply_options apply;
    apply.rows_per_statement = static_cast<size_t>(cfg.flush_size);
    // A request's deadline: --applyTimeout, but never past --httpResponseTimeout.
    apply.apply_timeout = std::min(cfg.apply_timeout, cfg.http_response_timeout);
    // Rows the target refuses: the DLQ table is checked when a target schema is first used.
    apply.fatal.policy = cfg.fatal_row_dlq ? fatal_row_policy::dlq : fatal_row_policy::stall;
    apply.fatal.dlq_table = cfg.dlq_table_name;
    // Immediate mode: half the workers may wait for parent rows; the rest bring them.
    apply.max_deferred_waits = static_cast<size_t>(cfg.parallelism) / 2;
    // The userscript's onWrite (apply) tables, written by it in the applier's transaction.
    std::unique_ptr<script::script_writer> script_writer;
    if (userscript) {
        script_writer = std::make_unique<script::script_writer>(*userscript, *dialect,
                                                                apply.rows_per_statement);
        apply.writer = script_writer.get();
        // replicator@v1 configureTable's options for the built-in writer, on every snapshot.
        schemas.decorate([&userscript, kind = dialect->kind(), dlq = cfg.dlq_table_name](
                             schema_snapshot& s) { userscript->configure(s, kind, dlq); });
    }

    // The mode: immediate, or consistent over staging.
    std::unique_ptr<immediate_applier> immediate;
    std::unique_ptr<session_pool> staging_pool;
    std::unique_ptr<staging_store> staging;
    std::unique_ptr<consistent_applier> consistent;
    // Staging: consistent mode stages there; both modes keep the JWT keys there.
    auto open_staging_store = [&]() -> result<void> {
        const conn_url staging_url = cfg.staging ? *cfg.staging : target;
        staging_pool = std::make_unique<session_pool>(
            [staging_url, &cfg]() { return postgres::connect(staging_url, cfg.apply_timeout); },
            static_cast<size_t>(cfg.staging_max_pool_size), "staging", "--stagingMaxPoolSize");
        auto where = open_staging(*staging_pool, cfg);
        if (!where) {
            return where.error();
        }
        staging = std::make_unique<staging_store>(*staging_pool, *where, cfg.apply_timeout);
        if (auto prepared = staging->prepare(cfg.staging_create_schema); !prepared) {
            return prepared.error();
        }
        log::info()
            .str("stagingSchema", where->to_string())
            .str("server", where->cockroach ? "CockroachDB" : "PostgreSQL")
            .boolean("stagingCreateSchema", cfg.staging_create_schema)
            .msg(cfg.staging_create_schema ? "staging schema ready (created if it was missing)"
                                           : "staging schema ready");
        watch_pool(metrics, *staging_pool, "staging");
        return {};
    };
    std::string tokens_unavailable;
    if (cfg.immediate) {
        immediate = std::make_unique<immediate_applier>(*dialect, pool, schemas, metrics, apply);
        if (auth != auth_mode::disabled && (cfg.staging || target.dialect() == dialect::postgres)) {
            if (auto opened = open_staging_store(); !opened) {
                if (auth == auth_mode::jwt) {
                    return fail(opened.error().message() +
                                "\n(JWT authentication, the default, reads its public keys "
                                "from jwt_public_keys there; or use --tlsClientCA for client "
                                "certificates, or --disableAuthentication)");
                }
                tokens_unavailable = opened.error().message();
                staging.reset();
                staging_pool.reset();
            }
        } else if (auth != auth_mode::disabled) {
            tokens_unavailable =
                "no database holds the JWT public keys (pass --stagingConn to use tokens)";
        }
    } else {
        if (auto opened = open_staging_store(); !opened) {
            return fail(opened.error().message());
        }
        consistent_options options;
        options.flush_size = static_cast<size_t>(cfg.flush_size);
        options.parallelism = static_cast<size_t>(cfg.parallelism);
        options.scan_size = static_cast<size_t>(cfg.scan_size);
        options.flush_period = cfg.flush_period;
        options.retire_offset = cfg.retire_offset;
        options.max_backlog = static_cast<uint64_t>(cfg.staging_max_backlog);
        options.allow_backwards_checkpoint = cfg.allow_backwards_checkpoint;
        options.request_timeout = std::min(cfg.apply_timeout, cfg.http_response_timeout);
        options.apply_timeout = cfg.apply_timeout;
        options.fatal = apply.fatal;
        options.writer = apply.writer;
        if (userscript) {
            options.transform =
                [&userscript](
                    const qualified_name& schema, const schema_snapshot& snapshot,
                    const proto::batch& rows,
                    std::vector<refused_row>* refused) -> result<std::optional<proto::batch>> {
                if (!userscript->handles_tables(schema)) {
                    return std::optional<proto::batch>();
                }
                auto changed = userscript->run(schema, snapshot, rows, script::table_phase,
                                               std::nullopt, refused);
                if (!changed) {
                    return changed.error();
                }
                return std::optional<proto::batch>(std::move(changed).value());
            };
        }
        consistent = std::make_unique<consistent_applier>(*dialect, pool, schemas, *staging,
                                                          metrics, options);
        if (auto started = consistent->start(); !started) {
            return fail(started.error().message());
        }
    }
    mutation_acceptor& mode_applier = immediate ? static_cast<mutation_acceptor&>(*immediate)
                                                : static_cast<mutation_acceptor&>(*consistent);
    std::unique_ptr<script::script_acceptor> scripted;
    if (userscript) {
        scripted = std::make_unique<script::script_acceptor>(
            mode_applier, *userscript, schemas, cfg.immediate,
            std::min(cfg.apply_timeout, cfg.http_response_timeout));
    }
    mutation_acceptor& applier =
        scripted ? static_cast<mutation_acceptor&>(*scripted) : mode_applier;

    // The readiness check: staging, then the target (as the original). The cause stays in the
    // log; callers only learn which part failed.
    session_pool* const stages = consistent ? staging_pool.get() : nullptr;
    auto health = [&pool, stages]() -> std::optional<health_failure> {
        if (stages != nullptr) {
            if (auto staged = ping(*stages, "staging"); !staged) {
                return health_failure{"staging", staged.error()};
            }
        }
        if (auto targeted = ping(pool, "target"); !targeted) {
            return health_failure{"target", targeted.error()};
        }
        return std::nullopt;
    };
    if (auto reachable = ping(pool, "target"); !reachable) {
        if (reachable.error().code() == errc::invalid_argument) {
            return fail(reachable.error().message());  // a session setting the target refuses
        }
        log::warn()
            .err(reachable.error())
            .msg(cfg.immediate ? "the target is not reachable yet; requests get 503 until it is"
                               : "the target is not reachable yet; changes are staged until it is");
    }

    // JWT: the keys, read now and kept fresh.
    std::unique_ptr<jwt::verifier> tokens;
    std::unique_ptr<jwt_key_refresher> key_refresher;
    bool keys_read = false;
    if (staging && auth != auth_mode::disabled) {
        tokens = std::make_unique<jwt::verifier>();
        key_refresher =
            std::make_unique<jwt_key_refresher>(*staging, *tokens, cfg.jwt_refresh, metrics);
        keys_read = key_refresher->refresh().has_value();  // a failure is logged; retried
        key_refresher->start();
    }

    router_config routing;
    routing.target_dialect = target.dialect();
    routing.auth = auth;
    routing.tokens = tokens.get();
    routing.limits.max_body_bytes = cfg.max_body_bytes;
    routing.diagnostics_elsewhere = cfg.metrics_addr.has_value();
    router routes(routing, applier, health, metrics);

    http_server_config serving;
    serving.bind = cfg.bind_addr;
    serving.diagnostics_bind = cfg.metrics_addr;
    const std::optional<tls_material> started_with = tls;
    serving.tls = std::move(tls);
    serving.max_body_bytes = cfg.max_body_bytes;
    serving.read_timeout = cfg.http_read_timeout;
    serving.idle_timeout = cfg.http_idle_timeout;
    serving.worker_threads = static_cast<size_t>(cfg.parallelism);
    serving.max_queued = static_cast<size_t>(cfg.max_queued_requests);
    serving.max_connections = static_cast<size_t>(cfg.max_connections);
    // With --metricsAddr the main port serves only changefeeds (and the readiness check, which
    // then needs a certificate too): a client without a certificate is refused in the handshake.
    serving.require_client_certificate =
        auth == auth_mode::client_certificate && cfg.metrics_addr.has_value();
    http_server server(std::move(serving), routes, metrics);
    if (auto started = server.start(); !started) {
        return fail(started.error().message());
    }
    // Certificates: reloaded on SIGHUP and when their files change; expiry watched.
    std::unique_ptr<tls_watcher> certificates;
    if (started_with) {
        certificates = std::make_unique<tls_watcher>(
            tls_files{cfg.tls_certificate, cfg.tls_private_key, client_ca}, *started_with, server,
            metrics);
        certificates->start();
    }
    const net_address bound = server.bound_address();
    log::info().str("address", bound.to_string()).msg("Server listening");
    if (auto diag = server.bound_diagnostics_address()) {
        log::info().msg(fmt::format("metrics server bound to {}", diag->to_string()));
    }
    if (cfg.insecure_http) {
        log::warn().msg(
            "serving plain HTTP (--insecureHTTP): CockroachDB changefeeds need HTTPS; "
            "use this for tests only");
    }
    switch (auth) {
    case auth_mode::disabled:
        log::warn().msg("authentication disabled, any caller may write to the target database");
        break;
    case auth_mode::jwt:
        MOLT_CHECK(tokens && staging, "JWT mode without a key store");
        if (!keys_read) {
            log::warn()
                .str("stagingSchema", staging->location().to_string())
                .msg(fmt::format(
                    "the JWT public keys in {}.jwt_public_keys could not be read yet, so every "
                    "write is refused (401) until they are: they are read again every "
                    "--jwtRefresh and on SIGHUP",
                    staging->location().to_string()));
        } else if (tokens->key_count() == 0) {
            log::warn()
                .str("stagingSchema", staging->location().to_string())
                .msg(fmt::format(
                    "no active JWT public keys in {0}.jwt_public_keys, so every write is "
                    "refused (401): make a token with `replicator make-jwt -k key.pem -a "
                    "db.schema`, insert the public key it prints into {0}.jwt_public_keys, then "
                    "send SIGHUP (or wait --jwtRefresh); or use --tlsClientCA, or "
                    "--disableAuthentication",
                    staging->location().to_string()));
        } else {
            log::info()
                .num("keys", static_cast<int64_t>(tokens->key_count()))
                .msg("writers must send a JWT (Authorization: Bearer) allowing their schema");
        }
        break;
    case auth_mode::client_certificate:
        log::info()
            .str("tlsClientCA", cfg.tls_client_ca)
            .msg(tokens ? "writers must present a client certificate; a JWT, when sent, is "
                          "checked too"
                        : "writers must present a client certificate");
        if (!tokens) {
            log::warn()
                .str("why", tokens_unavailable)
                .msg("JWTs cannot be checked, so a request that sends one is refused (401)");
        }
        break;
    }

    for (;;) {
        int signal_number = 0;
        if (sigwait(&signals, &signal_number) != 0) {
            continue;
        }
        if (signal_number == SIGHUP) {
            const bool certificate_files = certificates && !cfg.tls_certificate.empty();
            log::info()
                .boolean("jwtKeys", key_refresher != nullptr)
                .boolean("tlsCertificate", certificate_files)
                .msg(key_refresher && certificate_files
                         ? "SIGHUP received; reloading JWT keys and TLS certificates"
                     : key_refresher     ? "SIGHUP received; reloading JWT keys"
                     : certificate_files ? "SIGHUP received; reloading TLS certificates"
                                         : "SIGHUP received; there is nothing to reload");
            if (key_refresher) {
                key_refresher->refresh_now();
            }
            if (certificates) {
                certificates->reload_now();
            }
            continue;
        }
        log::info()
            .str("signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT")
            .msg("Interrupted");
        break;
    }
    // Background reloads stop now; one under way finishes while the server drains.
    if (key_refresher) {
        key_refresher->stop();
    }
    if (certificates) {
        certificates->stop();
    }
    const bool clean = server.shutdown(cfg.grace_period);
    if (consistent) {
        consistent->stop();
    }
    if (!clean) {
        log::error()
            .str("gracePeriod", format_duration(cfg.grace_period))
            .msg("requests still running after the grace period; exiting");
        // Worker threads may still be inside the database: do not wait for them.
        std::_Exit(to_int(exit_code::failure));
    }
    log::info().msg("Server shutdown complete");
    return to_int(exit_code::ok);
}

}  // namespace molt::replicator
