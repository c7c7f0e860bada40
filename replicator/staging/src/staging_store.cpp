#include "molt/replicator/staging/staging_store.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <tuple>

#include <fmt/format.h>

#include "molt/common/integer_text.hpp"
#include "molt/common/log.hpp"

namespace molt::replicator {
namespace {

// 1: staging table and group names joined parts with '_' and '.', so two target tables could
// share a staging table ("sales"+"order_items", "sales_order"+"items"; "Users", "users").
// 2: injective names (stage_table, group_of).
constexpr int64_t layout_version = 2;
constexpr size_t rows_per_statement = 1000;
constexpr size_t max_identifier = 63;  // PostgreSQL's NAMEDATALEN - 1

std::string q(std::string_view name) {
    return quote_ident(name, dialect::postgres);
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
        return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    });
    return out;
}

// FNV-1a, for shortening long staging table names deterministically.
uint64_t fnv1a(std::string_view s) {
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char c : s) {
        h = (h ^ c) * 1099511628211ULL;
    }
    return h;
}

// PostgreSQL array literals.
std::string text_array(const std::vector<const std::string*>& items) {
    std::string out = "{";
    for (size_t i = 0; i < items.size(); ++i) {
        out += i == 0 ? "\"" : ",\"";
        for (const char c : *items[i]) {
            if (c == '"' || c == '\\') {
                out += '\\';
            }
            out += c;
        }
        out += '"';
    }
    out += '}';
    return out;
}

template <typename T, typename Fn>
std::string number_array(const std::vector<T>& items, Fn&& fn) {
    std::string out = "{";
    for (size_t i = 0; i < items.size(); ++i) {
        if (i != 0) {
            out += ',';
        }
        out += fn(items[i]);
    }
    out += '}';
    return out;
}

sql_params hlc_params(hlc t) {
    return {std::to_string(t.wall()), std::to_string(t.logical())};
}

// Appends a timestamp's two parameters.
void add_hlc(sql_params& params, hlc t) {
    params.emplace_back(std::to_string(t.wall()));
    params.emplace_back(std::to_string(t.logical()));
}

result<hlc> hlc_of(const sql_row& row, size_t at) {
    return hlc_from_row(row, at, "staging");
}

}  // namespace

namespace {

// The count(*) a query answered.
result<uint64_t> count_of(const std::vector<sql_row>& rows, std::string_view what) {
    const auto n = rows.empty() || rows.front().empty() || !rows.front().front()
                       ? std::nullopt
                       : parse_integer<uint64_t>(*rows.front().front());
    if (!n) {
        return error{errc::database_error, fmt::format("{}: the server answered no count", what)};
    }
    return *n;
}

}  // namespace

result<hlc> hlc_from_row(const sql_row& row, size_t at, std::string_view source) {
    if (row.size() < at + 2 || !row[at] || !row[at + 1]) {
        return error{errc::database_error, fmt::format("{} holds a NULL timestamp", source)};
    }
    const auto wall = parse_integer<int64_t>(*row[at]);
    const auto logical = parse_integer<int32_t>(*row[at + 1]);
    if (!wall || !logical) {
        return error{errc::database_error, fmt::format("{} holds a bad timestamp \"{}.{}\"", source,
                                                       *row[at], *row[at + 1])};
    }
    return hlc(*wall, *logical);
}

std::string staging_location::qualify(std::string_view table) const {
    return cockroach ? fmt::format("{}.{}.{}", q(database), q(schema), q(table))
                     : fmt::format("{}.{}", q(schema), q(table));
}

std::string staging_location::catalog_tables() const {
    return cockroach ? q(database) + ".information_schema.tables"
                     : std::string("information_schema.tables");
}

std::string staging_location::to_string() const {
    return cockroach ? database + "." + schema : schema;
}

result<staging_location> resolve_staging_schema(std::string_view flag, bool given, bool cockroach,
                                                std::string_view connected_database) {
    staging_location where;
    where.cockroach = cockroach;
    auto name = parse_qualified_name(flag, dialect::postgres, 1, 2);
    if (!name) {
        return name.error().with_context("--stagingSchema");
    }
    const std::vector<std::string>& parts = name->parts;
    if (cockroach) {
        where.database = parts[0];
        where.schema = parts.size() == 2 ? parts[1] : "public";
        return where;
    }
    if (!given) {
        where.schema = "_replicator";
        return where;
    }
    if (parts.size() == 2 && parts[0] != connected_database) {
        return error{errc::invalid_argument,
                     fmt::format("--stagingSchema {}: a PostgreSQL staging server cannot reach "
                                 "database \"{}\" from database \"{}\"; name a schema of the "
                                 "connected database (e.g. --stagingSchema _replicator), or "
                                 "connect --stagingConn to {}",
                                 name->to_string(), parts[0], connected_database, parts[0])};
    }
    where.schema = parts.back();
    return where;
}

