#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "molt/common/integer_text.hpp"
#include "molt/common/log.hpp"
#include "molt/proto/batch.hpp"
#include "molt/proto/json.hpp"
#include "molt/replicator/dialect/postgres.hpp"

namespace molt::replicator::postgres {
namespace {

std::string q(std::string_view name) {
    return quote_ident(name, dialect::postgres);
}

bool is_geometry(const column_info& c) {
    return c.type_name == "geometry" || c.type_name == "geography";
}

// A string literal (standard_conforming_strings, on since PostgreSQL 9.1).
std::string literal(std::string_view text) {
    std::string out = "'";
    for (const char c : text) {
        out += c == '\'' ? std::string("''") : std::string(1, c);
    }
    return out + "'";
}

bool is_json(const column_info& c) {
    return !c.array && (c.type_name == "jsonb" || c.type_name == "json");
}

// The type a parameter is cast to: the column's, except that an explicit cast to varchar(n),
// char(n), bit(n) or varbit(n) cuts or pads the value to fit without a word, where storing it
// in the column refuses one that does not fit ("value too long for type character varying(3)").
// Those are cast to the type without its length (char: bpchar; bit: varbit, as "bit" alone is
// bit(1)), and the column checks the length; a key a delete compares is then not cut either.
std::string cast_type(const column_info& c) {
    const char* unsized = c.type_name == "character varying" ? "character varying"
                          : c.type_name == "character"       ? "bpchar"
                          : c.type_name == "bit" || c.type_name == "bit varying" ? "varbit"
                                                                                 : nullptr;
    if (unsized == nullptr) {
        return c.sql_type;
    }
    return c.array ? std::string(unsized) + "[]" : std::string(unsized);
}

// Parameter n cast to the column's type. SOCI's :pN placeholders (it sends them as $N): with
// native $N, SOCI 4.0.3 loses the server's error (and its SQLSTATE) while describing the bound
// parameters.
std::string placeholder(const column_info& c, size_t n) {
    if (is_geometry(c)) {
        return fmt::format("st_geomfromgeojson(:p{}::jsonb)", n);
    }
    return fmt::format(":p{}::{}", n, cast_type(c));
}

// A userscript's expression (exprs) cast to the column's type, as the value would be; each
// `$0` in it is the value cast to that type (placeholder).
std::string cast_expr(const column_info& c, std::string sql) {
    return sql + "::" + cast_type(c);
}

// A userscript's deadline: now() less the duration. A timestamp without time zone holds the
// changefeed's UTC time: compared with UTC's wall clock, whatever the session's TimeZone.
std::string before_now(const column_info& c, int64_t us) {
    const bool local = c.type_name == "timestamp without time zone" || c.type_name == "timestamp" ||
                       c.type_name == "date";
    return fmt::format("{} - '{} microseconds'::interval",
                       local ? "(now() AT TIME ZONE 'UTC')" : "now()", us);
}

void append_array_element(std::string& out, const proto::json& v) {
    switch (v.kind()) {
    case proto::json::type::null: out += "NULL"; break;
    case proto::json::type::boolean: out += v.as_bool() ? "true" : "false"; break;
    case proto::json::type::number: out += v.text(); break;
    case proto::json::type::array: {
        out += '{';
        for (size_t i = 0; i < v.items().size(); ++i) {
            out += i == 0 ? "" : ",";
            append_array_element(out, v.items()[i]);
        }
        out += '}';
        break;
    }
    case proto::json::type::string:
    case proto::json::type::object: {
        // Quoted: backslash and double quote escaped; objects (jsonb[]) as their JSON text.
        const std::string text =
            v.kind() == proto::json::type::string ? v.text() : proto::to_crdb_text(v);
        out += '"';
        for (const char ch : text) {
            if (ch == '"' || ch == '\\') {
                out += '\\';
            }
            out += ch;
        }
        out += '"';
        break;
    }
    }
}

// An element of an array literal: NULL, or the text double-quoted (backslash and double quote
// escaped), which every element type's input function reads as that text.
void append_element(std::string& out, const std::optional<std::string>& v) {
    if (!v) {
        out += "NULL";
        return;
    }
    out += '"';
    for (const char ch : *v) {
        if (ch == '"' || ch == '\\') {
            out += '\\';
        }
        out += ch;
    }
    out += '"';
}

// unnest(:p1::<type of column 1>[], ...): the rows of a statement bound by column.
std::string unnest(const table_info& t, std::span<const size_t> columns) {
    std::string out = "unnest(";
    for (size_t i = 0; i < columns.size(); ++i) {
        out +=
            fmt::format("{}:p{}::{}[]", i == 0 ? "" : ",", i + 1, cast_type(t.columns[columns[i]]));
    }
    return out + ")";
}

class postgres_dialect final : public target_dialect {
public:
    molt::dialect kind() const noexcept override { return dialect::postgres; }
    size_t schema_segments() const noexcept override { return 2; }
    size_t max_parameters() const noexcept override { return 65535; }
    // As PostgreSQL's own logical replication applies changes: foreign keys (and ordinary
    // triggers) do not fire for a session in the replica role.
    std::string no_foreign_key_checks_sql() const override {
        return "SET session_replication_role = replica";
    }
    std::string no_foreign_key_checks_hint() const override {
        return "the target user must be a superuser, or on PostgreSQL 15 and later be granted "
               "it: GRANT SET ON PARAMETER session_replication_role TO <user>";
    }

