#include "molt/emulator/cluster.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <iostream>
#include <thread>

#include <fmt/format.h>

#include "molt/common/duration.hpp"
#include "molt/common/time_format.hpp"
#include "molt/emulator/crdb_databases.hpp"
#include "molt/emulator/crdb_names.hpp"
#include "molt/emulator/https_transport.hpp"
#include "molt/emulator/pg_client.hpp"

namespace molt::emulator {

// The cluster settings molt, replicator and the failback docs use. Types: b bool, i int,
// d duration, s string (SHOW CLUSTER SETTINGS' setting_type letters).
struct setting_def {
    std::string_view name;
    char type;
    std::string_view default_value;
    std::string_view description;
};
namespace {

using crdb::statement_result;

constexpr std::array<setting_def, 11> known_settings = {{
    {"changefeed.new_webhook_sink_enabled", 'b', "true",
     "use the v2 webhook sink (the only one crdb-emulator has)"},
    {"changefeed.sink_io_workers", 'i', "0",
     "concurrent requests per changefeed (0: min(cores, 32)); applies to new feeds"},
    {"cluster.organization", 's', "", "organization name"},
    {"enterprise.license", 's', "", "the licence (crdb-emulator needs none)"},
    {"kv.closed_timestamp.target_duration", 'd', "3s",
     "how far behind the wall clock resolved timestamps are (0s: no lag)"},
    {"kv.rangefeed.closed_timestamp_refresh_interval", 'd', "3s",
     "how often a rangefeed's closed timestamp (and so the resolved timestamp) moves"},
    {"kv.rangefeed.concurrent_catchup_iterators", 'i', "16", "accepted; not emulated"},
    {"kv.rangefeed.enabled", 'b', "false", "if set, rangefeeds (and changefeeds) are enabled"},
    {"server.time_until_store_dead", 'd', "5m0s", "accepted; not emulated"},
    {"sql.stats.automatic_collection.enabled", 'b', "true", "accepted; not emulated"},
    {"version", 's', "25.2", "the cluster version"},
}};

const setting_def* find_setting(std::string_view name) {
    const auto it = std::find_if(known_settings.begin(), known_settings.end(),
                                 [&](const setting_def& d) { return d.name == name; });
    return it == known_settings.end() ? nullptr : &*it;
}

statement_result unknown_setting(std::string_view name) {
    return statement_result::failure("42704", fmt::format("unknown cluster setting \"{}\"", name));
}

std::string_view pg_type(char setting_type) {
    switch (setting_type) {
    case 'b': return "bool";
    case 'i': return "int8";
    case 'd': return "interval";
    default: return "text";
    }
}

// A value as stored: canonical text of its type, or an error as CockroachDB words it.
result<std::string> setting_value(const setting_def& d, const std::string& v) {
    switch (d.type) {
    case 'b':
        if (v == "true" || v == "false") {
            return v;
        }
        return error{errc::invalid_argument,
                     fmt::format("could not parse \"{}\" as type bool: invalid bool value", v)};
    case 'i': {
        int64_t n = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || end != v.data() + v.size()) {
            return error{errc::invalid_argument,
                         fmt::format("could not parse \"{}\" as type int", v)};
        }
        return std::to_string(n);
    }
    case 'd': {
        auto parsed = parse_duration(v);
        if (!parsed) {
            return error{errc::invalid_argument,
                         fmt::format("could not parse \"{}\" as type interval", v)};
        }
        if (parsed->count() < 0) {
            return error{errc::invalid_argument,
                         fmt::format("cannot be set to a negative duration: {}", v)};
        }
        return format_duration(*parsed);
    }
    default: return v;
    }
}

std::string timestamp_text(int64_t nanos) {
    return format_rfc3339_nanos_utc(nanos);
}

std::string text_array(const std::vector<std::string>& items) {
    std::string out = "{";
    for (const std::string& i : items) {
        out += out.size() > 1 ? ",\"" : "\"";
        for (const char c : i) {
            if (c == '"' || c == '\\') {
                out += '\\';
            }
            out += c;
        }
        out += '"';
    }
    return out + "}";
}

std::string sqlstate_of(const error& e) {
    switch (e.code()) {
    case errc::not_found: return "42P01";
    case errc::unsupported: return "0A000";
    case errc::invalid_argument: return "22023";
    default: return "XX000";
    }
}

}  // namespace