staging_store::staging_store(session_pool& pool, staging_location where,
                             std::chrono::nanoseconds timeout)
    : pool_(pool), where_(std::move(where)), timeout_(timeout) {}

result<session_pool::lease> staging_store::session() {
    auto s = pool_.acquire(std::chrono::steady_clock::now() + timeout_);
    if (!s) {
        return s.error().with_context("staging");
    }
    return s;
}

std::string staging_store::group_of(const qualified_name& target_schema) {
    // Injective ("a.b".c), so schema_of_group can split it again.
    return target_schema.unambiguous();
}

std::optional<qualified_name> staging_store::schema_of_group(std::string_view group) {
    qualified_name out;
    size_t i = 0;
    while (i <= group.size()) {
        std::string part;
        if (i < group.size() && group[i] == '"') {
            ++i;
            for (;;) {
                if (i >= group.size()) {
                    return std::nullopt;  // unterminated
                }
                if (group[i] == '"') {
                    if (i + 1 < group.size() && group[i + 1] == '"') {
                        part += '"';
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                part += group[i++];
            }
            if (i < group.size() && group[i] != '.') {
                return std::nullopt;
            }
        } else {
            const size_t dot = std::min(group.find('.', i), group.size());
            part = std::string(group.substr(i, dot - i));
            if (part.empty() || part.find('"') != std::string::npos) {
                return std::nullopt;
            }
            i = dot;
        }
        out.parts.push_back(std::move(part));
        ++i;  // past the '.' (or the end)
    }
    return out;
}

std::string staged_key(const table_info& t, std::string_view topic, std::string_view key) {
    const bool plain =
        topic.size() >= t.name.size() &&
        (topic.size() == t.name.size() || topic[topic.size() - t.name.size() - 1] == '.') &&
        std::equal(t.name.begin(), t.name.end(), topic.end() - t.name.size(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
        });
    std::string out(key);
    if (!plain) {
        out += '\t';
        out += topic;
    }
    return out;
}

std::string_view row_key(std::string_view staged) {
    return staged.substr(0, staged.find('\t'));
}

std::string staging_store::stage_table(const qualified_name& target_schema,
                                       std::string_view table) {
    // Plain names (lower-case ASCII letters and digits) are joined by '_', which they never
    // hold. Any other name gets a hash of the exact parts after "__", which a plain name never
    // holds either: one staging table per target table. Long names keep a readable prefix.
    std::string name = "molt_stage";
    std::string exact;  // length-prefixed, so the hash input is injective too
    bool plain = true;
    auto add = [&](std::string_view part) {
        name += "_" + lower(part);
        exact += std::to_string(part.size()) + ":" + std::string(part);
        plain = plain && !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
                });
    };
    for (const std::string& p : target_schema.parts) {
        add(p);
    }
    add(table);
    if (plain && name.size() <= max_identifier) {
        return name;
    }
    const std::string suffix = fmt::format("__{:016x}", fnv1a(exact));
    // The hash tells names apart; the readable prefix keeps only ASCII letters, digits and '_'
    // (so cutting it never splits a multi-byte character).
    for (char& c : name) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            c = '_';
        }
    }
    name.resize(std::min(name.size(), max_identifier - suffix.size()));
    return name + suffix;
}

result<void> staging_store::upgrade_from_1(target_session& db) {
    // Layout 1 named staging tables ambiguously; which target table a table belongs to cannot be
    // told from its name. Empty staging tables carry nothing, so such a staging is upgraded;
    // otherwise it is refused rather than read under names that may not be its own.
    auto tables = db.query(fmt::format("SELECT table_name::TEXT FROM {} WHERE table_schema = :p1 "
                                       "AND table_name LIKE 'molt\\_stage\\_%'",
                                       where_.catalog_tables()),
                           {where_.schema});
    if (!tables) {
        return tables.error().with_context("listing the staging tables");
    }
    // One transaction: each table is locked before it is found empty, so a replicator of the
    // older layout still running cannot stage into it between the check and the drop.
    if (auto begun = db.begin(); !begun) {
        return begun.error().with_context("upgrading the staging layout");
    }
    auto upgraded = upgrade_tables(db, *tables);
    if (!upgraded) {
        db.rollback();
        return upgraded.error();
    }
    if (auto done = db.commit(); !done) {
        return done.error().with_context("upgrading the staging layout");
    }
    log::info()
        .str("staging", where_.to_string())
        .num("from", 1)
        .num("to", layout_version)
        .unum("dropped_empty_tables", tables->size())
        .msg("upgraded the staging layout");
    return ok();
}