    // Every column of a scalar type: one array parameter per column, unnested. Array columns
    // (unnest would flatten them) and geometries (converted per value) bind per value.
    bool binds_columns(const table_info& t, std::span<const size_t> columns) const override {
        // A userscript's expression (exprs) takes its value as a parameter of its own; a
        // conditional upsert (cas, deadlines) lists its rows.
        if (t.conditional()) {
            return false;
        }
        return std::none_of(columns.begin(), columns.end(), [&](size_t c) {
            return t.columns[c].array || is_geometry(t.columns[c]) || !t.columns[c].expr.empty();
        });
    }

    sql_params pack_columns(sql_params row_major, size_t columns) const override {
        sql_params packed(columns, std::string("{"));
        for (size_t i = 0; i < row_major.size(); ++i) {
            std::string& out = *packed[i % columns];
            if (out.size() > 1) {
                out += ',';
            }
            append_element(out, row_major[i]);
        }
        for (auto& p : packed) {
            *p += '}';
        }
        return packed;
    }

    std::string upsert_sql(const table_info& t, std::span<const size_t> columns,
                           size_t rows) const override {
        std::string names;
        for (size_t i = 0; i < columns.size(); ++i) {
            names += (i == 0 ? "" : ",") + q(t.columns[columns[i]].name);
        }
        const std::string table = t.qualified.quoted(dialect::postgres);
        std::string sql;
        if (t.conditional()) {
            // A userscript's cas and deadlines: the rows that win, as the original writes them.
            sql = fmt::format(
                "WITH {}({}) AS (VALUES {}){} INSERT INTO {} ({}) SELECT * FROM {}", q("data"),
                names, values_rows(t, columns, rows, placeholder, cast_expr),
                conditional_ctes(t, dialect::postgres, before_now), table, names, q("action"));
        } else if (binds_columns(t, columns)) {
            sql = fmt::format("INSERT INTO {} ({}) SELECT * FROM {}", table, names,
                              unnest(t, columns));
        } else {
            sql = fmt::format("INSERT INTO {} ({}) VALUES {}", table, names,
                              values_rows(t, columns, rows, placeholder, cast_expr));
        }
        sql += " ON CONFLICT (";
        for (size_t k = 0; k < t.pk_count; ++k) {
            sql += (k == 0 ? "" : ",") + q(t.columns[k].name);
        }
        std::string set;
        std::string from;
        for (const size_t c : columns) {
            if (t.columns[c].pk_position < 0) {
                set += (set.empty() ? "" : ",") + q(t.columns[c].name);
                from += (from.empty() ? "" : ",") + ("excluded." + q(t.columns[c].name));
            }
        }
        if (set.empty()) {
            return sql + ") DO NOTHING";
        }
        return sql + fmt::format(") DO UPDATE SET ({}) = ROW({})", set, from);
    }