std::string redact_sink_uri(std::string_view uri) {
    std::string out(uri);
    for (size_t at = out.find("client_key="); at != std::string::npos;
         at = out.find("client_key=", at + 1)) {
        if (at > 0 && out[at - 1] != '?' && out[at - 1] != '&') {
            continue;
        }
        const size_t value = at + std::string_view("client_key=").size();
        const size_t end = out.find('&', value);
        out.replace(value, end == std::string::npos ? std::string::npos : end - value, "redacted");
    }
    return out;
}

cluster::cluster(cluster_options options) : options_(std::move(options)) {}

cluster::~cluster() {
    stop();
}

result<void> cluster::start() {
    auto db = pg_client::connect(options_.backend.libpq_conninfo());
    if (!db) {
        return std::move(db).error();
    }
    auto v = db->query("SHOW server_version");
    if (!v) {
        return std::move(v).error();
    }
    version_ = fmt::format(
        "CockroachDB CCL v25.2.0 (x86_64-pc-linux-gnu, built 2025/05/01 00:00:00, go1.23.7) "
        "[emulated: crdb-emulator over PostgreSQL {}]",
        v->rows.empty() ? "?" : v->rows[0][0].value_or("?"));
    capture_ =
        std::make_unique<capture>(options_.backend.libpq_conninfo(), clock_, options_.gc_ttl);
    return capture_->start();
}

void cluster::stop() {
    std::vector<changefeed_job*> jobs;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (stopped_) {
            return;
        }
        stopped_ = true;
        for (auto& [id, j] : jobs_) {
            jobs.push_back(j.get());
        }
    }
    for (changefeed_job* j : jobs) {
        const job_status st = j->status();
        (void)j->pause();  // stops its sender; the process is going away
        const sender_stats n = j->stats();
        std::cerr << fmt::format(
            "crdb-emulator: job {} ({}): {} rows sent, {} acknowledged, {} requests, {} retries, "
            "{} resolved timestamps, {} restarts ({} requests cancelled in flight); faults: "
            "duplicate={} late_duplicate={} duplicate_resolved={} split_transaction={} "
            "dropped_connection={} lost_resolved={} abandon={}\n",
            st.id, st.status, n.rows_sent, n.rows_acknowledged, n.requests, n.retries,
            n.resolved_sent, n.restarts, n.cancelled, n.duplicates, n.late_duplicates,
            n.duplicate_resolved, n.split_transactions, n.dropped_connections, n.lost_resolved,
            n.abandoned);
    }
    if (capture_) {
        capture_->stop();
    }
}

std::string cluster::setting_locked(const setting_def& d) const {
    const auto it = settings_.find(std::string(d.name));
    return it == settings_.end() ? std::string(d.default_value) : it->second;
}

void cluster::note_closed_timestamp_locked() {
    for (const auto& [name, cell] :
         {std::pair<std::string_view, std::atomic<int64_t>*>{"kv.closed_timestamp.target_duration",
                                                             &closed_target_ns_},
          {"kv.rangefeed.closed_timestamp_refresh_interval", &closed_refresh_ns_}}) {
        // Stored values are canonical, so they parse.
        cell->store(parse_duration(setting_locked(*find_setting(name)))->count());
    }
}

changefeed_job* cluster::job(int64_t id) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = jobs_.find(id);
    return it == jobs_.end() ? nullptr : it->second.get();
}