result<void> staging_store::upgrade_tables(target_session& db, const std::vector<sql_row>& tables) {
    size_t holding = 0;
    std::string first;
    for (const sql_row& row : tables) {
        const std::string& table = *row[0];
        if (!where_.cockroach) {
            if (auto locked = db.execute(
                    "LOCK TABLE " + where_.qualify(table) + " IN ACCESS EXCLUSIVE MODE", {});
                !locked) {
                return locked.error().with_context("locking staging table " + table);
            }
        }
        auto any = db.query(fmt::format("SELECT 1 FROM {} LIMIT 1", where_.qualify(table)), {});
        if (!any) {
            return any.error().with_context("reading staging table " + table);
        }
        if (!any->empty()) {
            first = first.empty() ? table : first;
            ++holding;
        }
    }
    if (holding > 0) {
        return error{
            errc::invalid_argument,
            fmt::format("staging {} has layout version 1, whose staging table names can be shared "
                        "by two target tables; this replicator uses version {}, and {} staging "
                        "tables still hold rows (first: {}). Let the replicator that wrote them "
                        "apply and retire them (or drop the staging tables once the target's "
                        "checkpoint covers every row), or use another --stagingSchema (see "
                        "replicator/README.md, \"Staging layout\")",
                        where_.to_string(), layout_version, holding, first)};
    }
    for (const sql_row& row : tables) {
        if (auto r = db.execute("DROP TABLE " + where_.qualify(*row[0]), {}); !r) {
            return r.error().with_context("dropping empty staging table " + *row[0]);
        }
    }
    if (auto r = db.execute(
            fmt::format("UPDATE {} SET version = {}, written_at = now() WHERE name = 'staging'",
                        where_.qualify("molt_layout"), layout_version),
            {});
        !r) {
        return r.error().with_context("upgrading the staging layout");
    }
    return ok();
}

result<bool> staging_store::schema_exists(target_session& db, std::string& why) {
    // CockroachDB: the staging database's own information_schema (an error when the database
    // does not exist). PostgreSQL: pg_namespace, which lists schemas the user cannot read too.
    const std::string sql =
        where_.cockroach
            ? fmt::format(
                  "SELECT count(*) FROM {}.information_schema.schemata WHERE "
                  "schema_name = :p1",
                  q(where_.database))
            : std::string("SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = :p1");
    auto rows = db.query(sql, {where_.schema});
    if (!rows) {
        const retry_class retry = rows.error().retry();
        if (where_.cockroach && retry != retry_class::reconnect &&
            retry != retry_class::retry_now) {
            why = rows.error().message();
            return false;  // no such database
        }
        return rows.error().with_context("looking for the staging schema");
    }
    return !rows->empty() && !rows->front().empty() && rows->front()[0] && *rows->front()[0] != "0";
}

result<stored_jwt_keys> staging_store::read_jwt_keys() {
    auto s = session();
    if (!s) {
        return s.error();
    }
    auto keys = (*s)->query(fmt::format("SELECT id::TEXT, public_key FROM {} WHERE active ORDER "
                                        "BY id",
                                        where_.qualify("jwt_public_keys")),
                            {});
    if (!keys) {
        return keys.error().with_context("reading " + where_.to_string() + ".jwt_public_keys");
    }
    auto revoked =
        (*s)->query(fmt::format("SELECT id FROM {}", where_.qualify("jwt_revoked_ids")), {});
    if (!revoked) {
        return revoked.error().with_context("reading " + where_.to_string() + ".jwt_revoked_ids");
    }
    stored_jwt_keys out;
    for (const auto& row : *keys) {
        out.keys.emplace_back(row[0].value_or(""), row[1].value_or(""));
    }
    for (const auto& row : *revoked) {
        out.revoked_ids.push_back(row[0].value_or(""));
    }
    return out;
}

