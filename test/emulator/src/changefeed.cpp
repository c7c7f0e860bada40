#include "molt/emulator/changefeed.hpp"

#include <algorithm>
#include <charconv>
#include <map>

#include <fmt/format.h>

#include "molt/common/duration.hpp"
#include "molt/common/ident.hpp"
#include "molt/emulator/crdb_sql.hpp"
#include "molt/proto/crdb_types.hpp"

namespace molt::emulator {
namespace {

result<std::chrono::nanoseconds> option_duration(std::string_view name,
                                                 const std::optional<std::string>& v) {
    if (!v) {
        return error{errc::invalid_argument, fmt::format("option \"{}\" requires a value", name)};
    }
    auto d = parse_duration(*v);
    if (!d) {
        return error{errc::invalid_argument,
                     fmt::format("invalid duration value for {}: '{}'", name, *v)};
    }
    return *d;
}

// A key and a row object from column values by name.
struct row_builder {
    const table_info& table;

    const column_value* find(const std::vector<column_value>& values, std::string_view name) const {
        for (const column_value& v : values) {
            if (v.name == name) {
                return &v;
            }
        }
        return nullptr;
    }
    // nullopt when a key column is missing from `values`.
    result<std::optional<proto::json>> key(const std::vector<column_value>& values) const {
        proto::json k = proto::json::array();
        for (const std::string& column : table.primary_key) {
            const column_value* v = find(values, column);
            if (v == nullptr) {
                return std::optional<proto::json>();
            }
            auto j = proto::value_from_pg_text(proto::column_type_from_name(v->type), v->text);
            if (!j) {
                return std::move(j).error();
            }
            k.items().push_back(std::move(j).value());
        }
        return std::optional<proto::json>(std::move(k));
    }
    // The values of `family`'s columns (all of them without one).
    static std::vector<column_value> only(const std::vector<column_value>& values,
                                          const crdb::column_family* family) {
        if (family == nullptr) {
            return values;
        }
        std::vector<column_value> out;
        for (const column_value& v : values) {
            if (std::find(family->columns.begin(), family->columns.end(), v.name) !=
                family->columns.end()) {
                out.push_back(v);
            }
        }
        return out;
    }
    // Whether two rows hold the same values (as PostgreSQL's text forms).
    static bool same(const std::vector<column_value>& a, const std::vector<column_value>& b) {
        return std::is_permutation(a.begin(), a.end(), b.begin(), b.end(),
                                   [](const column_value& x, const column_value& y) {
                                       return x.name == y.name && x.text == y.text;
                                   });
    }
    result<proto::json> row(const std::vector<column_value>& values) const {
        proto::json r = proto::json::object();
        for (const column_value& v : values) {
            auto j = proto::value_from_pg_text(proto::column_type_from_name(v.type), v.text);
            if (!j) {
                return error{errc::parse_error,
                             fmt::format("{}.{}: {}", table.name, v.name, j.error().message())};
            }
            r.members().push_back({v.name, std::move(j).value()});
        }
        return r;
    }
};

}  // namespace

std::vector<std::string> target_topics(const table_info& t) {
    if (t.families.empty()) {
        return {t.topic};
    }
    std::vector<std::string> out;
    for (const crdb::column_family& f : t.families) {
        out.push_back(t.topic + "." + f.name);
    }
    return out;
}

result<table_info> describe_table(pg_client& db, const std::string& database,
                                  const std::string& schema, const std::string& name) {
    auto rel = db.query(
        "SELECT c.oid::text, c.relreplident::text FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
        {schema, name});
    if (!rel) {
        return std::move(rel).error();
    }
    if (rel->rows.empty()) {
        return error{errc::not_found,
                     fmt::format("relation \"{}.{}.{}\" does not exist", database, schema, name)};
    }
    const std::string oid = *rel->rows[0][0];
    auto columns = db.query(
        "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        {oid});
    auto key = db.query(
        "SELECT a.attname::text FROM pg_index i "
        "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY k.ord",
        {oid});
    if (!columns) {
        return std::move(columns).error();
    }
    if (!key) {
        return std::move(key).error();
    }
    table_info t{database, schema, name, {}, {}, name, 'd', {}};
    t.replica_identity = rel->rows[0][1].value_or("d").front();
    t.oid = static_cast<uint32_t>(std::stoul(oid));
    for (const pg_row& r : columns->rows) {
        t.columns.emplace_back(*r[0], *r[1]);
    }
    for (const pg_row& r : key->rows) {
        t.primary_key.push_back(*r[0]);
    }
    if (t.primary_key.empty()) {
        return error{errc::unsupported,
                     fmt::format("table \"{}\" has no primary key; crdb-emulator keys messages "
                                 "by it (CockroachDB would use its hidden rowid column)",
                                 name)};
    }
    return t;
}

result<changefeed_options> parse_changefeed_options(
    const std::vector<std::pair<std::string, std::optional<std::string>>>& options) {
    changefeed_options o;
    o.message.updated = false;
    bool initial_scan_given = false;
    for (const auto& [name, value] : options) {
        if (name == "updated") {
            o.message.updated = true;
        } else if (name == "resolved") {
            o.resolved = true;
            if (value) {
                auto d = option_duration(name, value);
                if (!d) {
                    return std::move(d).error();
                }
                o.resolved_interval = *d;
            }
        } else if (name == "min_checkpoint_frequency") {
            auto d = option_duration(name, value);
            if (!d) {
                return std::move(d).error();
            }
            o.checkpoint_interval = *d;
        } else if (name == "initial_scan") {
            initial_scan_given = true;
            const std::string v = value.value_or("yes");
            if (v == "yes") {
                o.initial_scan = initial_scan_mode::yes;
            } else if (v == "no") {
                o.initial_scan = initial_scan_mode::no;
            } else if (v == "only") {
                o.initial_scan = initial_scan_mode::only;
            } else {
                return error{errc::invalid_argument, fmt::format("unknown initial_scan: {}", v)};
            }
        } else if (name == "schema_change_policy") {
            const std::string v = value.value_or("");
            if (v == "backfill") {
                o.on_schema_change = schema_change_policy::backfill;
            } else if (v == "nobackfill") {
                o.on_schema_change = schema_change_policy::nobackfill;
            } else if (v == "stop") {
                o.on_schema_change = schema_change_policy::stop;
            } else {
                return error{errc::invalid_argument,
                             fmt::format("unknown schema_change_policy: {}", v)};
            }
        } else if (name == "schema_change_events") {
            const std::string v = value.value_or("");
            if (v == "default") {
                o.schema_events = schema_change_events::default_events;
            } else if (v == "column_changes") {
                o.schema_events = schema_change_events::column_changes;
            } else {
                return error{errc::invalid_argument,
                             fmt::format("unknown schema_change_events: {}", v)};
            }
        } else if (name == "no_initial_scan") {
            initial_scan_given = true;
            o.initial_scan = initial_scan_mode::no;
        } else if (name == "initial_scan_only") {
            initial_scan_given = true;
            o.initial_scan = initial_scan_mode::only;
        } else if (name == "cursor") {
            auto c = hlc::parse_cursor(value.value_or(""));
            if (!c) {
                return error{
                    errc::invalid_argument,
                    fmt::format("cursor: cannot parse '{}' as a timestamp", value.value_or(""))};
            }
            o.cursor = *c;
        } else if (name == "diff") {
            o.message.diff = true;
        } else if (name == "mvcc_timestamp") {
            o.message.mvcc_timestamp = true;
        } else if (name == "full_table_name") {
            o.full_table_name = true;
        } else if (name == "envelope") {
            const std::string v = value.value_or("");
            if (v == "wrapped") {
                o.message.envelope = proto::envelope::wrapped;
            } else if (v == "bare") {
                o.message.envelope = proto::envelope::bare;
            } else {
                return error{errc::invalid_argument,
                             fmt::format("this sink is incompatible with envelope={}", v)};
            }
        } else if (name == "format") {
            if (value.value_or("") != "json") {
                return error{
                    errc::invalid_argument,
                    fmt::format("this sink is incompatible with format={}", value.value_or(""))};
            }
        } else if (name == "webhook_sink_config") {
            auto c = proto::webhook_sink_config::parse(value.value_or(""));
            if (!c) {
                return std::move(c).error();
            }
            o.sink_config = *c;
        } else if (name == "webhook_client_timeout") {
            auto d = option_duration(name, value);
            if (!d) {
                return std::move(d).error();
            }
            if (d->count() <= 0) {
                return error{errc::invalid_argument,
                             "webhook_client_timeout must be a positive duration"};
            }
            o.client_timeout = *d;
        } else if (name == "webhook_auth_header") {
            o.auth_header = value.value_or("");
        } else if (name == "compression") {
            // gzip or zstd, in any case (CockroachDB v25.2+ webhook sinks).
            const std::string v = value.value_or("");
            if (ident_equal(v, "gzip")) {
                o.compression = compression::codec::gzip;
            } else if (ident_equal(v, "zstd")) {
                o.compression = compression::codec::zstd;
            } else {
                return error{errc::invalid_argument,
                             fmt::format("unsupported compression algorithm \"{}\"", v)};
            }
        } else if (name == "key_in_value" || name == "topic_in_value" || name == "on_error" ||
                   name == "virtual_columns" || name == "gc_protect_expires_after" ||
                   name == "metrics_label" || name == "protect_data_from_gc_on_pause" ||
                   name.rfind("lagging_ranges_", 0) == 0) {
            // Accepted; nothing to emulate (key and topic are always in the value here).
        } else if (name == "split_column_families") {
            o.split_column_families = true;
        } else if (name == "extra_headers" || name == "end_time" || name == "key_column" ||
                   name == "unordered" || name == "encode_json_value_null_as_object") {
            return error{
                errc::unsupported,
                fmt::format("unimplemented: option {} is not emulated by crdb-emulator", name)};
        } else {
            return error{errc::invalid_argument, fmt::format("invalid option \"{}\"", name)};
        }
    }
    if (o.split_column_families && o.resolved) {
        // CockroachDB fans resolved timestamps out to every topic of a sink with topics (the v2
        // webhook sink is one), and the families' topics are not known in advance.
        return error{errc::invalid_argument,
                     "resolved timestamps are not currently supported with split_column_families "
                     "for this sink as the set of topics to fan them out to may change. Instead, "
                     "use TABLE tablename FAMILY familyname to specify individual families to "
                     "watch."};
    }
    if (o.cursor && !initial_scan_given) {
        o.initial_scan = initial_scan_mode::no;  // a cursor means no initial scan by default
    }
    return o;
}

namespace {

// An HLC as CockroachDB's hlc.Timestamp prints it: <seconds>.<nanoseconds, 9 digits>,<logical>.
std::string timestamp_text(hlc t) {
    return fmt::format("{}.{:09},{}", t.wall() / 1000000000, t.wall() % 1000000000, t.logical());
}

}  // namespace

bool backfills(const schema_change& change, schema_change_events events) {
    auto has = [](const std::vector<column_def>& columns, const std::string& name) {
        return std::any_of(columns.begin(), columns.end(),
                           [&](const column_def& c) { return c.name == name; });
    };
    for (const column_def& c : change.before) {
        if (!has(change.after, c.name)) {
            return true;  // dropped
        }
    }
    for (const column_def& c : change.after) {
        if (!has(change.before, c.name) &&
            (events == schema_change_events::column_changes || c.has_default)) {
            return true;  // added: with a default or computed, or any with column_changes
        }
    }
    return false;
}

result<std::vector<change>> feed_changes(const source_txn& txn,
                                         const std::vector<table_info>& tables,
                                         const changefeed_options& options, hlc updated,
                                         std::optional<hlc> mvcc) {
    struct pending {
        std::string topic, row_topic, key_text;
        proto::json key, after, before;
    };
    std::vector<pending> out;
    std::map<std::pair<std::string, std::string>, size_t> index;  // (topic, key) -> out
    // row_topic: the table's topic, for every family of it (CockroachDB routes by the encoded
    // row key, so one row's families share a worker and keep their order).
    auto emit = [&](const std::string& topic, const std::string& row_topic, proto::json key,
                    proto::json after, proto::json before) {
        std::string key_text = proto::to_crdb_text(key);
        const auto [it, added] = index.try_emplace({topic, key_text}, out.size());
        if (added) {
            out.push_back({topic, row_topic, std::move(key_text), std::move(key), std::move(after),
                           std::move(before)});
        } else {
            // One message per key per transaction: the final row; the before image stays the
            // one from before the transaction.
            out[it->second].after = std::move(after);
        }
    };
    // One stream of a target: the whole row under its topic, or one family's columns.
    struct stream {
        std::string topic;
        const crdb::column_family* family = nullptr;
    };
    for (const row_change& rc : txn.changes) {
        if (rc.op == 'T') {
            continue;
        }
        // A table may be watched several times (TABLE t FAMILY f1, TABLE t FAMILY f2).
        for (const table_info& t : tables) {
            if (t.schema != rc.schema || t.name != rc.table) {
                continue;
            }
            const row_builder b{t};
            std::vector<stream> streams;
            if (t.families.empty()) {
                streams.push_back({t.topic, nullptr});
            }
            for (const crdb::column_family& f : t.families) {
                streams.push_back({t.topic + "." + f.name, &f});
            }
            auto new_key = b.key(rc.columns);
            auto old_key = b.key(rc.identity);
            if (!new_key) {
                return std::move(new_key).error();
            }
            if (!old_key) {
                return std::move(old_key).error();
            }
            if (rc.op == 'D' && !*old_key) {
                return error{errc::parse_error,
                             fmt::format("a delete in {} without its primary key (REPLICA "
                                         "IDENTITY must be DEFAULT or FULL)",
                                         t.name)};
            }
            if (rc.op != 'D' && !*new_key) {
                return error{errc::parse_error,
                             fmt::format("a row of {} without its primary key", t.name)};
            }
            // A full old row (REPLICA IDENTITY FULL): the before image, and what tells which
            // families an update changed; a key alone is neither.
            const bool whole_old_row = rc.identity.size() == t.columns.size();
            const bool key_changed = rc.op == 'U' && *old_key && !(**old_key == **new_key);
            for (const stream& s : streams) {
                const std::vector<column_value> old_values =
                    row_builder::only(rc.identity, s.family);
                const std::vector<column_value> new_values =
                    row_builder::only(rc.columns, s.family);
                if (rc.op == 'U' && !key_changed && s.family != nullptr && whole_old_row &&
                    row_builder::same(old_values, new_values)) {
                    continue;  // an update that left this family as it was
                }
                proto::json before;
                if (options.message.diff && whole_old_row) {
                    auto r = b.row(old_values);
                    if (!r) {
                        return std::move(r).error();
                    }
                    before = std::move(r).value();
                }
                if (rc.op == 'D') {
                    emit(s.topic, t.topic, **old_key, proto::json(), std::move(before));
                    continue;
                }
                auto after = b.row(new_values);
                if (!after) {
                    return std::move(after).error();
                }
                if (key_changed) {
                    // A primary-key change: the old key is deleted, the new one inserted.
                    emit(s.topic, t.topic, **old_key, proto::json(), std::move(before));
                    before = proto::json();
                }
                emit(s.topic, t.topic, **new_key, std::move(after).value(), std::move(before));
            }
        }
    }
    std::vector<change> changes;
    changes.reserve(out.size());
    for (pending& p : out) {
        proto::message m;
        m.topic = p.topic;
        m.key = std::move(p.key);
        m.after = std::move(p.after);
        m.before = std::move(p.before);
        m.updated = updated;
        m.mvcc = mvcc.value_or(updated);
        change c;
        c.pk = p.key_text;
        c.message = proto::encode_message(m, options.message);
        c.key_hash = key_hash(p.row_topic, p.key_text);
        changes.push_back(std::move(c));
    }
    return changes;
}

std::optional<std::string> scan_key(const table_info& t, const std::vector<column_value>& row) {
    std::string key;
    for (const std::string& column : t.primary_key) {
        const auto it = std::find_if(row.begin(), row.end(),
                                     [&](const column_value& v) { return v.name == column; });
        if (it == row.end() || !it->text) {
            return std::nullopt;
        }
        key += *it->text;
        key += '\x1f';
    }
    return key;
}

result<void> rewind_rows(scan_rows& rows, const std::vector<table_info>& tables,
                         const std::vector<std::shared_ptr<const source_txn>>& undo) {
    // The old row in the table's order and types; nullopt without every column.
    auto whole =
        [](const table_info& t,
           const std::vector<column_value>& values) -> std::optional<std::vector<column_value>> {
        std::vector<column_value> out;
        for (const auto& [name, type] : t.columns) {
            const auto it = std::find_if(values.begin(), values.end(),
                                         [&](const column_value& v) { return v.name == name; });
            if (it == values.end()) {
                return std::nullopt;
            }
            out.push_back({name, type, it->text});
        }
        return out;
    };
    for (auto txn = undo.rbegin(); txn != undo.rend(); ++txn) {
        for (auto rc = (*txn)->changes.rbegin(); rc != (*txn)->changes.rend(); ++rc) {
            // A table may be watched several times (TABLE t FAMILY f1, TABLE t FAMILY f2).
            for (size_t index = 0; index < tables.size(); ++index) {
                const table_info* t = &tables[index];
                if (t->schema != rc->schema || t->name != rc->table) {
                    continue;
                }
                auto& table_rows = rows[index];
                auto cannot = [&](std::string_view why) {
                    return error{
                        errc::unsupported,
                        fmt::format("unimplemented: a scan as of {} needs the rows of table "
                                    "\"{}\" as they were then, and {} made at {} cannot be "
                                    "undone",
                                    (*txn)->updated.to_string(), t->name, why,
                                    (*txn)->updated.to_string())};
                };
                if (rc->op == 'T') {
                    return cannot("a TRUNCATE");
                }
                if (rc->op == 'I' || rc->op == 'U') {
                    if (auto key = scan_key(*t, rc->columns)) {
                        table_rows.erase(*key);
                    }
                }
                if (rc->op == 'U' || rc->op == 'D') {
                    auto old = whole(*t, rc->identity);
                    if (!old) {
                        return cannot(
                            "a change without its old row (REPLICA IDENTITY FULL was not set; "
                            "crdb-emulator sets it on the tables of every changefeed)");
                    }
                    auto key = scan_key(*t, *old);
                    if (!key) {
                        return cannot("a change whose old row has no primary key");
                    }
                    table_rows[*key] = std::move(*old);
                }
            }
        }
    }
    return ok();
}

std::string changefeed_description(const std::vector<std::string>& targets,
                                   const std::string& tail) {
    std::string d = "CREATE CHANGEFEED FOR TABLE ";
    for (size_t i = 0; i < targets.size(); ++i) {
        d += (i == 0 ? "" : ", ") + targets[i];
    }
    return d + tail;
}

bool visible_in_snapshot(std::string_view snapshot, uint32_t xid) {
    // "xmin:xmax:xip1,xip2" with 64-bit transaction ids; the low 32 bits are wal2json's.
    auto number = [](std::string_view s) {
        uint64_t v = 0;
        std::from_chars(s.data(), s.data() + s.size(), v);
        return static_cast<uint32_t>(v & 0xffffffffU);
    };
    const size_t c1 = snapshot.find(':');
    const size_t c2 = snapshot.find(':', c1 + 1);
    if (c1 == std::string_view::npos || c2 == std::string_view::npos) {
        return false;
    }
    const uint32_t xmin = number(snapshot.substr(0, c1));
    const uint32_t xmax = number(snapshot.substr(c1 + 1, c2 - c1 - 1));
    if (xid < xmin) {
        return true;
    }
    if (xid >= xmax) {
        return false;
    }
    std::string_view xip = snapshot.substr(c2 + 1);
    while (!xip.empty()) {
        const size_t comma = xip.find(',');
        if (number(xip.substr(0, comma)) == xid) {
            return false;
        }
        xip = comma == std::string_view::npos ? std::string_view() : xip.substr(comma + 1);
    }
    return true;
}

changefeed_job::changefeed_job(setup s, capture& history, hlc_clock& clock)
    : setup_(std::move(s)), history_(history), clock_(clock) {
    start_after_ = setup_.options.cursor ? *setup_.options.cursor : history_.settled_now();
    // The job's protected timestamp, kept at its checkpoint until it ends (paused too); a
    // second lower, as a scan's feed reads from a second before the scan (run()).
    history_.protect(setup_.id, hlc(std::max<int64_t>(0, start_after_.wall() - 1000000000), 0));
    const int64_t now = wall_clock_nanos();
    status_.id = setup_.id;
    status_.description = changefeed_description(setup_.targets, setup_.description_tail);
    status_.user = setup_.user;
    status_.status = "running";
    status_.sink_uri = setup_.sink_uri;
    status_.created = status_.started = status_.modified = now;
    for (const table_info& t : setup_.tables) {
        status_.full_table_names.push_back(t.database + "." + t.schema + "." + t.name);
        for (const std::string& topic : target_topics(t)) {
            status_.topics += (status_.topics.empty() ? "" : ",") + topic;
        }
    }
}

changefeed_job::~changefeed_job() {
    stop_feed();
    history_.release(setup_.id);
}

void changefeed_job::start() {
    const std::lock_guard<std::mutex> lock(mutex_);
    stop_ = false;
    thread_ = std::thread([this] { run(); });
}

void changefeed_job::set_status(std::string status) {
    status_.status = std::move(status);
    status_.modified = wall_clock_nanos();
    if (status_.status != "running" && status_.status != "paused") {
        status_.finished = status_.modified;
    }
}

result<changefeed_job::scanned> changefeed_job::scan_tables(const std::vector<table_info>& tables,
                                                            std::optional<hlc> as_of) {
    if (as_of && !(history_.gc_threshold() < *as_of)) {
        return error{errc::invalid_argument,
                     fmt::format("batch timestamp {} must be after replica GC threshold {}",
                                 as_of->to_string(), history_.gc_threshold().to_string())};
    }
    auto db = pg_client::connect(setup_.conninfo);
    if (!db) {
        return std::move(db).error();
    }
    if (auto r = use_changefeed_text_forms(*db); !r) {
        return r.error();
    }
    if (auto r = db->exec("BEGIN ISOLATION LEVEL REPEATABLE READ"); !r) {
        return r.error();
    }
    // Every transaction this snapshot misses commits after it, so it is decoded, and stamped,
    // after `at`: the scan's rows all carry `at` and the changes after it come later.
    scanned out;
    out.at = clock_.now();
    auto snap = db->query("SELECT pg_current_snapshot()::text");
    if (!snap) {
        return std::move(snap).error();
    }
    out.snapshot = *snap->rows[0][0];
    scan_rows rows(tables.size());
    for (size_t i = 0; i < tables.size(); ++i) {
        const table_info& t = tables[i];
        std::string columns;
        for (const auto& [name, type] : t.columns) {
            columns += (columns.empty() ? "" : ", ") + crdb::quote_identifier(name);
        }
        auto found =
            db->query(fmt::format("SELECT {} FROM {}.{}", columns, crdb::quote_identifier(t.schema),
                                  crdb::quote_identifier(t.name)));
        if (!found) {
            return std::move(found).error();
        }
        for (pg_row& r : found->rows) {
            std::vector<column_value> row;
            for (size_t c = 0; c < t.columns.size(); ++c) {
                row.push_back({t.columns[c].first, t.columns[c].second, std::move(r[c])});
            }
            auto key = scan_key(t, row);
            rows[i][key.value_or("")] = std::move(row);
        }
    }
    (void)db->exec("COMMIT");
    // The transactions the snapshot saw: to rewind through (as of an earlier HLC), and for each
    // row's commit time (mvcc_timestamp). They are all decoded once the frontier passes a clock
    // value read after the snapshot.
    const bool want_mvcc = setup_.options.message.mvcc_timestamp;
    std::vector<std::shared_ptr<const source_txn>> seen_txns;
    if (as_of || want_mvcc) {
        const hlc after = clock_.now();
        auto first = [&] {
            return want_mvcc ? history_.first_after(history_.gc_threshold())
                             : history_.first_after(*as_of);
        };
        size_t next = first();
        capture::news news;
        for (;;) {
            // Waits for transactions after those seen, or a frontier beyond the last one.
            news = history_.since(next, news.frontier, std::chrono::milliseconds(100));
            if (auto f = history_.failure()) {
                return error{errc::unavailable, *f};
            }
            if (news.collected) {
                if (as_of && !(history_.gc_threshold() < *as_of)) {
                    return error{
                        errc::invalid_argument,
                        fmt::format("batch timestamp {} must be after replica GC threshold {}",
                                    as_of->to_string(), history_.gc_threshold().to_string())};
                }
                // Only older transactions went (commit times): start again from the oldest kept.
                seen_txns.clear();
                next = first();
                news = capture::news{};
                continue;
            }
            next += news.txns.size();
            seen_txns.insert(seen_txns.end(), news.txns.begin(), news.txns.end());
            if (after <= news.frontier) {
                break;
            }
            const std::lock_guard<std::mutex> lock(mutex_);
            if (stop_) {
                return error{errc::cancelled, "stopped"};
            }
        }
    }
    if (as_of) {
        std::vector<std::shared_ptr<const source_txn>> undo;
        for (const auto& txn : seen_txns) {
            if (*as_of < txn->updated && visible_in_snapshot(out.snapshot, txn->xid)) {
                undo.push_back(txn);
            }
        }
        if (auto r = rewind_rows(rows, tables, undo); !r) {
            return r.error();
        }
    }
    out.txn.updated = as_of ? *as_of : out.at;
    // Each row's commit time: its last write the scan shows, at most the scan's HLC (a
    // transaction the snapshot saw can be decoded, and stamped, after `at` was read); a row last
    // written before the history holds carries the history's start.
    std::vector<std::map<std::string, hlc>> commits(tables.size());
    if (want_mvcc) {
        for (const auto& txn : seen_txns) {
            if ((as_of && *as_of < txn->updated) || !visible_in_snapshot(out.snapshot, txn->xid)) {
                continue;
            }
            for (const row_change& rc : txn->changes) {
                for (size_t i = 0; i < tables.size(); ++i) {
                    if (rc.op != 'D' && tables[i].schema == rc.schema &&
                        tables[i].name == rc.table) {
                        if (auto key = scan_key(tables[i], rc.columns)) {
                            commits[i][*key] = std::min(txn->updated, out.txn.updated);
                        }
                    }
                }
            }
        }
    }
    for (size_t i = 0; i < tables.size(); ++i) {
        for (auto& [key, row] : rows[i]) {
            const auto commit = commits[i].find(key);
            const hlc mvcc = commit != commits[i].end()
                                 ? commit->second
                                 : std::min(history_.gc_threshold(), out.txn.updated);
            row_change rc;
            rc.schema = tables[i].schema;
            rc.table = tables[i].name;
            rc.columns = std::move(row);
            source_txn one;
            one.changes.push_back(std::move(rc));
            auto changes = feed_changes(one, {tables[i]}, setup_.options, out.txn.updated, mvcc);
            if (!changes) {
                return std::move(changes).error();
            }
            for (change& ch : *changes) {
                out.txn.changes.push_back(std::move(ch));
            }
        }
    }
    return out;
}

result<void> changefeed_job::scan() {
    // With a cursor, the scan is as of the cursor (CockroachDB scans AS OF SYSTEM TIME it) and
    // every change after it follows; without, as of now, then what the snapshot did not see.
    auto done = scan_tables(setup_.tables, setup_.options.cursor);
    if (!done) {
        return done.error();
    }
    if (setup_.options.cursor) {
        start_after_ = *setup_.options.cursor;
    } else {
        snapshot_ = std::move(done->snapshot);
        start_after_ = done->at;
    }
    scan_ = std::move(done->txn);
    return ok();
}

result<void> changefeed_job::alter(const std::vector<target_change>& changes) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (status_.status != "paused") {
        return error{errc::invalid_argument, fmt::format("job {} is not paused", setup_.id)};
    }
    std::vector<table_info> tables = setup_.tables;
    std::vector<std::string> targets = setup_.targets;
    std::vector<table_info> scans = added_scan_tables_;
    auto same = [](const table_info& a, const table_info& b) {
        return a.schema == b.schema && a.name == b.name;
    };
    for (const target_change& c : changes) {
        const auto it = std::find_if(tables.begin(), tables.end(),
                                     [&](const table_info& t) { return same(t, c.table); });
        const size_t at = static_cast<size_t>(it - tables.begin());
        auto scanning = std::find_if(scans.begin(), scans.end(),
                                     [&](const table_info& t) { return same(t, c.table); });
        if (c.add) {
            if (it != tables.end()) {
                return error{errc::invalid_argument,
                             fmt::format("target \"{}\" already watched by changefeed", c.name)};
            }
            tables.push_back(c.table);
            targets.push_back(c.name);
            if (c.initial_scan) {
                scans.push_back(c.table);
            }
            continue;
        }
        if (it == tables.end()) {
            return error{errc::invalid_argument,
                         fmt::format("target \"{}\" already not watched by changefeed", c.name)};
        }
        // Every target of the table goes (TABLE t FAMILY f1, TABLE t FAMILY f2: both).
        for (size_t i = tables.size(); i-- > at;) {
            if (same(tables[i], c.table)) {
                tables.erase(tables.begin() + static_cast<std::ptrdiff_t>(i));
                targets.erase(targets.begin() + static_cast<std::ptrdiff_t>(i));
            }
        }
        if (scanning != scans.end()) {
            scans.erase(scanning);
        }
    }
    if (tables.empty()) {
        return error{errc::invalid_argument, "cannot drop all targets"};
    }
    // The first initial scan not acknowledged yet (or not run): it is taken again on RESUME,
    // of every table now watched, rather than a second scan of the added tables beside it.
    if (setup_.options.initial_scan != initial_scan_mode::no &&
        (!scan_ || !(scan_->updated < checkpoint_))) {
        scans.clear();
        scan_.reset();
        snapshot_.reset();
    }
    setup_.tables = std::move(tables);
    setup_.targets = std::move(targets);
    added_scan_tables_ = std::move(scans);
    added_scan_.reset();
    status_.description = changefeed_description(setup_.targets, setup_.description_tail);
    status_.full_table_names.clear();
    status_.topics.clear();
    for (const table_info& t : setup_.tables) {
        status_.full_table_names.push_back(t.database + "." + t.schema + "." + t.name);
        for (const std::string& topic : target_topics(t)) {
            status_.topics += (status_.topics.empty() ? "" : ",") + topic;
        }
    }
    status_.modified = wall_clock_nanos();
    return ok();
}

void changefeed_job::run() {
    const changefeed_options& o = setup_.options;
    sink_settings settings;
    settings.config = o.sink_config;
    settings.resolved_interval = o.resolved_interval;
    settings.checkpoint_interval = o.checkpoint_interval;
    settings.workers = setup_.workers;
    settings.restart = setup_.restart;
    settings.order = setup_.order;
    settings.resolved = o.resolved && o.initial_scan != initial_scan_mode::only;
    if (setup_.closed_timestamp) {
        settings.closed_timestamp = setup_.closed_timestamp();
    }
    sender* s = nullptr;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (stop_) {
            return;
        }
        sender_ = std::make_unique<sender>(settings, setup_.faults, setup_.connect,
                                           static_cast<uint64_t>(setup_.id));
        s = sender_.get();
        // Before its flusher runs: no resolved timestamp below the start or the checkpoint.
        s->set_start(std::max(start_after_, checkpoint_));
        s->start();
    }
    // The job ends: its sender stops (pending requests are dropped), its status stays.
    auto end = [&](const std::string& status, const std::string& message) {
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            status_.error = message;
            set_status(status);
            stop_ = true;
        }
        history_.release(setup_.id);
        s->stop();
    };
    auto fail = [&](const std::string& message) { end("failed", message); };
    for (const table_info& t : setup_.tables) {
        std::vector<column_def> known;
        for (const auto& [name, type] : t.columns) {
            known.push_back({name, type, false});
        }
        history_.watch_columns(t.oid, std::move(known));
    }
    if (o.initial_scan != initial_scan_mode::no && !scan_) {
        if (auto r = scan(); !r) {
            fail("initial scan: " + r.error().message());
            return;
        }
    }
    // Tables ALTER CHANGEFEED added with an initial scan: as of the high-water mark (or the
    // start, before one), scanned once, sent again until the checkpoint passes it.
    const hlc resume_at = std::max(start_after_, checkpoint_);
    std::vector<table_info> added_tables;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        added_tables = added_scan_tables_;
    }
    if (!added_tables.empty() && !added_scan_) {
        auto r = scan_tables(added_tables, resume_at);
        if (!r) {
            fail("initial scan: " + r.error().message());
            return;
        }
        const std::lock_guard<std::mutex> lock(mutex_);
        added_scan_ = std::move(r->txn);
    }
    hlc seen = start_after_;
    if (scan_ && checkpoint_ < scan_->updated) {
        transaction first = *scan_;
        if (added_scan_ && added_scan_->updated == first.updated) {
            // One HLC, one transaction: the added tables' rows go with the first scan's.
            for (const change& c : added_scan_->changes) {
                first.changes.push_back(c);
            }
            s->add(first, true);
        } else {
            s->add(first, true);
            if (added_scan_) {
                s->add(*added_scan_, true);
            }
        }
    } else if (added_scan_ && !(added_scan_->updated < checkpoint_)) {
        s->add(*added_scan_, true);
    }
    s->set_start(std::max(seen, checkpoint_));
    s->advance(std::max(seen, checkpoint_));
    if (o.initial_scan == initial_scan_mode::only) {
        while (!s->finish(scan_->updated, std::chrono::seconds(1))) {
            const std::lock_guard<std::mutex> lock(mutex_);
            if (stop_) {
                return;
            }
        }
        end("succeeded", "");
        return;
    }
    // With a scan, what the snapshot saw decides, not the HLC: a transaction whose commit was
    // decoded a moment before the snapshot but was not yet visible to it still belongs after
    // the scan, so it is looked for a second back and sent above the scan's HLC.
    const hlc from = std::max(start_after_, checkpoint_);
    if (from < history_.gc_threshold()) {
        fail(fmt::format("batch timestamp {} must be after replica GC threshold {}",
                         from.to_string(), history_.gc_threshold().to_string()));
        return;
    }
    size_t next = history_.first_after(
        snapshot_ ? hlc(std::max<int64_t>(0, from.wall() - 1000000000), 0) : from);
    hlc last = from;  // HLCs sent stay strictly increasing and above the scan
    for (;;) {
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            if (stop_) {
                return;
            }
        }
        const capture::news news = history_.since(next, seen, std::chrono::milliseconds(100));
        if (auto f = history_.failure()) {
            fail(*f);
            return;
        }
        if (news.collected) {
            // Behind the GC threshold: as CockroachDB (the job protects its checkpoint, so only a
            // history lost some other way gets here).
            fail(fmt::format("batch timestamp {} must be after replica GC threshold {}",
                             std::max(last, checkpoint_).to_string(),
                             history_.gc_threshold().to_string()));
            return;
        }
        for (const auto& txn : news.txns) {
            ++next;
            // A schema change (no PostgreSQL transaction) belongs after the scan by its HLC.
            if (snapshot_ && txn->xid != 0 ? visible_in_snapshot(*snapshot_, txn->xid)
                                           : !(start_after_ < txn->updated)) {
                continue;
            }
            if (start_after_ < checkpoint_ && !(checkpoint_ < txn->updated)) {
                continue;  // resumed: covered by the checkpoint
            }
            const hlc before = last;
            const hlc updated = last < txn->updated ? txn->updated : last.next();
            last = updated;
            for (const row_change& rc : txn->changes) {
                if (rc.op != 'T') {
                    continue;
                }
                for (const table_info& t : setup_.tables) {
                    if (t.schema == rc.schema && t.name == rc.table) {
                        fail(
                            fmt::format("table \"{}\" was truncated (a changefeed cannot "
                                        "continue past a TRUNCATE)",
                                        t.name));
                        return;
                    }
                }
            }
            auto changes = feed_changes(*txn, setup_.tables, o, updated);
            if (!changes) {
                fail(changes.error().message());
                return;
            }
            for (const schema_change& sc : txn->schema_changes) {
                std::vector<table_info> changed;
                for (table_info& t : setup_.tables) {
                    if (t.oid == sc.oid) {
                        t.columns.clear();
                        for (const column_def& c : sc.after) {
                            t.columns.emplace_back(c.name, c.type);
                        }
                        changed.push_back(t);
                    }
                }
                if (changed.empty() || !backfills(sc, o.schema_events) ||
                    o.on_schema_change == schema_change_policy::nobackfill) {
                    continue;
                }
                if (o.on_schema_change == schema_change_policy::stop) {
                    // Everything before the change goes out and is resolved, then the job fails.
                    while (!s->finish(before, std::chrono::seconds(1))) {
                        const std::lock_guard<std::mutex> lock(mutex_);
                        if (stop_) {
                            return;
                        }
                    }
                    fail("schema change occurred at " + timestamp_text(updated));
                    return;
                }
                // The backfill: every row of the table as of the change, carrying its HLC, of
                // the columns it had then that are still there (a replay may come after a later
                // DROP COLUMN).
                const std::vector<std::string> present = history_.column_names(sc.oid);
                for (table_info& t : changed) {
                    std::erase_if(t.columns, [&](const auto& c) {
                        return std::find(present.begin(), present.end(), c.first) == present.end();
                    });
                }
                auto rows = scan_tables(changed, updated);
                if (!rows) {
                    fail(fmt::format("schema change backfill of table \"{}\": {}",
                                     changed.front().name, rows.error().message()));
                    return;
                }
                for (change& c : rows->txn.changes) {
                    changes->push_back(std::move(c));
                }
            }
            if (!changes->empty()) {
                s->add(transaction{updated, std::move(changes).value()});
            }
        }
        seen = news.frontier;
        if (setup_.closed_timestamp) {
            s->set_closed_timestamp(setup_.closed_timestamp());
        }
        s->advance(seen);
        history_.protect(setup_.id, s->high_water());
    }
}