statement_result cluster::execute(const crdb::statement& s, const std::string& user,
                                  const std::string& database) {
    if (const auto* show = std::get_if<crdb::show_setting>(&s)) {
        const setting_def* d = find_setting(show->name);
        if (d == nullptr) {
            return unknown_setting(show->name);
        }
        const std::lock_guard<std::mutex> lock(mutex_);
        statement_result r;
        r.columns.push_back({show->name, std::string(pg_type(d->type))});
        r.rows.push_back({setting_locked(*d)});
        return r;
    }
    if (std::holds_alternative<crdb::show_all_settings>(s)) {
        const std::lock_guard<std::mutex> lock(mutex_);
        statement_result r;
        r.columns = {{"variable", "text"},
                     {"value", "text"},
                     {"setting_type", "text"},
                     {"description", "text"}};
        for (const setting_def& d : known_settings) {
            r.rows.push_back({std::string(d.name), setting_locked(d), std::string(1, d.type),
                              std::string(d.description)});
        }
        return r;
    }
    if (const auto* set = std::get_if<crdb::set_setting>(&s)) {
        const setting_def* d = find_setting(set->name);
        if (d == nullptr) {
            return unknown_setting(set->name);
        }
        const std::lock_guard<std::mutex> lock(mutex_);
        if (!set->value) {
            settings_.erase(set->name);
            note_closed_timestamp_locked();
            return {};
        }
        auto v = setting_value(*d, *set->value);
        if (!v) {
            return statement_result::failure("22023", v.error().message());
        }
        settings_[set->name] = *v;
        note_closed_timestamp_locked();
        return {};
    }
    if (const auto* cf = std::get_if<crdb::create_changefeed>(&s)) {
        return create(*cf, user, database);
    }
    if (const auto* a = std::get_if<crdb::alter_changefeed>(&s)) {
        return alter(*a, database);
    }
    if (const auto* sj = std::get_if<crdb::show_jobs>(&s)) {
        return show(*sj);
    }
    if (auto r = crdb::execute_database_statement(s, database)) {
        if (!r->error) {
            note_schemas(s, database);
        }
        return std::move(*r);
    }
    if (const auto* c = std::get_if<crdb::control_job>(&s)) {
        changefeed_job* j = job(c->job);
        if (j == nullptr) {
            return statement_result::failure("42704",
                                             fmt::format("job with ID {} does not exist", c->job));
        }
        const result<void> done = c->what == crdb::control_job::action::pause    ? j->pause()
                                  : c->what == crdb::control_job::action::resume ? j->resume()
                                                                                 : j->cancel();
        if (!done) {
            return statement_result::failure("55000", done.error().message());
        }
        return {};
    }
    return statement_result::failure("0A000", "unimplemented: statement not emulated");
}

schema_cache& cluster::schemas(const std::string& database) {
    const std::lock_guard<std::mutex> lock(mutex_);
    std::unique_ptr<schema_cache>& cache = schemas_[database];
    if (!cache) {
        // Later keywords of a libpq conninfo win: the backend's role, another database.
        std::string name;
        for (const char c : database) {
            name += c == '\'' || c == '\\' ? std::string{'\\', c} : std::string{c};
        }
        cache = std::make_unique<schema_cache>(options_.backend.libpq_conninfo() + " dbname='" +
                                               name + "'");
    }
    return *cache;
}

void cluster::note_schemas(const crdb::statement& s, const std::string& database) {
    if (const auto* d = std::get_if<crdb::create_database>(&s);
        d != nullptr && d->name != database) {
        schemas(database).added({crdb::backend_schema(d->name, "public"),
                                 crdb::backend_schema(d->name, "information_schema")});
    } else if (const auto* dd = std::get_if<crdb::drop_database>(&s);
               dd != nullptr && dd->name != database) {
        schemas(database).dropped_database(dd->name);
    } else if (const auto* cs = std::get_if<crdb::create_schema>(&s);
               cs != nullptr && cs->database != database) {
        schemas(database).added({crdb::backend_schema(cs->database, cs->schema)});
    }
}