result<void> staging_store::prepare(bool create_schema) {
    auto s = session();
    if (!s) {
        return s.error();
    }
    target_session& db = **s;
    if (!create_schema) {
        std::string why;
        auto found = schema_exists(db, why);
        if (!found) {
            return found.error();
        }
        if (!*found) {
            return error{errc::invalid_argument,
                         fmt::format("staging schema {} does not exist{}: check --stagingSchema, "
                                     "create it, or pass --stagingCreateSchema to have the "
                                     "replicator create it",
                                     where_.to_string(), why.empty() ? "" : " (" + why + ")")};
        }
    } else if (where_.cockroach) {
        if (auto r = db.execute("CREATE DATABASE IF NOT EXISTS " + q(where_.database), {}); !r) {
            return r.error().with_context("creating the staging database");
        }
        if (auto r = db.execute(fmt::format("CREATE SCHEMA IF NOT EXISTS {}.{}", q(where_.database),
                                            q(where_.schema)),
                                {});
            !r) {
            return r.error().with_context("creating the staging schema");
        }
    } else if (auto r = db.execute("CREATE SCHEMA IF NOT EXISTS " + q(where_.schema), {}); !r) {
        return r.error().with_context("creating the staging schema");
    }
    const std::string ddl[] = {
        fmt::format("CREATE TABLE IF NOT EXISTS {} (name TEXT PRIMARY KEY, version INT8 NOT NULL, "
                    "written_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                    where_.qualify("molt_layout")),
        fmt::format("CREATE TABLE IF NOT EXISTS {} (group_name TEXT NOT NULL, source_nanos INT8 "
                    "NOT NULL, source_logical INT4 NOT NULL, first_seen TIMESTAMPTZ NOT NULL "
                    "DEFAULT now(), target_applied_at TIMESTAMPTZ, PRIMARY KEY (group_name, "
                    "source_nanos, source_logical))",
                    where_.qualify("molt_checkpoints")),
        fmt::format("INSERT INTO {} (name, version) VALUES ('staging', {}) ON CONFLICT (name) DO "
                    "NOTHING",
                    where_.qualify("molt_layout"), layout_version),
        // JWT authentication, as cockroachdb/replicator keeps it (replicator.md §5).
        fmt::format("CREATE TABLE IF NOT EXISTS {} (id UUID PRIMARY KEY DEFAULT "
                    "gen_random_uuid(), public_key TEXT NOT NULL, active BOOL NOT NULL DEFAULT "
                    "true)",
                    where_.qualify("jwt_public_keys")),
        fmt::format("CREATE TABLE IF NOT EXISTS {} (id TEXT PRIMARY KEY)",
                    where_.qualify("jwt_revoked_ids")),
    };
    for (const std::string& sql : ddl) {
        if (auto r = db.execute(sql, {}); !r) {
            return r.error().with_context("preparing staging " + where_.to_string());
        }
    }
    auto version = db.query(
        fmt::format("SELECT version FROM {} WHERE name = 'staging'", where_.qualify("molt_layout")),
        {});
    if (!version) {
        return version.error().with_context("reading the staging layout version");
    }
    std::string found = version->empty() || !version->front()[0] ? "" : *version->front()[0];
    if (found == "1") {
        auto upgraded = upgrade_from_1(db);
        if (!upgraded) {
            return upgraded.error();
        }
        found = std::to_string(layout_version);
    }
    if (found != std::to_string(layout_version)) {
        return error{
            errc::invalid_argument,
            fmt::format("staging {} has layout version {}, but this replicator uses "
                        "version {}; use another --stagingSchema or migrate it (see "
                        "replicator/README.md)",
                        where_.to_string(), found.empty() ? "(none)" : found, layout_version)};
    }
    return ok();
}

result<void> staging_store::ensure_table(target_session& s, const std::string& stage_table) {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (created_.count(stage_table) != 0) {
            return ok();
        }
    }
    auto made = s.execute(fmt::format("CREATE TABLE IF NOT EXISTS {} (nanos INT8 NOT NULL, "
                                      "logical INT4 NOT NULL, key TEXT NOT NULL, mut TEXT NOT "
                                      "NULL, deletion BOOL NOT NULL DEFAULT false, "
                                      "PRIMARY KEY (nanos, logical, key))",
                                      where_.qualify(stage_table)),
                          {});
    if (!made) {
        // Two requests may create the same table at once; PostgreSQL then fails the slower
        // CREATE TABLE IF NOT EXISTS with a unique violation although the table exists.
        auto rows = s.query(fmt::format("SELECT count(*) FROM {} WHERE table_schema = :p1 AND "
                                        "table_name = :p2",
                                        where_.catalog_tables()),
                            {where_.schema, stage_table});
        if (!rows || rows->empty() || !rows->front()[0] || *rows->front()[0] == "0") {
            return made.error().with_context("creating staging table " + stage_table);
        }
    }
    const std::lock_guard<std::mutex> lock(mutex_);
    created_.insert(stage_table);
    return ok();
}