    std::string merge_conflicts_sql(const table_info& t, std::span<const size_t> columns,
                                    size_t rows) const override {
        std::string names = q("__idx__");
        for (const size_t c : columns) {
            names += "," + q(t.columns[c].name);
        }
        // The rows numbered in the text: VALUES keeps no order a query could rely on.
        std::string values;
        size_t n = 1;
        for (size_t r = 0; r < rows; ++r) {
            values += fmt::format("{}({}", r == 0 ? "" : ",", r);
            for (const size_t c : columns) {
                values += "," + value_sql(t.columns[c], n, placeholder, cast_expr);
            }
            values += ')';
        }
        // The target's row as a script sees rows: numbers as their text, geometries as GeoJSON,
        // the rest as to_jsonb writes it (a JSON column as itself); jsonb_build_object takes
        // at most 50 pairs, so in parts joined by ||.
        std::string row_json;
        for (size_t c = 0; c < t.columns.size(); ++c) {
            const column_info& col = t.columns[c];
            const std::string value = q("__t") + "." + q(col.name);
            const bool number =
                !col.array && (col.type_name == "smallint" || col.type_name == "integer" ||
                               col.type_name == "bigint" || col.type_name == "numeric" ||
                               col.type_name == "real" || col.type_name == "double precision");
            row_json +=
                c % 50 == 0 ? (c == 0 ? "(jsonb_build_object(" : ") || jsonb_build_object(") : ",";
            row_json += literal(col.name) + "," +
                        (number             ? value + "::text"
                         : is_geometry(col) ? "ST_AsGeoJSON(" + value + ", 17)::jsonb"
                                            : value);
        }
        row_json += t.columns.empty() ? "'{}'::jsonb" : "))";
        return fmt::format("WITH {}({}) AS (VALUES {}){}", q("data"), names, values,
                           merge_conflicts_ctes(t, dialect::postgres, before_now, row_json,
                                                "FOR UPDATE OF " + q("__t")));
    }

    std::string delete_sql(const table_info& t, size_t rows) const override {
        std::string sql =
            fmt::format("DELETE FROM {} WHERE (", t.qualified.quoted(dialect::postgres));
        for (size_t k = 0; k < t.pk_count; ++k) {
            sql += (k == 0 ? "" : ",") + q(t.columns[k].name);
        }
        sql += ") IN (";
        std::vector<size_t> key(t.pk_count);
        std::iota(key.begin(), key.end(), size_t{0});
        if (binds_columns(t, key)) {
            return sql + "SELECT * FROM " + unnest(t, key) + ")";
        }
        size_t n = 1;
        for (size_t r = 0; r < rows; ++r) {
            sql += r == 0 ? "(" : ",(";
            for (size_t k = 0; k < t.pk_count; ++k) {
                sql += (k == 0 ? "" : ",") + value_sql(t.columns[k], n, placeholder, cast_expr);
            }
            sql += ')';
        }
        return sql + ")";
    }

    result<std::optional<std::string>> bind_value(const column_info& c,
                                                  const proto::value& v) const override {
        if (is_json(c)) {
            // The changefeed sends a JSONB value as itself: "pending" must become the JSON
            // string, not the bare word.
            return proto::json_document(v);
        }
        switch (v.kind) {
        case proto::value_kind::null: return std::optional<std::string>();
        case proto::value_kind::json:
            if (c.array) {
                auto literal = array_literal(v.text);
                if (!literal) {
                    return literal.error().with_context(fmt::format("column \"{}\"", c.name));
                }
                return std::optional<std::string>(std::move(literal).value());
            }
            return std::optional<std::string>(std::string(v.text));
        default: return std::optional<std::string>(std::string(v.text));
        }
    }

    progress_statements progress_sql(const qualified_name& schema,
                                     std::string_view table) const override;

    std::string dlq_ddl(const qualified_name& schema, std::string_view table) const override {
        return fmt::format(
            "CREATE TABLE {}.{} (event BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, dlq_name "
            "VARCHAR(256) NOT NULL, source_nanos BIGINT NOT NULL, source_logical BIGINT NOT NULL, "
            "data_after JSONB NOT NULL, data_before JSONB NOT NULL)",
            q(schema.parts.back()), q(table));
    }

