// crdb-emulator: a CockroachDB changefeed stand-in for tests and load tests.
//
//   crdb-emulator workload --sink-uri webhook-https://host:port/db/schema?... [flags]
//   crdb-emulator serve --backend postgres://... [--listen host:port]   (pg_proxy.hpp)
//
// Generates transactions over the tables of a spec, sends them as CockroachDB's v2 webhook sink
// does (with optional faults), then optionally verifies the target. Prints progress on stderr
// and a JSON summary on stdout. Exit 0 when everything was acknowledged (and verified).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "molt/common/compression.hpp"
#include "molt/common/duration.hpp"
#include "molt/common/net_address.hpp"
#include "molt/emulator/cluster.hpp"
#include "molt/emulator/https_transport.hpp"
#include "molt/emulator/pg_proxy.hpp"
#include "molt/emulator/sender.hpp"
#include "molt/emulator/verify.hpp"
#include "molt/proto/json.hpp"

namespace po = boost::program_options;
using namespace molt;
using namespace molt::emulator;

namespace {

int fail(const std::string& message) {
    std::cerr << "Error: " << message << "\n";
    return 1;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

constexpr const char* usage =
    R"(crdb-emulator workload: send a synthetic changefeed to a webhook sink.

Usage:
  crdb-emulator workload --sink-uri URI [flags]

The sink URI is what CREATE CHANGEFEED takes (webhook-https://host:port/path?query, with
insecure_tls_skip_verify, ca_cert, client_cert and client_key); https:// and http:// work too.
)";

// Parses a command's flags; an exit code when the command is done (--help, or bad flags).
std::optional<int> parse_flags(int argc, char** argv, const po::options_description& desc,
                               const char* help, po::variables_map& vm) {
    try {
        po::store(po::parse_command_line(argc, argv, desc), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        return fail(e.what());
    }
    if (vm.count("help") != 0U) {
        std::cout << help << "\n" << desc;
        return 0;
    }
    return std::nullopt;
}

void add_fault_options(po::options_description& desc) {
    desc.add_options()(
        "fault-profile", po::value<std::string>()->default_value("none"),
        "none, or realistic: what CockroachDB does routinely (the README lists the rates); "
        "--all-faults and each fault's flag override it")("all-faults",
                                                          po::value<double>()->default_value(0),
                                                          "set every fault except late duplicates")(
        "fault-duplicate", po::value<double>(), "redeliver an acknowledged batch (per batch)")(
        "fault-replay", po::value<double>(),
        "restart and replay from the checkpoint (per resolved)")(
        "fault-late-duplicate", po::value<double>(),
        "resend an old batch after its resolved timestamp")(
        "fault-duplicate-resolved", po::value<double>(), "send a resolved timestamp twice")(
        "fault-split-transaction", po::value<double>(), "split a transaction across requests")(
        "fault-drop-connection", po::value<double>(), "drop the connection mid-request")(
        "fault-abandon", po::value<double>(),
        "send a request whole, then close the connection without its answer and send it again "
        "at once (a client timeout; per request)")(
        "fault-lost-resolved", po::value<double>(),
        "save the checkpoint, then restart before its resolved timestamp is delivered (per "
        "resolved)")(
        "faults-at-least-once",
        "inject every fault whose rate is above 0 at least once, at its first opportunity (so "
        "tests can count on each)")(
        "restart-backoff", po::value<std::string>()->default_value("1s"),
        "a changefeed restart (retries exhausted, a replay fault) first waits this long, "
        "doubling on each restart within 10 minutes of the previous one")(
        "restart-max-backoff", po::value<std::string>()->default_value("10m"),
        "the longest wait before a restart (changefeed.max_retry_backoff; 30s on v25.4 and v26.1)")(
        "nodes", po::value<size_t>()->default_value(3),
        "nodes that each batch their own keys' rows (each key's range lives on one), so rows "
        "cross keys, tables and transactions out of order")(
        "lagging-range", po::value<std::string>()->default_value("0s"),
        "one range in 16 delivers every row this late, holding resolved timestamps back while "
        "other keys run ahead")(
        "in-order",
        "no shuffling inside a request, and restarts replay in HLC order rather than key by key "
        "(with --nodes 1: rows in HLC order, kinder than CockroachDB)");
}

bool realistic_profile(const po::variables_map& vm) {
    return vm["fault-profile"].as<std::string>() == "realistic";
}

// --nodes, --lagging-range and --in-order.
result<delivery_order> read_order_options(const po::variables_map& vm) {
    delivery_order out;
    out.nodes = vm["nodes"].as<size_t>();
    if (out.nodes == 0) {
        return error{errc::invalid_argument, "--nodes takes 1 or more"};
    }
    const std::string lag = vm["lagging-range"].as<std::string>();
    auto d = parse_duration(lag);
    if (!d || d->count() < 0) {
        return error{errc::invalid_argument,
                     "--lagging-range takes a duration of 0 or more, not " + lag};
    }
    out.lagging_range = vm["lagging-range"].defaulted() && realistic_profile(vm)
                            ? std::chrono::nanoseconds(realistic_lagging_range)
                            : *d;
    out.shuffle = out.key_order_replay = vm.count("in-order") == 0U;
    return out;
}

// --restart-backoff and --restart-max-backoff.
result<restart_backoff_settings> read_restart_options(const po::variables_map& vm) {
    restart_backoff_settings out;
    for (const auto& [flag, target] :
         {std::pair<const char*, std::chrono::nanoseconds*>{"restart-backoff", &out.initial},
          {"restart-max-backoff", &out.max}}) {
        const std::string text = vm[flag].as<std::string>();
        auto d = parse_duration(text);
        if (!d) {
            return error{errc::invalid_argument,
                         std::string("--") + flag + ": " + d.error().message()};
        }
        if (d->count() < 0) {
            return error{errc::invalid_argument,
                         std::string("--") + flag + " takes a duration of 0 or more, not " + text};
        }
        *target = *d;
    }
    out.max = std::max(out.max, out.initial);  // a cap below the first wait is that wait
    return out;
}

// Each fault's rate: its own flag, else --all-faults when given, else the profile's.
result<fault_rates> read_fault_options(const po::variables_map& vm) {
    const std::string profile = vm["fault-profile"].as<std::string>();
    if (profile != "none" && profile != "realistic") {
        return error{errc::invalid_argument,
                     "--fault-profile takes none or realistic, not " + profile};
    }
    const fault_rates base = realistic_profile(vm) ? realistic_faults() : fault_rates{};
    const bool all = !vm["all-faults"].defaulted();
    auto fault = [&](const char* name, double fault_rates::*rate) {
        if (vm.count(name) != 0U) {
            return vm[name].as<double>();
        }
        return all ? vm["all-faults"].as<double>() : base.*rate;
    };
    fault_rates faults;
    faults.duplicate = fault("fault-duplicate", &fault_rates::duplicate);
    faults.replay = fault("fault-replay", &fault_rates::replay);
    faults.late_duplicate =
        vm.count("fault-late-duplicate") != 0U ? vm["fault-late-duplicate"].as<double>() : 0;
    faults.duplicate_resolved = fault("fault-duplicate-resolved", &fault_rates::duplicate_resolved);
    faults.split_transaction = fault("fault-split-transaction", &fault_rates::split_transaction);
    faults.drop_connection = fault("fault-drop-connection", &fault_rates::drop_connection);
    faults.lost_resolved = fault("fault-lost-resolved", &fault_rates::lost_resolved);
    faults.abandon = fault("fault-abandon", &fault_rates::abandon);
    faults.at_least_once = vm.count("faults-at-least-once") != 0U;
    for (const char* name :
         {"all-faults", "fault-duplicate", "fault-replay", "fault-late-duplicate",
          "fault-duplicate-resolved", "fault-split-transaction", "fault-drop-connection",
          "fault-abandon", "fault-lost-resolved"}) {
        if (vm.count(name) != 0U) {
            const double rate = vm[name].as<double>();
            if (!(rate >= 0 && rate <= 1)) {
                return error{errc::invalid_argument,
                             fmt::format("--{} takes a rate from 0 to 1, not {}", name, rate)};
            }
        }
    }
    return faults;
}

}  // namespace

int workload(int argc, char** argv) {
    po::options_description desc("Flags");
    desc.add_options()("help,h", "this help")("sink-uri", po::value<std::string>(),
                                              "where to POST (required)")(
        "spec", po::value<std::string>(),
        "a JSON file describing the tables (default: the profile's built-in two-table spec)")(
        "profile", po::value<std::string>()->default_value("standard"),
        "standard, or rich: tables with a UNIQUE key, long TEXT, JSONB and extreme values (see "
        "the README); its values also go to the tables of --spec or --introspect")(
        "unique-reuse", po::value<double>()->default_value(0),
        "per value of a UNIQUE column: take a value a delete freed in an earlier transaction")(
        "unique-move", po::value<double>()->default_value(0),
        "per transaction: a row's UNIQUE value y becomes z while a new row takes y")(
        "unique-swap", po::value<double>()->default_value(0),
        "per transaction: two rows swap their UNIQUE values")(
        "no-foreign-keys",
        "leave the spec's foreign keys out (immediate mode is for workloads without them)")(
        "introspect", po::value<std::string>(),
        "take the tables from this target connection instead")(
        "create", po::value<std::string>(),
        "create the spec's tables on this target first (drops them)")(
        "mutations", po::value<uint64_t>()->default_value(10000),
        "row changes to send in total (0: only --create and --verify)")(
        "duration", po::value<std::string>(), "send for this long instead of --mutations")(
        "until-file", po::value<std::string>(),
        "with --duration: go on sending past it until this file exists (a test's schedule "
        "ends the stream when it is done), for at most --timeout more")(
        "rate", po::value<double>()->default_value(0),
        "transactions per second (0: as fast as acknowledged)")(
        "keys", po::value<uint64_t>()->default_value(1000), "keyspace per table")(
        "key-base", po::value<int64_t>()->default_value(1),
        "first key value (e.g. 9007199254740000)")(
        "mix", po::value<std::string>()->default_value("50,35,15"), "insert,update,delete weights")(
        "rows-per-txn", po::value<std::string>()->default_value("1-4"),
        "row changes per transaction")("workers", po::value<size_t>()->default_value(4),
                                       "concurrent requests per node (sink I/O workers)")(
        "webhook-sink-config", po::value<std::string>()->default_value("{}"),
        "Flush and Retry, as CREATE CHANGEFEED takes it")(
        "resolved", po::value<std::string>()->default_value("1s"),
        "resolved timestamp interval; 0 for none")(
        "closed-timestamp", po::value<std::string>()->default_value("3s"),
        "resolved timestamps trail the wall clock by this (kv.closed_timestamp.target_duration; "
        "0s: they follow the rows at once)")("closed-timestamp-refresh",
                                             po::value<std::string>()->default_value("3s"),
                                             "the closed timestamp moves every this long "
                                             "(kv.rangefeed.closed_timestamp_refresh_interval)")(
        "clock", po::value<std::string>()->default_value("wall"),
        "wall: HLCs from the wall clock, as a cluster's; synthetic: 1 to 50 µs apart whatever "
        "the wall clock does (the same HLCs every run of a seed)")(
        "shared-hlc", po::value<double>()->default_value(0.01),
        "per transaction: share the HLC of the one before when no key is common (CockroachDB "
        "does now and then)")("min-checkpoint-frequency",
                              po::value<std::string>()->default_value("1s"), "checkpoint interval")(
        "client-timeout", po::value<std::string>()->default_value("none"),
        "webhook_client_timeout; none waits for every answer for ever, as CockroachDB v23.2 to "
        "v26.1 do when it is unset")("auth-header", po::value<std::string>()->default_value(""),
                                     "webhook_auth_header")(
        "compression", po::value<std::string>()->default_value(""),
        "compression: gzip or zstd (the whole body, with Content-Encoding)")(
        "fault-phantom-delete", po::value<double>(),
        "delete a key that was never inserted (per transaction)")(
        "pg-types", "generate values only PostgreSQL stores (NaN floats)")(
        "verify-wait", po::value<std::string>()->default_value("0s"),
        "retry --verify for up to this long while the target catches up (consistent mode "
        "applies after the resolved timestamp)")(
        "check-progress", po::value<std::string>(),
        "every this long, check the --verify target against its _replicator_progress table "
        "(consistent mode): the tables must hold exactly the transactions it says are applied")(
        "verify", po::value<std::string>(),
        "compare this target with the expected state at the end")(
        "timeout", po::value<std::string>()->default_value("10m"),
        "how long to wait at the end for every row to be acknowledged")(
        "seed", po::value<uint64_t>()->default_value(1), "random seed")(
        "summary", po::value<std::string>(), "also write the JSON summary to this file");
    add_fault_options(desc);
    po::variables_map vm;
    if (auto done = parse_flags(argc, argv, desc, usage, vm)) {
        return *done;
    }
    if (vm.count("sink-uri") == 0U) {
        return fail("--sink-uri is required");
    }

    // Tables.
    const std::string profile = vm["profile"].as<std::string>();
    if (profile != "standard" && profile != "rich") {
        return fail("--profile takes standard or rich, not " + profile);
    }
    workload_spec spec = profile == "rich" ? rich_spec() : default_spec();
    if (vm.count("spec") != 0U) {
        std::ifstream in(vm["spec"].as<std::string>());
        if (!in) {
            return fail("cannot read --spec " + vm["spec"].as<std::string>());
        }
        std::stringstream text;
        text << in.rdbuf();
        auto parsed = workload_spec::parse(text.str());
        if (!parsed) {
            return fail(parsed.error().message());
        }
        spec = std::move(parsed).value();
    }
    const auto drop_foreign_keys = [&] {
        if (vm.count("no-foreign-keys") != 0U) {
            for (table_spec& t : spec.tables) {
                t.foreign_keys.clear();
            }
        }
    };
    drop_foreign_keys();
    if (vm.count("create") != 0U) {
        auto target = conn_url::parse(vm["create"].as<std::string>());
        if (!target) {
            return fail("--create: " + target.error().message());
        }
        if (auto created = create_tables(*target, spec); !created) {
            return fail("--create: " + created.error().message());
        }
    }
    if (vm.count("introspect") != 0U) {
        auto target = conn_url::parse(vm["introspect"].as<std::string>());
        if (!target) {
            return fail("--introspect: " + target.error().message());
        }
        auto read = introspect_spec(*target);
        if (!read) {
            return fail("--introspect: " + read.error().message());
        }
        spec = std::move(read).value();
        drop_foreign_keys();
    }

    // Generator.
    generator_options gen;
    gen.keys = std::max<uint64_t>(1, vm["keys"].as<uint64_t>());
    gen.key_base = vm["key-base"].as<int64_t>();
    gen.seed = vm["seed"].as<uint64_t>();
    gen.portable = vm.count("pg-types") == 0U;
    gen.rich_values = profile == "rich";
    gen.unique_reuse_rate = vm["unique-reuse"].as<double>();
    gen.unique_move_rate = vm["unique-move"].as<double>();
    gen.unique_swap_rate = vm["unique-swap"].as<double>();
    if (std::sscanf(vm["mix"].as<std::string>().c_str(), "%d,%d,%d", &gen.insert_weight,
                    &gen.update_weight, &gen.delete_weight) != 3) {
        return fail("--mix takes insert,update,delete weights, e.g. 50,35,15");
    }
    if (std::sscanf(vm["rows-per-txn"].as<std::string>().c_str(), "%zu-%zu", &gen.min_rows,
                    &gen.max_rows) != 2 ||
        gen.min_rows < 1 || gen.max_rows < gen.min_rows) {
        return fail("--rows-per-txn takes MIN-MAX, e.g. 1-4");
    }
    auto read_faults = read_fault_options(vm);
    if (!read_faults) {
        return fail(read_faults.error().message());
    }
    const fault_rates faults = *read_faults;
    gen.phantom_delete_rate = vm.count("fault-phantom-delete") != 0U
                                  ? vm["fault-phantom-delete"].as<double>()
                              : !vm["all-faults"].defaulted() ? vm["all-faults"].as<double>()
                              : realistic_profile(vm)         ? realistic_phantom_delete_rate
                                                              : 0;
    if (!(gen.phantom_delete_rate >= 0 && gen.phantom_delete_rate <= 1)) {
        return fail("--fault-phantom-delete takes a rate from 0 to 1");
    }
    gen.at_least_once = faults.at_least_once;
    const std::string clock = vm["clock"].as<std::string>();
    if (clock != "wall" && clock != "synthetic") {
        return fail("--clock takes wall or synthetic, not " + clock);
    }
    gen.wall_clock = clock == "wall";
    gen.shared_hlc_rate = vm["shared-hlc"].as<double>();
    if (!(gen.shared_hlc_rate >= 0 && gen.shared_hlc_rate <= 1)) {
        return fail("--shared-hlc takes a rate from 0 to 1");
    }

    // Sink.
    sink_settings sink;
    auto config = proto::webhook_sink_config::parse(vm["webhook-sink-config"].as<std::string>());
    if (!config) {
        return fail(config.error().message());
    }
    sink.config = *config;
    sink.workers = std::max<size_t>(1, vm["workers"].as<size_t>());
    for (const auto& [flag, target] :
         {std::pair<const char*, std::chrono::nanoseconds*>{"resolved", &sink.resolved_interval},
          {"min-checkpoint-frequency", &sink.checkpoint_interval},
          {"closed-timestamp", &sink.closed_timestamp.target},
          {"closed-timestamp-refresh", &sink.closed_timestamp.refresh}}) {
        auto d = parse_duration(vm[flag].as<std::string>());
        if (!d) {
            return fail(std::string("--") + flag + ": " + d.error().message());
        }
        if (d->count() < 0) {
            return fail(std::string("--") + flag + " takes a duration of 0 or more, not " +
                        vm[flag].as<std::string>());
        }
        *target = *d;
    }
    sink.resolved = sink.resolved_interval.count() > 0;
    auto restart = read_restart_options(vm);
    if (!restart) {
        return fail(restart.error().message());
    }
    sink.restart = *restart;
    auto order = read_order_options(vm);
    if (!order) {
        return fail(order.error().message());
    }
    sink.order = *order;
    endpoint_options endpoint;
    endpoint.sink_uri = vm["sink-uri"].as<std::string>();
    endpoint.authorization = vm["auth-header"].as<std::string>();
    if (const std::string t = vm["client-timeout"].as<std::string>(); t != "none") {
        auto timeout = parse_duration(t);
        if (!timeout || timeout->count() <= 0) {
            return fail("--client-timeout takes a positive duration or none, not " + t);
        }
        endpoint.timeout = *timeout;
    }
    auto codec = compression::parse(vm["compression"].as<std::string>());
    if (!codec) {
        return fail("--compression: " + codec.error().message());
    }
    endpoint.compression = *codec;
    auto connect = make_https_transport(endpoint);
    if (!connect) {
        return fail(connect.error().message());
    }

    std::optional<std::chrono::nanoseconds> duration;
    if (vm.count("duration") != 0U) {
        auto d = parse_duration(vm["duration"].as<std::string>());
        if (!d) {
            return fail("--duration: " + d.error().message());
        }
        duration = *d;
    }
    std::optional<std::string> until_file;
    if (vm.count("until-file") != 0U) {
        if (!duration) {
            return fail("--until-file needs --duration (the stream's shortest length)");
        }
        until_file = vm["until-file"].as<std::string>();
    }
    auto end_timeout = parse_duration(vm["timeout"].as<std::string>());
    if (!end_timeout) {
        return fail("--timeout: " + end_timeout.error().message());
    }
    std::optional<conn_url> verify_url;
    if (vm.count("verify") != 0U) {
        auto target = conn_url::parse(vm["verify"].as<std::string>());
        if (!target) {
            return fail("--verify: " + target.error().message());
        }
        verify_url = *target;
    }
    auto verify_wait = parse_duration(vm["verify-wait"].as<std::string>());
    if (!verify_wait) {
        return fail("--verify-wait: " + verify_wait.error().message());
    }
    std::optional<std::chrono::nanoseconds> check_every;
    if (vm.count("check-progress") != 0U) {
        auto d = parse_duration(vm["check-progress"].as<std::string>());
        if (!d || d->count() <= 0) {
            return fail("--check-progress takes a positive duration, e.g. 2s");
        }
        if (!verify_url) {
            return fail("--check-progress needs --verify (the target to check)");
        }
        check_every = *d;
    }
    const uint64_t target_mutations = vm["mutations"].as<uint64_t>();
    // --mutations 0 sends nothing: the run only creates and/or verifies tables.
    const bool sending = duration.has_value() || target_mutations > 0;

    generator g(spec, gen);
    sender s(sink, faults, *connect, gen.seed);
    s.set_start(g.last());  // the feed's statement time
    if (sending) {
        s.start();
    }
    const auto start = std::chrono::steady_clock::now();
    std::atomic<uint64_t> queued{0};
    std::atomic<bool> done{false};
    std::thread reporter([&] {
        // Progress once a second on stderr, while generating and while waiting for the end.
        while (!done) {
            for (int i = 0; i < 100 && !done; ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            if (done) {
                break;
            }
            const sender_stats st = s.stats();
            std::cerr << fmt::format(
                "crdb-emulator: {} mutations queued, {} acknowledged, {} "
                "requests, {} retries, {} restarts, resolved {}\n",
                queued.load(), st.rows_acknowledged, st.requests, st.retries, st.restarts,
                s.acknowledged_resolved().to_string());
        }
    });
    const double rate = vm["rate"].as<double>();
    uint64_t mutations = 0;
    uint64_t transactions = 0;
    // Sampled checks of a consistent-mode target against its progress table.
    struct {
        uint64_t checks = 0, ok = 0, failed = 0, not_ready = 0, errors = 0;
        std::vector<std::string> differences;
        hlc newest;
    } progress;
    auto next_check = start + check_every.value_or(std::chrono::nanoseconds(0));
    auto sample = [&] {
        auto checked = check_progress(*verify_url, g, 5);
        if (!checked) {
            // The target may be down on purpose (outage tests): not a failed check.
            ++progress.errors;
            return;
        }
        if (!checked->ready) {
            ++progress.not_ready;
            return;
        }
        ++progress.checks;
        progress.newest = std::max(progress.newest, checked->committed);
        if (checked->report.ok()) {
            ++progress.ok;
            return;
        }
        ++progress.failed;
        for (const std::string& d : checked->report.differences) {
            const std::string line =
                fmt::format("at checkpoint {} (+{} ranges): {}", checked->committed.to_string(),
                            checked->ranges.size(), d);
            std::cerr << "crdb-emulator: progress check: " << line << "\n";
            if (progress.differences.size() < 20) {
                progress.differences.push_back(line);
            }
        }
    };
    // --until-file is looked for at most ten times a second.
    auto until_checked = start;
    auto sending_more = [&] {
        if (!duration) {
            return mutations < target_mutations;
        }
        const auto now = std::chrono::steady_clock::now();
        if (now - start < *duration) {
            return true;
        }
        if (!until_file || now - until_checked < std::chrono::milliseconds(100)) {
            return until_file.has_value();
        }
        until_checked = now;
        if (now - start >= *duration + *end_timeout) {
            std::cerr << "crdb-emulator: " << *until_file << " did not appear within --timeout "
                      << "past --duration; the stream ends\n";
            return false;
        }
        std::error_code ec;
        const bool there = std::filesystem::exists(*until_file, ec);
        return !there && !ec;  // a file it cannot look for ends the stream too
    };
    while (sending_more()) {
        const transaction txn = g.next();
        mutations += txn.changes.size();
        ++transactions;
        s.add(txn);
        if (rate > 0) {
            std::this_thread::sleep_until(
                start +
                std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                    std::chrono::duration<double>(static_cast<double>(transactions) / rate)));
        }
        queued = mutations;
        if (check_every && std::chrono::steady_clock::now() >= next_check) {
            sample();
            next_check = std::chrono::steady_clock::now() + *check_every;
        }
    }
    const bool finished = !sending || s.finish(g.last(), *end_timeout);
    s.stop();
    done = true;
    reporter.join();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // The rate counts until the last row was acknowledged: the closing resolved timestamp
    // waits for the closed timestamp, which says nothing of the receiver.
    const double sending_seconds =
        std::chrono::duration<double>(
            s.rows_acknowledged_at().value_or(std::chrono::steady_clock::now()) - start)
            .count();
    const sender_stats st = s.stats();

    proto::json summary = proto::json::object();
    summary.set("transactions", proto::json::number(static_cast<int64_t>(transactions)));
    summary.set("mutations", proto::json::number(static_cast<int64_t>(mutations)));
    summary.set("shared_hlc_transactions",
                proto::json::number(static_cast<int64_t>(g.shared_hlcs())));
    summary.set("rows_sent", proto::json::number(static_cast<int64_t>(st.rows_sent)));
    summary.set("rows_acknowledged",
                proto::json::number(static_cast<int64_t>(st.rows_acknowledged)));
    summary.set("requests", proto::json::number(static_cast<int64_t>(st.requests)));
    summary.set("retries", proto::json::number(static_cast<int64_t>(st.retries)));
    summary.set("cancelled_in_flight", proto::json::number(static_cast<int64_t>(st.cancelled)));
    summary.set("resolved_acknowledged",
                proto::json::string(s.acknowledged_resolved().to_string()));
    proto::json f = proto::json::object();
    f.set("duplicate", proto::json::number(static_cast<int64_t>(st.duplicates)));
    f.set("replay", proto::json::number(static_cast<int64_t>(st.restarts)));
    f.set("late_duplicate", proto::json::number(static_cast<int64_t>(st.late_duplicates)));
    f.set("duplicate_resolved", proto::json::number(static_cast<int64_t>(st.duplicate_resolved)));
    f.set("split_transaction", proto::json::number(static_cast<int64_t>(st.split_transactions)));
    f.set("dropped_connection", proto::json::number(static_cast<int64_t>(st.dropped_connections)));
    f.set("lost_resolved", proto::json::number(static_cast<int64_t>(st.lost_resolved)));
    f.set("abandon", proto::json::number(static_cast<int64_t>(st.abandoned)));
    f.set("phantom_delete", proto::json::number(static_cast<int64_t>(g.phantom_deletes())));
    summary.set("faults", std::move(f));
    proto::json unique = proto::json::object();
    unique.set("reuses", proto::json::number(static_cast<int64_t>(g.unique_changes().reuses)));
    unique.set("moves", proto::json::number(static_cast<int64_t>(g.unique_changes().moves)));
    unique.set("swaps", proto::json::number(static_cast<int64_t>(g.unique_changes().swaps)));
    summary.set("unique", std::move(unique));
    summary.set("seconds", proto::json::number(fmt::format("{:.3f}", seconds)));
    summary.set("acknowledged_seconds",
                proto::json::number(fmt::format("{:.3f}", sending_seconds)));
    summary.set("mutations_per_second",
                proto::json::number(fmt::format(
                    "{:.1f}", static_cast<double>(mutations) / std::max(sending_seconds, 1e-3))));
    proto::json latency = proto::json::object();
    for (const auto& [name, p] :
         {std::pair<const char*, double>{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"max", 1.0}}) {
        latency.set(name,
                    proto::json::number(fmt::format("{:.3f}", percentile(st.latencies, p) * 1e3)));
    }
    summary.set("request_latency_ms", std::move(latency));
    summary.set("finished", proto::json::boolean(finished));

    bool verified = true;
    if (verify_url && finished) {
        const auto give_up = std::chrono::steady_clock::now() + *verify_wait;
        auto report = verify_target(*verify_url, spec, g.final_state());
        while ((!report || !report->ok()) && std::chrono::steady_clock::now() < give_up) {
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
            report = verify_target(*verify_url, spec, g.final_state());
        }
        if (!report) {
            return fail("--verify: " + report.error().message());
        }
        verified = report->ok();
        proto::json v = proto::json::object();
        v.set("ok", proto::json::boolean(report->ok()));
        v.set("rows_expected", proto::json::number(static_cast<int64_t>(report->rows_expected)));
        v.set("rows_found", proto::json::number(static_cast<int64_t>(report->rows_found)));
        v.set("missing", proto::json::number(static_cast<int64_t>(report->missing)));
        v.set("unexpected", proto::json::number(static_cast<int64_t>(report->unexpected)));
        v.set("differing", proto::json::number(static_cast<int64_t>(report->differing)));
        proto::json diffs = proto::json::array();
        for (const std::string& d : report->differences) {
            diffs.items().push_back(proto::json::string(d));
            std::cerr << "crdb-emulator: verify: " << d << "\n";
        }
        v.set("differences", std::move(diffs));
        summary.set("verify", std::move(v));
    }
    if (check_every) {
        sample();  // once more, at the end
        proto::json p = proto::json::object();
        p.set("checks", proto::json::number(static_cast<int64_t>(progress.checks)));
        p.set("ok", proto::json::number(static_cast<int64_t>(progress.ok)));
        p.set("failed", proto::json::number(static_cast<int64_t>(progress.failed)));
        p.set("not_ready", proto::json::number(static_cast<int64_t>(progress.not_ready)));
        p.set("unreachable", proto::json::number(static_cast<int64_t>(progress.errors)));
        p.set("newest_checkpoint", proto::json::string(progress.newest.to_string()));
        proto::json diffs = proto::json::array();
        for (const std::string& d : progress.differences) {
            diffs.items().push_back(proto::json::string(d));
        }
        p.set("differences", std::move(diffs));
        summary.set("progress_checks", std::move(p));
        verified = verified && progress.failed == 0;
    }
    const std::string text = proto::to_crdb_text(summary);
    std::cout << text << std::endl;
    if (vm.count("summary") != 0U) {
        std::ofstream(vm["summary"].as<std::string>()) << text << "\n";
    }
    if (!finished) {
        std::cerr << "crdb-emulator: not every row was acknowledged in time\n";
        return 1;
    }
    return verified ? 0 : 1;
}

namespace {

constexpr const char* serve_usage =
    R"(crdb-emulator serve: a CockroachDB stand-in in front of a PostgreSQL server.

Usage:
  crdb-emulator serve --backend postgres://user:pass@host:port/db [flags]

Clients connect with the PostgreSQL protocol; statements pass through to the backend, except
CockroachDB's own (SELECT version(), SHOW/SET CLUSTER SETTING, CREATE CHANGEFEED ... INTO
'webhook-https://...', SHOW CHANGEFEED JOBS, PAUSE/RESUME/CANCEL JOB,
cluster_logical_timestamp(), CREATE/DROP DATABASE, SHOW DATABASES and db.schema.table names:
other databases are schemas of the backend's), which it answers. Changefeeds read the backend's
changes through logical decoding (wal2json). SIGTERM or SIGINT stops it (exit 0).
)";

int serve(int argc, char** argv) {
    po::options_description desc("Flags");
    desc.add_options()("help,h", "this help")(
        "backend", po::value<std::string>(),
        "the PostgreSQL behind it (required; its role needs REPLICATION, the server "
        "wal_level=logical and wal2json)")(
        "listen", po::value<std::string>()->default_value("127.0.0.1:26257"),
        "host:port to accept clients on (port 0: any)")(
        "tls-cert", po::value<std::string>(),
        "PEM certificate chain: clients may then use TLS (sslmode=require/verify-full)")(
        "tls-key", po::value<std::string>(), "PEM private key of --tls-cert")(
        "ready-file", po::value<std::string>(), "write host:port here once clients can connect")(
        "gc-ttl", po::value<std::string>()->default_value("4h"),
        "keep this much change history (gc.ttlseconds): older cursors and feeds paused longer "
        "fail as on CockroachDB");
    add_fault_options(desc);
    po::variables_map vm;
    if (auto done = parse_flags(argc, argv, desc, serve_usage, vm)) {
        return *done;
    }
    if (vm.count("backend") == 0U) {
        return fail("--backend is required");
    }
    auto backend = conn_url::parse(vm["backend"].as<std::string>());
    if (!backend) {
        return fail("--backend: " + backend.error().message());
    }
    if (backend->dialect() != dialect::postgres) {
        return fail("--backend must be a PostgreSQL connection (postgres://...)");
    }
    auto listen = parse_net_address(vm["listen"].as<std::string>());
    if (!listen) {
        return fail("--listen: " + listen.error().message());
    }
    if ((vm.count("tls-cert") != 0U) != (vm.count("tls-key") != 0U)) {
        return fail("--tls-cert and --tls-key go together");
    }
    // Signals are taken by this thread only (sigwait below).
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    cluster_options copts;
    copts.backend = *backend;
    auto faults = read_fault_options(vm);
    if (!faults) {
        return fail(faults.error().message());
    }
    copts.faults = *faults;
    auto restart = read_restart_options(vm);
    if (!restart) {
        return fail(restart.error().message());
    }
    copts.restart = *restart;
    auto order = read_order_options(vm);
    if (!order) {
        return fail(order.error().message());
    }
    copts.order = *order;
    auto gc_ttl = parse_duration(vm["gc-ttl"].as<std::string>());
    if (!gc_ttl || gc_ttl->count() <= 0) {
        return fail("--gc-ttl takes a positive duration, e.g. 4h");
    }
    copts.gc_ttl = *gc_ttl;
    cluster c(copts);
    if (auto started = c.start(); !started) {
        return fail(started.error().message());
    }
    proxy_options popts;
    popts.listen_host = listen->host;
    popts.listen_port = listen->port;
    popts.backend_host = backend->host().empty() ? "127.0.0.1" : backend->host();
    popts.backend_port = backend->port_or_default();
    if (vm.count("tls-cert") != 0U) {
        popts.tls_certificate = vm["tls-cert"].as<std::string>();
        popts.tls_private_key = vm["tls-key"].as<std::string>();
    }
    pg_proxy proxy(popts, c);
    if (auto started = proxy.start(); !started) {
        return fail(started.error().message());
    }
    const std::string address = fmt::format("{}:{}", popts.listen_host, proxy.port());
    std::cerr << fmt::format("crdb-emulator: serving CockroachDB on {}{} in front of {}\n", address,
                             popts.tls_certificate.empty() ? "" : " (TLS)", backend->redacted());
    if (vm.count("ready-file") != 0U) {
        const std::string path = vm["ready-file"].as<std::string>();
        std::ofstream(path + ".tmp") << address << "\n";
        std::rename((path + ".tmp").c_str(), path.c_str());
    }
    int sig = 0;
    sigwait(&signals, &sig);
    std::cerr << "crdb-emulator: stopping\n";
    proxy.stop();
    c.stop();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string_view command = argc >= 2 ? std::string_view(argv[1]) : "";
    if (command == "workload") {
        return workload(argc - 1, argv + 1);
    }
    if (command == "serve") {
        return serve(argc - 1, argv + 1);
    }
    std::cerr << usage << "\n" << serve_usage;
    return command == "--help" || command == "-h" ? 0 : 1;
}