void changefeed_job::stop_feed() {
    sender* s = nullptr;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
        s = sender_.get();
    }
    if (s != nullptr) {
        s->stop();
    }
    if (thread_.joinable()) {
        thread_.join();
    }
    const std::lock_guard<std::mutex> lock(mutex_);
    if (sender_) {
        checkpoint_ = std::max(checkpoint_, sender_->high_water());
        if (added_scan_ && added_scan_->updated < checkpoint_) {
            added_scan_.reset();  // acknowledged: a resolved timestamp above it was
            added_scan_tables_.clear();
        }
        stopped_stats_ = stats_locked();
        sender_.reset();
    }
}

sender_stats changefeed_job::stats() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return stats_locked();
}

sender_stats changefeed_job::stats_locked() const {
    sender_stats total = stopped_stats_;
    if (sender_) {
        const sender_stats now = sender_->stats();
        for (const auto field :
             {&sender_stats::rows_sent, &sender_stats::rows_acknowledged, &sender_stats::requests,
              &sender_stats::retries, &sender_stats::resolved_sent, &sender_stats::restarts,
              &sender_stats::duplicates, &sender_stats::late_duplicates,
              &sender_stats::duplicate_resolved, &sender_stats::split_transactions,
              &sender_stats::dropped_connections, &sender_stats::lost_resolved,
              &sender_stats::abandoned, &sender_stats::cancelled}) {
            total.*field += now.*field;
        }
    }
    return total;
}