    std::string dlq_insert_sql(const table_info& dlq) const override {
        // Each parameter cast to its column's type (JSONB, TEXT, BIGINT, ...), as upserts do.
        std::string values;
        size_t n = 1;
        for (const std::string_view name :
             {"dlq_name", "source_nanos", "source_logical", "data_after", "data_before"}) {
            const column_info* c = dlq.find_column(name);
            values +=
                (n == 1 ? "" : ", ") + (c != nullptr ? placeholder(*c, n) : fmt::format(":p{}", n));
            ++n;
        }
        return fmt::format(
            "INSERT INTO {} (dlq_name, source_nanos, source_logical, data_after, data_before) "
            "VALUES ({})",
            dlq.qualified.quoted(dialect::postgres), values);
    }

    bool row_data_error(const error& e) const override {
        // The session writes "(SQLSTATE xxxxx)" after the server's message.
        const std::string& m = e.message();
        const size_t at = m.rfind("(SQLSTATE ");
        if (at == std::string::npos || m.size() < at + 15) {
            return false;
        }
        const std::string_view state = std::string_view(m).substr(at + 10, 5);
        // Class 22 is a data exception (value too long, out of range, invalid text for a
        // type); 23502 NOT NULL and 23514 CHECK concern the row alone.
        return state.substr(0, 2) == "22" || state == "23502" || state == "23514";
    }