statement_result cluster::create(const crdb::create_changefeed& cf, const std::string& user,
                                 const std::string& database) {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (setting_locked(*find_setting("kv.rangefeed.enabled")) != "true") {
            return statement_result::failure(
                "55000",
                "rangefeeds require the kv.rangefeed.enabled setting. See "
                "https://www.cockroachlabs.com/docs/v25.2/"
                "create-and-configure-changefeeds.html#enable-rangefeeds");
        }
    }
    const std::string& backend_db = options_.backend.database();
    if (database != backend_db) {
        return statement_result::failure(
            "0A000", fmt::format("unimplemented: crdb-emulator captures changes in database "
                                 "\"{}\" only (its --backend); this session uses \"{}\"",
                                 backend_db, database));
    }
    const std::string& uri = cf.sink_uri;
    if (uri.rfind("webhook-http://", 0) == 0) {
        return statement_result::failure("22023", "this sink requires webhook-https");
    }
    if (uri.rfind("webhook-https://", 0) != 0) {
        const size_t colon = uri.find("://");
        return statement_result::failure(
            "0A000", fmt::format("unimplemented: sink scheme \"{}\" is not emulated by "
                                 "crdb-emulator (only webhook-https://)",
                                 colon == std::string::npos ? uri : uri.substr(0, colon)));
    }
    auto options = parse_changefeed_options(cf.options);
    if (!options) {
        return statement_result::failure(sqlstate_of(options.error()), options.error().message());
    }
    if (options->cursor && !(capture_->gc_threshold() < *options->cursor)) {
        return statement_result::failure(
            "XXUUU",
            fmt::format("batch timestamp {} must be after replica GC threshold {}",
                        options->cursor->to_string(), capture_->gc_threshold().to_string()));
    }
    auto db = pg_client::connect(options_.backend.libpq_conninfo());
    if (!db) {
        return statement_result::failure("08006", db.error().message());
    }
    std::vector<table_info> tables;
    if (auto failed = describe_targets(cf.tables, cf.families, *options, database, *db, tables)) {
        return std::move(*failed);
    }
    endpoint_options endpoint;
    endpoint.sink_uri = uri;
    endpoint.authorization = options->auth_header;
    endpoint.timeout = options->client_timeout;
    endpoint.compression = options->compression;
    auto connect = make_https_transport(endpoint);
    if (!connect) {
        return statement_result::failure("22023", connect.error().message());
    }

    changefeed_job::setup setup;
    setup.sink_uri = redact_sink_uri(uri);
    for (size_t i = 0; i < cf.tables.size(); ++i) {
        std::string joined;
        for (const std::string& part : cf.tables[i]) {
            joined += (joined.empty() ? "" : ".") + part;
        }
        if (i < cf.families.size() && cf.families[i]) {
            joined += " FAMILY " + crdb::display_name({*cf.families[i]});
        }
        setup.targets.push_back(std::move(joined));
    }
    std::string tail = " INTO " + crdb::quote_literal(setup.sink_uri);
    for (size_t i = 0; i < cf.options.size(); ++i) {
        const auto& [name, value] = cf.options[i];
        tail += (i == 0 ? " WITH OPTIONS (" : ", ") + name;
        if (value) {
            tail +=
                " = " + crdb::quote_literal(name == "webhook_auth_header" ? "redacted" : *value);
        }
        tail += i + 1 == cf.options.size() ? ")" : "";
    }
    setup.description_tail = std::move(tail);
    setup.user = user;
    setup.tables = std::move(tables);
    setup.options = std::move(options).value();
    setup.connect = std::move(connect).value();
    setup.faults = options_.faults;
    setup.restart = options_.restart;
    setup.order = options_.order;
    setup.conninfo = options_.backend.libpq_conninfo();
    setup.closed_timestamp = [this] {
        return closed_timestamp_settings{std::chrono::nanoseconds(closed_target_ns_.load()),
                                         std::chrono::nanoseconds(closed_refresh_ns_.load())};
    };
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        const int64_t configured =
            std::stoll(setting_locked(*find_setting("changefeed.sink_io_workers")));
        setup.workers = configured > 0
                            ? static_cast<size_t>(configured)
                            : std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 32);
        // Job ids look like CockroachDB's (unique_rowid: time in 10 µs units, then 15 bits).
        setup.id = ((wall_clock_nanos() / 10000) << 15) | (job_sequence_++ & 0x7fff);
    }
    const int64_t id = setup.id;
    auto j = std::make_unique<changefeed_job>(std::move(setup), *capture_, clock_);
    j->start();
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        jobs_.emplace(id, std::move(j));
    }
    statement_result r;
    r.columns.push_back({"job_id", "int8"});
    r.rows.push_back({std::to_string(id)});
    return r;
}