result<bool> staging_store::exists(const std::string& stage_table) {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (created_.count(stage_table) != 0) {
            return true;
        }
    }
    auto s = session();
    if (!s) {
        return s.error();
    }
    auto rows = (*s)->query(fmt::format("SELECT count(*) FROM {} WHERE table_schema = :p1 AND "
                                        "table_name = :p2",
                                        where_.catalog_tables()),
                            {where_.schema, stage_table});
    if (!rows) {
        return rows.error().with_context("looking up staging table " + stage_table);
    }
    const bool found = !rows->empty() && rows->front()[0] && *rows->front()[0] != "0";
    if (found) {
        const std::lock_guard<std::mutex> lock(mutex_);
        created_.insert(stage_table);
    }
    return found;
}

result<stage_outcome> staging_store::stage(const std::vector<table_rows>& tables,
                                           hlc resolved_bound) {
    auto s = session();
    if (!s) {
        return s.error();
    }
    target_session& db = **s;
    for (const table_rows& t : tables) {
        if (auto made = ensure_table(db, t.stage_table); !made) {
            s->mark_broken();
            return made.error();
        }
    }
    // One row per (HLC, key) and table; within a request the last one wins.
    std::vector<std::vector<const staged_mutation*>> unique_rows;
    unique_rows.reserve(tables.size());
    size_t statements = 0;
    for (const table_rows& t : tables) {
        std::map<std::pair<hlc, std::string_view>, const staged_mutation*> unique;
        for (const staged_mutation& m : t.rows) {
            unique[{m.updated, m.key}] = &m;
        }
        std::vector<const staged_mutation*>& rows = unique_rows.emplace_back();
        rows.reserve(unique.size());
        for (const auto& [k, m] : unique) {
            rows.push_back(m);
        }
        statements += (rows.size() + rows_per_statement - 1) / rows_per_statement;
    }
    // A request staged by one statement needs no transaction of its own (one round trip instead
    // of three); several statements are staged together or not at all. Either way, a reply lost
    // after the rows were committed makes the changefeed's retry count them as duplicates, so
    // staged_at misses them: window sizing and --stagingMaxBacklog count them low (nothing is
    // lost: staging holds them, and windows are read from staging).
    const bool in_transaction = statements > 1;
    if (in_transaction) {
        if (auto begun = db.begin(); !begun) {
            s->mark_broken();
            return begun.error().with_context("staging");
        }
    }
    // A failure ends the request's transaction, if it has one.
    auto failed = [&](error e) {
        if (in_transaction) {
            db.rollback();
        }
        return e;
    };
    stage_outcome out;
    for (size_t ti = 0; ti < tables.size(); ++ti) {
        const table_rows& t = tables[ti];
        const std::vector<const staged_mutation*>& rows = unique_rows[ti];
        // Answers with the rows already staged (a redelivery), by their 1-based position in
        // the arrays: none, usually, instead of every new row.
        const std::string sql = fmt::format(
            "WITH input AS (SELECT * FROM unnest(:p1::INT8[], :p2::INT4[], :p3::TEXT[], "
            ":p4::TEXT[], :p5::BOOL[]) WITH ORDINALITY AS u (nanos, logical, key, mut, deletion, "
            "n)), inserted AS (INSERT INTO {} (nanos, logical, key, mut, deletion) SELECT nanos, "
            "logical, key, mut, deletion FROM input ON CONFLICT (nanos, logical, key) DO NOTHING "
            "RETURNING nanos, logical, key) SELECT n FROM input WHERE (nanos, logical, key) NOT "
            "IN (SELECT nanos, logical, key FROM inserted)",
            where_.qualify(t.stage_table));
        for (size_t start = 0; start < rows.size(); start += rows_per_statement) {
            const std::vector<const staged_mutation*> part(
                rows.begin() + static_cast<std::ptrdiff_t>(start),
                rows.begin() +
                    static_cast<std::ptrdiff_t>(std::min(rows.size(), start + rows_per_statement)));
            std::vector<const std::string*> keys, messages;
            for (const staged_mutation* m : part) {
                keys.push_back(&m->key);
                messages.push_back(&m->message);
            }
            sql_params params{number_array(part,
                                           [](const staged_mutation* m) {
                                               return std::to_string(m->updated.wall());
                                           }),
                              number_array(part,
                                           [](const staged_mutation* m) {
                                               return std::to_string(m->updated.logical());
                                           }),
                              text_array(keys), text_array(messages),
                              number_array(part, [](const staged_mutation* m) {
                                  return std::string(m->deletion ? "t" : "f");
                              })};
            auto already = db.query(sql, params);
            if (!already) {
                return failed(already.error().with_context("staging rows in " + t.stage_table));
            }
            std::vector<bool> duplicate(part.size(), false);
            for (const sql_row& row : *already) {
                const auto n =
                    row.empty() || !row[0] ? std::nullopt : parse_integer<size_t>(*row[0]);
                if (!n || *n == 0 || *n > part.size()) {
                    return failed(error{errc::database_error,
                                        fmt::format("staging rows in {}: the database answered a "
                                                    "row position out of range",
                                                    t.stage_table)});
                }
                duplicate[*n - 1] = true;
            }
            for (size_t i = 0; i < part.size(); ++i) {
                if (duplicate[i]) {
                    ++out.duplicates;
                    continue;
                }
                const staged_mutation& m = *part[i];
                ++out.staged;
                ++out.staged_at[m.updated];
                if (!(resolved_bound < m.updated) && !resolved_bound.is_zero()) {
                    out.after_resolved.push_back(fmt::format("{} key {} at {}", t.stage_table,
                                                             m.key, m.updated.to_string()));
                }
            }
        }
    }
    if (in_transaction) {
        if (auto done = db.commit(); !done) {
            s->mark_broken();
            return done.error().with_context("committing staged rows");
        }
    }
    return out;
}