    result<schema_snapshot> introspect(target_session& s,
                                       const qualified_name& schema) const override;
};

progress_statements postgres_dialect::progress_sql(const qualified_name& schema,
                                                   std::string_view table) const {
    progress_statements s;
    s.table = q(schema.parts.back()) + "." + q(table);
    s.create = fmt::format(
        "CREATE TABLE IF NOT EXISTS {} (first_nanos BIGINT NOT NULL, first_logical INT NOT NULL, "
        "last_nanos BIGINT NOT NULL, last_logical INT NOT NULL, applied_at TIMESTAMPTZ NOT NULL "
        "DEFAULT now(), PRIMARY KEY (last_nanos, last_logical))",
        s.table);
    constexpr std::string_view columns = "(first_nanos, first_logical, last_nanos, last_logical)";
    constexpr std::string_view values = "(:p1::bigint, :p2::integer, :p3::bigint, :p4::integer)";
    s.insert = fmt::format("INSERT INTO {} {} VALUES {}", s.table, columns, values);
    s.record = fmt::format(
        "INSERT INTO {} {} VALUES {} ON CONFLICT (last_nanos, last_logical) DO NOTHING RETURNING "
        "last_nanos",
        s.table, columns, values);
    s.select = fmt::format(
        "SELECT first_nanos, first_logical, last_nanos, last_logical FROM {} ORDER BY last_nanos, "
        "last_logical",
        s.table);
    s.clear = fmt::format("DELETE FROM {}", s.table);
    return s;
}

result<schema_snapshot> postgres_dialect::introspect(target_session& s,
                                                     const qualified_name& schema) const {
    if (schema.parts.size() != 2) {
        return error{errc::not_found,
                     fmt::format("unknown schema \"{}\": PostgreSQL targets are named "
                                 "/<database>/<schema>",
                                 schema.to_string())};
    }
    auto db = s.query("SELECT current_database()::text", {});
    if (!db) {
        return std::move(db).error();
    }
    const std::string current = db->empty() ? "" : db->front()[0].value_or("");
    if (!ident_equal(current, schema.parts[0])) {
        return error{errc::not_found,
                     fmt::format("unknown schema \"{}\": --targetConn connects to database "
                                 "\"{}\", not \"{}\"",
                                 schema.to_string(), current, schema.parts[0])};
    }
    auto ns = s.query(
        "SELECT nspname::text FROM pg_namespace WHERE lower(nspname) = lower(:p1) "
        "ORDER BY nspname = :p2 DESC LIMIT 1",
        {schema.parts[1], schema.parts[1]});
    if (!ns) {
        return std::move(ns).error();
    }
    if (ns->empty()) {
        return error{errc::not_found,
                     fmt::format("unknown schema \"{}\": database \"{}\" has no schema \"{}\"",
                                 schema.to_string(), current, schema.parts[1])};
    }
    const std::string nspname = *ns->front()[0];

    auto columns = s.query(
        "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), "
        "(a.attgenerated <> '')::text, pg_get_expr(d.adbin, d.adrelid), "
        "COALESCE((SELECT k.ord - 1 FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
        "WHERE k.attnum = a.attnum), -1)::text, "
        "(t.typcategory = 'A')::text, "
        "CASE WHEN t.typcategory = 'A' THEN format_type(t.typelem, NULL) "
        "ELSE format_type(a.atttypid, NULL) END "
        "FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "JOIN pg_type t ON t.oid = a.atttypid "
        "LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum "
        "LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary "
        "WHERE n.nspname = :p1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "ORDER BY c.relname, a.attnum",
        {nspname});
    if (!columns) {
        return std::move(columns).error();
    }
    auto fks = s.query(
        "SELECT c.relname::text, p.relname::text FROM pg_constraint f "
        "JOIN pg_class c ON c.oid = f.conrelid "
        "JOIN pg_class p ON p.oid = f.confrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE f.contype = 'f' AND n.nspname = :p1",
        {nspname});
    if (!fks) {
        return std::move(fks).error();
    }

    schema_snapshot out;
    out.schema.parts = {current, nspname};  // as the catalog spells them
    for (const sql_row& row : *columns) {
        const std::string& table = *row[0];
        if (out.tables.empty() || out.tables.back().name != table) {
            table_info t;
            t.name = table;
            t.qualified.parts = {nspname, table};
            out.tables.push_back(std::move(t));
        }
        column_info c;
        c.name = *row[1];
        c.sql_type = *row[2];
        c.generated = row[3] == "true";
        c.default_expr = row[4];
        c.pk_position = parse_integer<int>(*row[5]).value_or(-1);
        c.array = row[6] == "true";
        c.type_name = *row[7];
        out.tables.back().columns.push_back(std::move(c));
    }
    for (table_info& t : out.tables) {
        order_primary_key_first(t);
    }
    for (const sql_row& row : *fks) {
        for (table_info& t : out.tables) {
            if (t.name == *row[0] && *row[1] != t.name) {
                t.parents.push_back(*row[1]);
            }
        }
    }
    out.finish();
    return out;
}

}  // namespace

std::unique_ptr<target_dialect> make_dialect() {
    return std::make_unique<postgres_dialect>();
}

result<std::string> array_literal(std::string_view json_array) {
    auto parsed = proto::json::parse(json_array);
    if (!parsed || parsed->kind() != proto::json::type::array) {
        return error{errc::invalid_argument, "an ARRAY value must be a JSON array"};
    }
    std::string out;
    append_array_element(out, *parsed);
    return out;
}

retry_class classify_sqlstate(std::string_view sqlstate) noexcept {
    // Why each class: 40001/40P01 lose a race with another transaction and succeed when run
    // again; 55P03 is a lock that was not available in time; class 08 and 57P0x mean the
    // connection or server went away; 53xxx is a server out of resources (connections, memory);
    // 57014 is our statement_timeout; 26000 is a statement the session prepared earlier that the
    // server no longer has (DEALLOCATE ALL or DISCARD ALL on the connection; the session prepares
    // it again); 23503 is a parent row that has not arrived yet; 42P01,
    // 42703 and 42704 mean the tables or types changed under us; 23505 is a unique value another
    // row still holds (another row order may succeed). Everything else (22xxx bad data, 23502
    // NOT NULL, 42xxx syntax) fails the same way again.
    if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03" || sqlstate == "57014" ||
        sqlstate == "26000") {
        return retry_class::retry_now;
    }
    if (sqlstate.substr(0, 2) == "08" || sqlstate == "57P01" || sqlstate == "57P02" ||
        sqlstate == "57P03" || sqlstate.substr(0, 2) == "53") {
        return retry_class::reconnect;
    }
    if (sqlstate == "23503") {
        return retry_class::defer;
    }
    if (sqlstate == "42P01" || sqlstate == "42703" || sqlstate == "42704") {
        return retry_class::schema;
    }
    if (sqlstate == "23505") {
        return retry_class::unique;
    }
    return retry_class::fatal;
}

}  // namespace molt::replicator::postgres