void cluster::note_table(const std::string& database, const crdb::created_table& t) {
    if (t.name.empty() || t.name.size() > 2) {
        return;
    }
    // An unqualified name is taken to be in public (the default search_path's first schema).
    std::array<std::string, 3> at{database, t.name.size() == 2 ? t.name[0] : "public",
                                  t.name.back()};
    const std::lock_guard<std::mutex> lock(mutex_);
    if (t.families.empty()) {
        families_.erase(at);
    } else {
        families_[std::move(at)] = t.families;
    }
}

std::vector<crdb::column_family> cluster::families_of(const table_info& t) {
    std::vector<crdb::column_family> out;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        const auto it = families_.find({options_.backend.database(), t.schema, t.name});
        if (it != families_.end()) {
            out = it->second;
        }
    }
    auto exists = [&](const std::string& c) {
        return std::any_of(t.columns.begin(), t.columns.end(),
                           [&](const auto& column) { return column.first == c; });
    };
    for (crdb::column_family& f : out) {
        f.columns.erase(std::remove_if(f.columns.begin(), f.columns.end(),
                                       [&](const std::string& c) { return !exists(c); }),
                        f.columns.end());
    }
    if (out.empty()) {
        out.push_back({"primary", {}});
    }
    for (const auto& [name, type] : t.columns) {
        const bool assigned = std::any_of(out.begin(), out.end(), [&](const auto& f) {
            return std::find(f.columns.begin(), f.columns.end(), name) != f.columns.end();
        });
        if (!assigned) {
            out.front().columns.push_back(name);
        }
    }
    return out;
}