result<staging_store::late_comparison> staging_store::compare_late(
    const std::string& stage_table, const std::vector<staged_mutation>& rows) {
    late_comparison out;
    auto present = exists(stage_table);
    if (!present) {
        return present.error();
    }
    if (!*present) {
        for (const staged_mutation& m : rows) {
            out.missing.push_back(&m);
        }
        return out;
    }
    if (rows.empty()) {
        return out;
    }
    auto s = session();
    if (!s) {
        return s.error();
    }
    std::vector<const std::string*> keys;
    std::vector<const staged_mutation*> all;
    for (const staged_mutation& m : rows) {
        keys.push_back(&m.key);
        all.push_back(&m);
    }
    auto found = (*s)->query(
        fmt::format("SELECT s.nanos, s.logical, s.key, s.mut FROM {} AS s JOIN "
                    "unnest(:p1::INT8[], :p2::INT4[], :p3::TEXT[]) AS u (n, l, k) ON s.nanos = "
                    "u.n AND s.logical = u.l AND s.key = u.k",
                    where_.qualify(stage_table)),
        {number_array(all,
                      [](const staged_mutation* m) { return std::to_string(m->updated.wall()); }),
         number_array(
             all, [](const staged_mutation* m) { return std::to_string(m->updated.logical()); }),
         text_array(keys)});
    if (!found) {
        return found.error().with_context("reading staged rows of " + stage_table);
    }
    std::map<std::pair<hlc, std::string>, std::string> staged;
    for (const sql_row& row : *found) {
        auto h = hlc_of(row, 0);
        if (!h) {
            return h.error();
        }
        staged[{*h, row[2].value_or("")}] = row[3].value_or("");
    }
    for (const staged_mutation& m : rows) {
        const auto it = staged.find({m.updated, m.key});
        if (it == staged.end()) {
            out.missing.push_back(&m);
        } else if (it->second != m.message) {
            out.differing.push_back(&m);
        }
    }
    return out;
}

result<std::map<std::string, hlc>> staging_store::newest_versions(
    const std::string& stage_table, const std::vector<staged_mutation>& rows) {
    std::map<std::string, hlc> newest;
    auto present = exists(stage_table);
    if (!present) {
        return present.error();
    }
    if (!*present || rows.empty()) {
        return newest;
    }
    auto s = session();
    if (!s) {
        return s.error();
    }
    std::set<std::string> distinct;
    int64_t oldest = rows.front().updated.wall();
    for (const staged_mutation& m : rows) {
        distinct.insert(m.key);
        oldest = std::min(oldest, m.updated.wall());
    }
    std::vector<const std::string*> keys;
    for (const std::string& k : distinct) {
        keys.push_back(&k);
    }
    auto found = (*s)->query(
        fmt::format(
            "SELECT nanos, logical, key FROM {} WHERE nanos >= :p1 AND key = ANY(:p2::TEXT[])",
            where_.qualify(stage_table)),
        {std::to_string(oldest), text_array(keys)});
    if (!found) {
        return found.error().with_context("reading staged versions of " + stage_table);
    }
    for (const sql_row& row : *found) {
        auto h = hlc_of(row, 0);
        if (!h) {
            return h.error();
        }
        hlc& at = newest[row[2].value_or("")];
        at = std::max(at, *h);
    }
    return newest;
}

