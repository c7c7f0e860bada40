#include "molt/emulator/verify.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <set>

#include <fmt/format.h>

#include "molt/common/ident.hpp"
#include "molt/common/time_format.hpp"
#include "molt/proto/json.hpp"
#include "molt/replicator/dialect/mysql.hpp"
#include "molt/replicator/dialect/postgres.hpp"

namespace molt::emulator {
namespace {

using proto::sql_type;

result<std::unique_ptr<replicator::target_session>> open(const conn_url& target) {
    if (target.dialect() == dialect::postgres) {
        auto s = replicator::postgres::connect(target, std::chrono::minutes(5));
        if (s) {
            if (auto tz = (*s)->execute("SET TimeZone = 'UTC'", {}); !tz) {
                return tz.error();
            }
        }
        return s;
    }
    return replicator::mysql::connect(target, std::chrono::minutes(5));
}

std::string trim_fraction(std::string v) {
    const size_t dot = v.find('.');
    if (dot == std::string::npos) {
        return v;
    }
    size_t end = v.size();
    while (end > dot + 1 && v[end - 1] == '0') {
        --end;
    }
    if (end == dot + 1) {
        end = dot;
    }
    return v.substr(0, end);
}

int64_t floor_div(int64_t a, int64_t b) {
    return a / b - ((a % b != 0 && (a < 0) != (b < 0)) ? 1 : 0);
}

// "2019-01-02 03:04:05.5+00", "... .123456789-09:30" or "... .500000" (no zone: UTC) -> the
// instant in nanoseconds, as text, at the precision the target keeps: microseconds.
// PostgreSQL rounds nanoseconds to the nearest microsecond (the generator makes no ties at
// 500 ns, where PostgreSQL's rounding through a double has no single answer); on MySQL the
// replicator truncates a TIMESTAMPTZ to microseconds and MariaDB truncates a DATETIME's.
std::string instant(std::string v, dialect d) {
    if (v.size() > 10 && v[10] == ' ') {
        v[10] = 'T';
    }
    const size_t zone = v.find_first_of("+-Zz", 19);
    if (zone == std::string::npos) {
        v += 'Z';
    } else if (v[zone] != 'Z' && v[zone] != 'z' && v.find(':', zone) == std::string::npos) {
        v += ":00";  // "+00" -> "+00:00"
    }
    auto nanos = parse_rfc3339(v);
    if (!nanos) {
        return "unparsable " + v;
    }
    const int64_t micros = floor_div(d == dialect::postgres ? *nanos + 500 : *nanos, 1000);
    return std::to_string(micros * 1000);
}

// A value by meaning, for comparison; nullopt is NULL. A JSONB column's JSON null is NULL too:
// the changefeed sends both as null (changefeed-webhook.md §4), so no target can tell them apart.
std::optional<std::string> normalize(const column_spec& c, const std::optional<std::string>& value,
                                     dialect d) {
    if (!value) {
        return std::nullopt;
    }
    const std::string& v = *value;
    if (c.family.array) {
        return v;
    }
    switch (c.family.base) {
    case sql_type::boolean: return (v == "t" || v == "true" || v == "1") ? "true" : "false";
    case sql_type::float4:
    case sql_type::float8: {
        if (v == "NaN" || v == "Infinity" || v == "-Infinity") {
            return v;
        }
        return fmt::format("{}", std::strtod(v.c_str(), nullptr));
    }
    case sql_type::decimal: {
        std::string t = v.find('.') != std::string::npos ? trim_fraction(v) : v;
        return t == "-0" ? "0" : t;
    }
    case sql_type::bytes: return v.rfind("\\x", 0) == 0 ? v.substr(2) : v;
    case sql_type::time: return trim_fraction(v);
    case sql_type::timetz: {
        const size_t sign = v.find_first_of("+-", 8);
        return trim_fraction(v.substr(0, sign));
    }
    case sql_type::timestamp:
    case sql_type::timestamptz: return instant(v, d);
    case sql_type::jsonb: {
        auto parsed = proto::json::parse(v);
        if (parsed && parsed->is_null()) {
            return std::nullopt;
        }
        return parsed ? proto::to_crdb_text(*parsed) : "unparsable " + v;
    }
    default: return v;
    }
}

// A value for a difference report: NULL, or the text (a long one cut short, with its length).
std::string shown(const std::optional<std::string>& v) {
    if (!v) {
        return "NULL";
    }
    if (v->size() <= 80) {
        return *v;
    }
    size_t cut = 60;
    while (cut > 0 && (static_cast<unsigned char>((*v)[cut]) & 0xC0) == 0x80) {
        --cut;  // not inside a UTF-8 sequence
    }
    return fmt::format("{}... ({} bytes)", v->substr(0, cut), v->size());
}

// What to SELECT for a column, as text.
std::string select_expression(const column_spec& c, dialect d) {
    const std::string name = quote_ident(c.name, d);
    if (d == dialect::postgres) {
        return name + "::text";
    }
    switch (c.family.base) {
    case sql_type::bytes: return fmt::format("LOWER(HEX({}))", name);
    case sql_type::bit:
        return fmt::format("LPAD(BIN({} + 0), {}, '0')", name, std::max(1, c.precision));
    default: return fmt::format("CAST({} AS CHAR)", name);
    }
}

// A MySQL/MariaDB column type as a spec names it. `is_json`: one of MariaDB's JSON columns,
// which the catalog shows as LONGTEXT with a json_valid() check.
std::string spec_type_from_mysql(const replicator::column_info& c, bool is_json) {
    const std::string& full = c.sql_type;   // column_type: "decimal(18,2)", "tinyint(1)", ...
    const std::string& base = c.type_name;  // data_type: "decimal", "tinyint", ...
    const size_t paren = full.find('(');
    const std::string args = paren == std::string::npos ? "" : full.substr(paren);
    auto one_of = [&](std::initializer_list<std::string_view> names) {
        return std::find(names.begin(), names.end(), base) != names.end();
    };
    if (is_json || base == "json") {
        return "JSONB";
    }
    if (full.rfind("tinyint(1)", 0) == 0 || base == "boolean") {
        return "BOOL";
    }
    if (one_of({"tinyint", "smallint", "mediumint", "int", "bigint"})) {
        return "INT8";
    }
    if (base == "double") {
        return "FLOAT8";
    }
    if (base == "float") {
        return "FLOAT4";
    }
    if (base == "decimal") {
        return "DECIMAL" + args;
    }
    if (base == "char" && full == "char(36)") {
        return "UUID";  // how MOLT and most applications keep UUIDs in MySQL
    }
    if (one_of({"char", "varchar", "tinytext", "text", "mediumtext", "longtext"})) {
        return base == "varchar" ? "VARCHAR" + args : "STRING";
    }
    if (one_of({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})) {
        return "BYTES";
    }
    if (base == "datetime") {
        return "TIMESTAMP";
    }
    if (base == "timestamp") {
        return "TIMESTAMPTZ";
    }
    if (base == "bit") {
        return "BIT" + args;
    }
    return base;  // date, time; anything else is refused by name when the spec is parsed
}

// enum('a','it''s') -> {"a", "it's"}.
std::vector<std::string> mysql_enum_labels(const std::string& column_type) {
    std::vector<std::string> labels;
    std::string current;
    bool quoted = false;
    for (size_t i = column_type.find('('); i < column_type.size(); ++i) {
        const char ch = column_type[i];
        if (!quoted) {
            if (ch == '\'') {
                quoted = true;
                current.clear();
            }
        } else if (ch == '\'' && i + 1 < column_type.size() && column_type[i + 1] == '\'') {
            current += '\'';
            ++i;
        } else if (ch == '\'') {
            quoted = false;
            labels.push_back(current);
        } else {
            current += ch;
        }
    }
    return labels;
}

// MariaDB's JSON columns: "table/column" for each json_valid(`column`) check.
std::set<std::string> mariadb_json_columns(replicator::target_session& s,
                                           const std::string& database) {
    std::set<std::string> out;
    auto rows = s.query(
        "SELECT table_name, check_clause FROM information_schema.check_constraints "
        "WHERE constraint_schema = :p1 AND check_clause LIKE 'json_valid(%'",
        {database});
    if (!rows) {
        return out;  // MySQL: no table_name there, and JSON is a type of its own
    }
    for (const replicator::sql_row& row : *rows) {
        const std::string& clause = row[1].value_or("");
        const size_t open = clause.find('`');
        const size_t close = clause.find('`', open + 1);
        if (open != std::string::npos && close != std::string::npos) {
            out.insert(*row[0] + "/" + clause.substr(open + 1, close - open - 1));
        }
    }
    return out;
}

// Compares the spec's tables, read on `session`, with the expected state.
result<verify_report> compare_tables(replicator::target_session& session, dialect d,
                                     const workload_spec& spec,
                                     const std::vector<std::map<std::string, row_values>>& expected,
                                     size_t max_reported) {
    verify_report report;
    auto note = [&](std::string text) {
        if (report.differences.size() < max_reported) {
            report.differences.push_back(std::move(text));
        }
    };
    for (size_t t = 0; t < spec.tables.size(); ++t) {
        const table_spec& table = spec.tables[t];
        std::string sql = "SELECT ";
        for (const std::string& k : table.primary_key) {
            sql += fmt::format("CAST({} AS {}), ", quote_ident(k, d),
                               d == dialect::postgres ? "text" : "CHAR");
        }
        for (size_t c = 0; c < table.columns.size(); ++c) {
            sql += (c == 0 ? "" : ", ") + select_expression(table.columns[c], d);
        }
        sql += " FROM " + quote_ident(table.name, d);
        auto rows = session.query(sql, {});
        if (!rows) {
            return rows.error().with_context(fmt::format("reading {}", table.name));
        }
        std::map<std::string, const replicator::sql_row*> actual;
        for (const replicator::sql_row& row : *rows) {
            std::string pk;
            for (size_t k = 0; k < table.primary_key.size(); ++k) {
                pk += (k == 0 ? "" : ",") + row[k].value_or("NULL");
            }
            actual.emplace(std::move(pk), &row);
        }
        report.rows_expected += expected[t].size();
        report.rows_found += actual.size();
        for (const auto& [pk, want] : expected[t]) {
            const auto it = actual.find(pk);
            if (it == actual.end()) {
                ++report.missing;
                note(fmt::format("{} key ({}): missing from the target", table.name, pk));
                continue;
            }
            const replicator::sql_row& got = *it->second;
            std::string diff;
            for (size_t c = 0; c < table.columns.size(); ++c) {
                const auto w = normalize(table.columns[c], want[c], d);
                const auto g = normalize(table.columns[c], got[table.primary_key.size() + c], d);
                if (w != g && diff.size() < 400) {
                    diff += fmt::format("{}{}: target {}, expected {}", diff.empty() ? "" : "; ",
                                        table.columns[c].name, shown(g), shown(w));
                }
            }
            if (!diff.empty()) {
                ++report.differing;
                note(fmt::format("{} key ({}): {}", table.name, pk, diff));
            }
        }
        for (const auto& [pk, row] : actual) {
            if (expected[t].count(pk) == 0) {
                ++report.unexpected;
                note(fmt::format("{} key ({}): in the target but not expected", table.name, pk));
            }
        }
    }
    return report;
}

}  // namespace

result<verify_report> verify_target(const conn_url& target, const workload_spec& spec,
                                    const std::vector<std::map<std::string, row_values>>& expected,
                                    size_t max_reported) {
    auto session = open(target);
    if (!session) {
        return std::move(session).error();
    }
    return compare_tables(**session, target.dialect(), spec, expected, max_reported);
}

result<progress_check> check_progress(const conn_url& target, const generator& g,
                                      size_t max_reported) {
    auto session = open(target);
    if (!session) {
        return std::move(session).error();
    }
    replicator::target_session& db = **session;
    const dialect d = target.dialect();
    const bool pg = d == dialect::postgres;
    // One snapshot for the progress table and every row. MySQL takes it only at REPEATABLE READ,
    // which must be asked for: the replicator's sessions run at READ COMMITTED.
    if (!pg) {
        if (auto level = db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", {});
            !level) {
            return level.error();
        }
    }
    if (auto begun = db.execute(pg ? "START TRANSACTION ISOLATION LEVEL REPEATABLE READ"
                                   : "START TRANSACTION WITH CONSISTENT SNAPSHOT",
                                {});
        !begun) {
        return begun.error();
    }
    auto finish = [&] { (void)db.execute("ROLLBACK", {}); };
    progress_check out;
    auto rows = db.query(
        "SELECT first_nanos, first_logical, last_nanos, last_logical FROM _replicator_progress",
        {});
    if (!rows) {
        finish();
        return out;  // no progress table yet
    }
    for (const replicator::sql_row& row : *rows) {
        std::array<int64_t, 4> v{};
        for (size_t i = 0; i < 4; ++i) {
            v[i] = std::stoll(row[i].value_or("0"));
        }
        const hlc first(v[0], static_cast<int32_t>(v[1]));
        const hlc last(v[2], static_cast<int32_t>(v[3]));
        if (first.is_zero()) {
            out.committed = std::max(out.committed, last);
        } else {
            out.ranges.emplace_back(first, last);
        }
    }
    if (out.committed.is_zero()) {
        finish();
        return out;
    }
    out.ready = true;
    const auto expected = g.state_where([&](hlc t) {
        return t <= out.committed ||
               std::any_of(out.ranges.begin(), out.ranges.end(),
                           [t](const auto& r) { return r.first <= t && t <= r.second; });
    });
    auto report = compare_tables(db, d, g.spec(), expected, max_reported);
    finish();
    if (!report) {
        return report.error();
    }
    out.report = std::move(report).value();
    return out;
}

result<void> create_tables(const conn_url& target, const workload_spec& spec) {
    auto session = open(target);
    if (!session) {
        return std::move(session).error();
    }
    for (const std::string& sql : spec.ddl(target.dialect(), true)) {
        if (auto done = (*session)->execute(sql, {}); !done) {
            return done.error().with_context(sql);
        }
    }
    return ok();
}

result<workload_spec> introspect_spec(const conn_url& target) {
    auto session = open(target);
    if (!session) {
        return std::move(session).error();
    }
    const bool pg = target.dialect() == dialect::postgres;
    auto dialect_impl =
        pg ? replicator::postgres::make_dialect() : replicator::mysql::make_dialect();
    qualified_name schema;
    schema.parts = pg ? std::vector<std::string>{target.database(), "public"}
                      : std::vector<std::string>{target.database()};
    auto snapshot = dialect_impl->introspect(**session, schema);
    if (!snapshot) {
        return std::move(snapshot).error();
    }
    const std::set<std::string> json_columns =
        pg ? std::set<std::string>{} : mariadb_json_columns(**session, target.database());
    // Rebuild a spec document and parse it, so the same checks apply.
    proto::json tables = proto::json::array();
    for (const replicator::table_info& t : snapshot->tables) {
        if (t.name == "_replicator_progress") {
            continue;  // the consistent mode's bookkeeping, not a workload table
        }
        if (!t.parents.empty()) {
            return error{errc::unsupported,
                         fmt::format("table {} has foreign keys, which introspection does not "
                                     "follow: describe the tables in a --spec file",
                                     t.name)};
        }
        proto::json table = proto::json::object();
        table.set("name", proto::json::string(t.name));
        proto::json columns = proto::json::array();
        proto::json key = proto::json::array();
        for (const replicator::column_info& c : t.columns) {
            if (c.generated) {
                continue;
            }
            proto::json col = proto::json::object();
            col.set("name", proto::json::string(c.name));
            if (pg) {
                col.set("type", proto::json::string(c.array ? c.type_name + "[]" : c.sql_type));
            } else if (c.type_name == "enum") {
                col.set("type", proto::json::string(t.name + "_" + c.name));
                proto::json labels = proto::json::array();
                for (const std::string& l : mysql_enum_labels(c.sql_type)) {
                    labels.items().push_back(proto::json::string(l));
                }
                col.set("labels", std::move(labels));
            } else {
                col.set("type", proto::json::string(spec_type_from_mysql(
                                    c, json_columns.count(t.name + "/" + c.name) != 0)));
            }
            columns.items().push_back(std::move(col));
            if (c.pk_position >= 0) {
                key.items().push_back(proto::json::string(c.name));
            }
        }
        table.set("columns", std::move(columns));
        table.set("primary_key", std::move(key));
        tables.items().push_back(std::move(table));
    }
    proto::json doc = proto::json::object();
    doc.set("tables", std::move(tables));
    return workload_spec::parse(proto::to_crdb_text(doc));
}

}  // namespace molt::emulator