std::optional<statement_result> cluster::describe_targets(
    const std::vector<std::vector<std::string>>& names,
    const std::vector<std::optional<std::string>>& families, const changefeed_options& options,
    const std::string& database, pg_client& db, std::vector<table_info>& out) {
    const std::string& backend_db = options_.backend.database();
    for (size_t n = 0; n < names.size(); ++n) {
        const std::vector<std::string>& name = names[n];
        const std::optional<std::string> family =
            n < families.size() ? families[n] : std::optional<std::string>();
        const std::string table = name.back();
        const std::string schema = name.size() >= 2 ? name[name.size() - 2] : "public";
        const bool emulated_database =
            (name.size() == 3 && name[0] != backend_db) ||
            (name.size() == 2 && !schemas(database).schema_exists(name[0]) &&
             schemas(database).database_exists(name[0]));
        if (emulated_database) {
            return statement_result::failure(
                "0A000", fmt::format("unimplemented: changefeeds on tables of databases other "
                                     "than crdb-emulator's backend (\"{}\") are not emulated: {}",
                                     backend_db, crdb::display_name(name)));
        }
        auto t = describe_table(db, backend_db, schema, table);
        if (!t) {
            return statement_result::failure(sqlstate_of(t.error()), t.error().message());
        }
        if (options.full_table_name) {
            t->topic = backend_db + "." + schema + "." + table;
        }
        // Column families (changefeed-webhook.md §5): each watched family is its own stream.
        std::vector<crdb::column_family> all = families_of(*t);
        if (family) {
            const auto it = std::find_if(all.begin(), all.end(),
                                         [&](const auto& f) { return f.name == *family; });
            if (it == all.end()) {
                return statement_result::failure(
                    "XXUUU", fmt::format("CHANGEFEED targeting nonexistent or removed column "
                                         "family {} of table {}",
                                         *family, table));
            }
            t->families = {*it};
        } else if (options.split_column_families) {
            t->families = std::move(all);
        } else if (all.size() > 1) {
            return statement_result::failure(
                "XXUUU", fmt::format("CHANGEFEED targeting a table ({}) with multiple column "
                                     "families requires WITH split_column_families and will "
                                     "emit multiple events per row.",
                                     table));
        }
        if (!options.message.diff && t->replica_identity != 'd' && t->replica_identity != 'f') {
            return statement_result::failure(
                "0A000",
                fmt::format("unimplemented: table \"{}\" has REPLICA IDENTITY {}; its deletes "
                            "would come without the primary key (set it to DEFAULT or FULL)",
                            table, t->replica_identity == 'n' ? "NOTHING" : "USING INDEX"));
        }
        if (t->replica_identity != 'f') {
            // Whole old rows in the WAL: before images (diff), and scans as of an earlier HLC
            // (cursor with initial_scan, ALTER CHANGEFEED ADD ... WITH initial_scan) rewind
            // through them, as CockroachDB reads its MVCC history.
            auto altered =
                db.exec(fmt::format("ALTER TABLE {}.{} REPLICA IDENTITY FULL",
                                    crdb::quote_identifier(schema), crdb::quote_identifier(table)));
            if (!altered) {
                return statement_result::failure(
                    "XX000", fmt::format("crdb-emulator keeps whole old rows of changefeed "
                                         "tables (REPLICA IDENTITY FULL): {}",
                                         altered.error().message()));
            }
            t->replica_identity = 'f';
        }
        out.push_back(std::move(t).value());
    }
    return std::nullopt;
}

statement_result cluster::alter(const crdb::alter_changefeed& a, const std::string& database) {
    changefeed_job* j = job(a.job);
    if (j == nullptr) {
        return statement_result::failure(
            "XXUUU", fmt::format("could not load job with job id {}: job with ID {} does not exist",
                                 a.job, a.job));
    }
    if (j->status().status != "paused") {
        return statement_result::failure("XXUUU", fmt::format("job {} is not paused", a.job));
    }
    auto db = pg_client::connect(options_.backend.libpq_conninfo());
    if (!db) {
        return statement_result::failure("08006", db.error().message());
    }
    std::vector<changefeed_job::target_change> changes;
    for (const crdb::alter_changefeed::command& c : a.commands) {
        bool scan = false;
        bool scan_given = false;
        bool no_scan_given = false;
        for (const auto& [name, value] : c.options) {
            scan_given = scan_given || name == "initial_scan";
            no_scan_given = no_scan_given || name == "no_initial_scan";
            if (scan_given && no_scan_given) {
                return statement_result::failure(
                    "22023", "cannot specify both \"initial_scan\" and \"no_initial_scan\"");
            }
            if (name == "initial_scan" && value == "only") {
                return statement_result::failure(
                    "0A000",
                    "unimplemented: ALTER CHANGEFEED ... ADD ... WITH initial_scan = "
                    "'only' is not emulated by crdb-emulator");
            }
            if (name == "initial_scan") {
                const std::string v = value.value_or("");
                if (v != "" && v != "yes" && v != "no" && v != "only") {
                    return statement_result::failure(
                        "22023", fmt::format("cannot set \"initial_scan\" to \"{}\". possible "
                                             "values for initial_scan are \"yes\", \"no\", "
                                             "\"only\", or no value",
                                             v));
                }
                scan = v == "" || v == "yes";
            } else if (name != "no_initial_scan") {
                return statement_result::failure("22023",
                                                 fmt::format("invalid option \"{}\"", name));
            }
        }
        for (const std::vector<std::string>& name : c.tables) {
            changefeed_job::target_change tc;
            tc.add = c.add;
            tc.initial_scan = scan;
            tc.name = crdb::display_name(name);
            std::vector<table_info> described;
            if (c.add) {
                if (auto failed =
                        describe_targets({name}, {}, j->options(), database, *db, described)) {
                    if (failed->error && failed->error->sqlstate == "42P01") {
                        return statement_result::failure(
                            "22023", fmt::format("target \"{}\" does not exist", tc.name));
                    }
                    return std::move(*failed);
                }
                tc.table = std::move(described.front());
            } else {
                tc.table.schema = name.size() >= 2 ? name[name.size() - 2] : "public";
                tc.table.name = name.back();
            }
            changes.push_back(std::move(tc));
        }
    }
    if (auto done = j->alter(changes); !done) {
        return statement_result::failure("22023", done.error().message());
    }
    statement_result r;
    r.columns = {{"job_id", "int8"}, {"job_description", "text"}};
    r.rows.push_back({std::to_string(a.job), j->status().description});
    return r;
}