result<resolved_outcome> staging_store::record_resolved(const std::string& group, hlc t,
                                                        hlc* latest) {
    auto s = session();
    if (!s) {
        return s.error();
    }
    target_session& db = **s;
    if (auto begun = db.begin(); !begun) {
        s->mark_broken();
        return begun.error().with_context("staging");
    }
    const std::string table = where_.qualify("molt_checkpoints");
    auto newest =
        db.query(fmt::format("SELECT source_nanos, source_logical FROM {} WHERE group_name = :p1 "
                             "ORDER BY source_nanos DESC, source_logical DESC LIMIT 1 FOR UPDATE",
                             table),
                 {group});
    if (!newest) {
        db.rollback();
        return newest.error().with_context("reading checkpoints");
    }
    if (!newest->empty()) {
        auto h = hlc_of(newest->front(), 0);
        if (!h) {
            db.rollback();
            return h.error();
        }
        if (latest != nullptr) {
            *latest = *h;
        }
        if (t <= *h) {
            db.rollback();
            return t == *h ? resolved_outcome::repeated : resolved_outcome::backwards;
        }
    }
    sql_params params{group};
    add_hlc(params, t);
    if (auto r = db.execute(fmt::format("INSERT INTO {} (group_name, source_nanos, source_logical) "
                                        "VALUES (:p1, :p2::INT8, :p3::INT4) ON CONFLICT DO NOTHING",
                                        table),
                            params);
        !r) {
        db.rollback();
        return r.error().with_context("recording a checkpoint");
    }
    if (auto done = db.commit(); !done) {
        s->mark_broken();
        return done.error().with_context("recording a checkpoint");
    }
    if (latest != nullptr) {
        *latest = t;
    }
    return resolved_outcome::recorded;
}

namespace {

result<hlc> newest_checkpoint(target_session& db, const std::string& table,
                              const std::string& group, bool applied_only) {
    auto rows =
        db.query(fmt::format("SELECT source_nanos, source_logical FROM {} WHERE group_name "
                             "= :p1{} ORDER BY source_nanos DESC, source_logical DESC "
                             "LIMIT 1",
                             table, applied_only ? " AND target_applied_at IS NOT NULL" : ""),
                 {group});
    if (!rows) {
        return rows.error().with_context("reading checkpoints");
    }
    if (rows->empty()) {
        return hlc();
    }
    return hlc_of(rows->front(), 0);
}

}  // namespace

result<hlc> staging_store::latest_resolved(const std::string& group) {
    auto s = session();
    if (!s) {
        return s.error();
    }
    return newest_checkpoint(**s, where_.qualify("molt_checkpoints"), group, false);
}

result<std::vector<hlc>> staging_store::resolved_between(const std::string& group, hlc after,
                                                         hlc upto, size_t limit) {
    auto s = session();
    if (!s) {
        return s.error();
    }
    sql_params params{group};
    for (auto& p : hlc_params(after)) {
        params.push_back(std::move(p));
    }
    for (auto& p : hlc_params(upto)) {
        params.push_back(std::move(p));
    }
    auto rows = (*s)->query(
        fmt::format("SELECT source_nanos, source_logical FROM {} WHERE group_name = :p1 AND "
                    "(source_nanos, source_logical) > (:p2::INT8, :p3::INT4) AND "
                    "(source_nanos, source_logical) <= (:p4::INT8, :p5::INT4) "
                    "ORDER BY source_nanos, source_logical",
                    where_.qualify("molt_checkpoints")),
        params);
    if (!rows) {
        return rows.error().with_context("reading checkpoints");
    }
    std::vector<hlc> all;
    all.reserve(rows->size());
    for (const sql_row& row : *rows) {
        auto h = hlc_of(row, 0);
        if (!h) {
            return h.error();
        }
        all.push_back(*h);
    }
    if (all.size() <= limit || limit == 0) {
        return all;
    }
    // Every step-th, counted back from the newest so that it stays.
    std::vector<hlc> spread;
    const size_t step = (all.size() + limit - 1) / limit;
    for (size_t i = all.size(); i >= step; i -= step) {
        spread.push_back(all[i - 1]);
    }
    std::reverse(spread.begin(), spread.end());
    return spread;
}

result<hlc> staging_store::committed(const std::string& group) {
    auto s = session();
    if (!s) {
        return s.error();
    }
    return newest_checkpoint(**s, where_.qualify("molt_checkpoints"), group, true);
}

result<void> staging_store::mark_committed(const std::string& group, hlc t) {
    auto s = session();
    if (!s) {
        return s.error();
    }
    sql_params params{group};
    add_hlc(params, t);
    auto r = (*s)->execute(fmt::format("UPDATE {} SET target_applied_at = now() WHERE group_name = "
                                       ":p1 AND (source_nanos, source_logical) <= (:p2::INT8, "
                                       ":p3::INT4) AND target_applied_at IS NULL",
                                       where_.qualify("molt_checkpoints")),
                           params);
    if (!r) {
        return r.error().with_context("marking checkpoints applied");
    }
    return ok();
}