result<void> changefeed_job::pause() {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (status_.status != "running") {
            return error{errc::invalid_argument,
                         fmt::format("job {}: cannot be requested to be paused, current status: {}",
                                     setup_.id, status_.status)};
        }
    }
    stop_feed();
    const std::lock_guard<std::mutex> lock(mutex_);
    if (status_.status != "running") {
        // The feed ended on its own meanwhile (failed, succeeded): that stands.
        return error{errc::invalid_argument,
                     fmt::format("job {}: cannot be requested to be paused, current status: {}",
                                 setup_.id, status_.status)};
    }
    set_status("paused");
    return ok();
}

result<void> changefeed_job::resume() {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (status_.status != "paused") {
            return error{errc::invalid_argument,
                         fmt::format("job {}: cannot be resumed, current status: {}", setup_.id,
                                     status_.status)};
        }
        set_status("running");
    }
    start();
    return ok();
}

result<void> changefeed_job::cancel() {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (status_.status != "running" && status_.status != "paused") {
            return error{errc::invalid_argument,
                         fmt::format("job {}: cannot be requested to be canceled, current "
                                     "status: {}",
                                     setup_.id, status_.status)};
        }
    }
    stop_feed();
    history_.release(setup_.id);
    const std::lock_guard<std::mutex> lock(mutex_);
    if (status_.status != "running" && status_.status != "paused") {
        return error{errc::invalid_argument,
                     fmt::format("job {}: cannot be requested to be canceled, current status: {}",
                                 setup_.id, status_.status)};
    }
    set_status("canceled");
    return ok();
}

job_status changefeed_job::status() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    job_status st = status_;
    st.high_water = checkpoint_;
    if (sender_) {
        st.high_water = std::max(st.high_water, sender_->high_water());
    }
    if (st.status == "running") {
        const std::string err = sender_ ? sender_->last_error() : std::string();
        if (!err.empty()) {
            st.running_status = "transient error: " + err;
            st.error = st.running_status;
        } else {
            st.running_status = st.high_water.is_zero()
                                    ? "running"
                                    : "running: resolved=" + timestamp_text(st.high_water);
        }
    }
    return st;
}

}  // namespace molt::emulator