statement_result cluster::show(const crdb::show_jobs& s) {
    std::vector<job_status> rows;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& [id, j] : jobs_) {
            if (!s.job || *s.job == id) {
                rows.push_back(j->status());
            }
        }
    }
    if (s.job && rows.empty()) {
        return statement_result::failure("42704",
                                         fmt::format("job with ID {} does not exist", *s.job));
    }
    auto opt_time = [](std::optional<int64_t> t) -> std::optional<std::string> {
        return t ? std::optional<std::string>(timestamp_text(*t)) : std::nullopt;
    };
    auto hw = [](const hlc& h) -> std::optional<std::string> {
        return h.is_zero() ? std::nullopt : std::optional<std::string>(h.to_string());
    };
    auto hw_time = [](const hlc& h) -> std::optional<std::string> {
        return h.is_zero() ? std::nullopt : std::optional<std::string>(h.to_rfc3339());
    };
    statement_result r;
    if (s.changefeeds_only) {
        r.columns = {{"job_id", "int8"},
                     {"description", "text"},
                     {"user_name", "text"},
                     {"status", "text"},
                     {"running_status", "text"},
                     {"created", "timestamp"},
                     {"started", "timestamp"},
                     {"finished", "timestamp"},
                     {"modified", "timestamp"},
                     {"high_water_timestamp", "numeric"},
                     {"readable_high_water_timestamptz", "timestamptz"},
                     {"error", "text"},
                     {"sink_uri", "text"},
                     {"full_table_names", "text[]"},
                     {"topics", "text"},
                     {"format", "text"}};
        for (const job_status& j : rows) {
            r.rows.push_back(
                {std::to_string(j.id), j.description, j.user, j.status, j.running_status,
                 timestamp_text(j.created), timestamp_text(j.started), opt_time(j.finished),
                 timestamp_text(j.modified), hw(j.high_water), hw_time(j.high_water), j.error,
                 j.sink_uri, text_array(j.full_table_names), j.topics, std::string("json")});
        }
        return r;
    }
    r.columns = {
        {"job_id", "int8"},         {"job_type", "text"},      {"description", "text"},
        {"statement", "text"},      {"user_name", "text"},     {"status", "text"},
        {"running_status", "text"}, {"created", "timestamp"},  {"started", "timestamp"},
        {"finished", "timestamp"},  {"modified", "timestamp"}, {"fraction_completed", "float8"},
        {"error", "text"},          {"coordinator_id", "int8"}};
    for (const job_status& j : rows) {
        r.rows.push_back(
            {std::to_string(j.id), std::string("CHANGEFEED"), j.description, std::string(""),
             j.user, j.status, j.running_status, timestamp_text(j.created),
             timestamp_text(j.started), opt_time(j.finished), timestamp_text(j.modified),
             std::string(j.status == "succeeded" ? "1" : "0"), j.error, std::string("1")});
    }
    return r;
}

}  // namespace molt::emulator