result<std::vector<std::string>> staging_store::pending_groups() {
    auto s = session();
    if (!s) {
        return s.error();
    }
    auto rows = (*s)->query(fmt::format("SELECT DISTINCT group_name FROM {} WHERE "
                                        "target_applied_at IS NULL ORDER BY group_name",
                                        where_.qualify("molt_checkpoints")),
                            {});
    if (!rows) {
        return rows.error().with_context("reading checkpoints");
    }
    std::vector<std::string> out;
    for (const sql_row& row : *rows) {
        out.push_back(row[0].value_or(""));
    }
    return out;
}

result<std::vector<stored_mutation>> staging_store::read(const std::string& stage_table, hlc after,
                                                         const std::string& after_key, hlc upto,
                                                         size_t limit) {
    auto s = session();
    if (!s) {
        return s.error();
    }
    sql_params params = hlc_params(after);
    params.emplace_back(after_key);
    add_hlc(params, upto);
    auto rows = (*s)->query(
        fmt::format("SELECT nanos, logical, key, mut FROM {} WHERE (nanos, logical, key) > "
                    "(:p1::INT8, :p2::INT4, :p3) AND (nanos, logical) <= (:p4::INT8, :p5::INT4) "
                    "ORDER BY nanos, logical, key LIMIT {}",
                    where_.qualify(stage_table), limit),
        params);
    if (!rows) {
        return rows.error().with_context("reading staged rows of " + stage_table);
    }
    std::vector<stored_mutation> out;
    out.reserve(rows->size());
    for (sql_row& row : *rows) {
        auto h = hlc_of(row, 0);
        if (!h) {
            return h.error();
        }
        out.push_back({*h, std::move(row[2]).value_or(""), std::move(row[3]).value_or("")});
    }
    return out;
}

result<uint64_t> staging_store::count_between(const std::string& stage_table, hlc after, hlc upto) {
    auto present = exists(stage_table);
    if (!present) {
        return present.error();
    }
    if (!*present) {
        return uint64_t{0};
    }
    auto s = session();
    if (!s) {
        return s.error();
    }
    sql_params params = hlc_params(after);
    for (auto& p : hlc_params(upto)) {
        params.push_back(std::move(p));
    }
    auto rows = (*s)->query(fmt::format("SELECT count(*) FROM {} WHERE (nanos, logical) > "
                                        "(:p1::INT8, :p2::INT4) AND (nanos, logical) <= "
                                        "(:p3::INT8, :p4::INT4)",
                                        where_.qualify(stage_table)),
                            params);
    if (!rows) {
        return rows.error().with_context("counting staged rows of " + stage_table);
    }
    return count_of(*rows, "counting staged rows of " + stage_table);
}

result<uint64_t> staging_store::retire(const std::string& stage_table, hlc upto, size_t limit) {
    auto s = session();
    if (!s) {
        return s.error();
    }
    const std::string table = where_.qualify(stage_table);
    auto rows = (*s)->query(
        fmt::format("WITH d AS (DELETE FROM {} WHERE (nanos, logical, key) IN (SELECT nanos, "
                    "logical, key FROM {} WHERE (nanos, logical) <= (:p1::INT8, :p2::INT4) ORDER "
                    "BY nanos, logical, key LIMIT {}) RETURNING 1) SELECT count(*) FROM d",
                    table, table, limit),
        hlc_params(upto));
    if (!rows) {
        return rows.error().with_context("retiring staged rows of " + stage_table);
    }
    return count_of(*rows, "retiring staged rows of " + stage_table);
}

result<void> staging_store::retire_checkpoints(const std::string& group, hlc upto) {
    auto s = session();
    if (!s) {
        return s.error();
    }
    const std::string table = where_.qualify("molt_checkpoints");
    sql_params params{group};
    add_hlc(params, upto);
    params.emplace_back(group);  // placeholders bind in order of appearance
    // The newest applied checkpoint stays: it is where a restart resumes.
    auto r = (*s)->execute(
        fmt::format("DELETE FROM {0} WHERE group_name = :p1 AND target_applied_at IS NOT NULL "
                    "AND (source_nanos, source_logical) <= (:p2::INT8, :p3::INT4) AND "
                    "(source_nanos, source_logical) < (SELECT source_nanos, source_logical FROM "
                    "{0} WHERE group_name = :p4 AND target_applied_at IS NOT NULL ORDER BY "
                    "source_nanos DESC, source_logical DESC LIMIT 1)",
                    table),
        params);
    if (!r) {
        return r.error().with_context("retiring checkpoints");
    }
    return ok();
}

}  // namespace molt::replicator
