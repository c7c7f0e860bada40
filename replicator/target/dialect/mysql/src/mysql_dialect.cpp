#include <algorithm>

#include <fmt/format.h>

#include "molt/common/integer_text.hpp"
#include "molt/common/time_format.hpp"
#include "molt/proto/batch.hpp"
#include "molt/replicator/dialect/mysql.hpp"

#include "escape.hpp"

namespace molt::replicator::mysql {
namespace {

std::string q(std::string_view name) {
    return quote_ident(name, dialect::mysql);
}

bool one_of(std::string_view v, std::initializer_list<std::string_view> set) {
    return std::find(set.begin(), set.end(), v) != set.end();
}

bool is_binary(const column_info& c) {
    return one_of(c.type_name,
                  {"binary", "varbinary", "blob", "tinyblob", "mediumblob", "longblob"});
}
bool is_bit(const column_info& c) {
    return c.type_name == "bit";
}
bool is_geometry(const column_info& c) {
    return one_of(c.type_name, {"geometry", "point", "linestring", "polygon", "multipoint",
                                "multilinestring", "multipolygon", "geometrycollection"});
}
bool is_datetime(const column_info& c) {
    return one_of(c.type_name, {"datetime", "timestamp"});
}
// MySQL's JSON type, and MariaDB's (LONGTEXT with a json_valid() check, which introspection
// reports as "json").
bool is_json(const column_info& c) {
    return c.type_name == "json";
}
bool is_floating(const column_info& c) {
    return one_of(c.type_name, {"float", "double", "real", "decimal", "numeric"});
}

// A row's value as its column's type, where a conditional upsert's rows compare it: a quoted
// value compares with an integer or DECIMAL column as a double (9007199254740993 equals
// 9007199254740992), and joins on a key by it.
std::string typed(const column_info& c, std::string sql) {
    if (one_of(c.type_name, {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"})) {
        const bool is_unsigned = c.sql_type.find("unsigned") != std::string::npos;
        return fmt::format("CAST({} AS {})", sql, is_unsigned ? "UNSIGNED" : "SIGNED");
    }
    if (one_of(c.type_name, {"decimal", "numeric"})) {
        const size_t open = c.sql_type.find('(');
        const size_t close = c.sql_type.find(')', open);
        const std::string digits = open != std::string::npos && close != std::string::npos
                                       ? c.sql_type.substr(open, close - open + 1)
                                       : std::string();
        return fmt::format("CAST({} AS DECIMAL{})", sql, digits);
    }
    if (is_datetime(c)) {
        return fmt::format("CAST({} AS DATETIME(6))", sql);
    }
    if (c.type_name == "date") {
        return fmt::format("CAST({} AS DATE)", sql);
    }
    return sql;
}

// A userscript's deadline: now() less the duration.
std::string before_now(const column_info& /*c*/, int64_t us) {
    return fmt::format("now(6) - INTERVAL {} MICROSECOND", us);
}

// A string literal.
std::string literal(std::string_view text) {
    std::string out = "'";
    for (const char c : text) {
        out += c == '\\' ? "\\\\" : c == '\'' ? "''" : std::string(1, c);
    }
    return out + "'";
}

// The SQL expression for one bound value of a column.
std::string placeholder(const column_info& c, size_t n) {
    if (is_binary(c)) {
        return fmt::format("UNHEX(:p{})", n);
    }
    if (is_bit(c)) {
        return fmt::format("CAST(:p{} AS UNSIGNED)", n);
    }
    if (is_geometry(c)) {
        return fmt::format("ST_GeomFromGeoJSON(:p{})", n);
    }
    return fmt::format(":p{}", n);
}

error bad(const column_info& c, std::string_view value, std::string_view why) {
    return {errc::invalid_argument, fmt::format("column \"{}\" ({}): cannot store \"{}\": {}",
                                                c.name, c.sql_type, value.substr(0, 64), why)};
}

// "04:05:06.789-08" -> "12:05:06.789": a TIMETZ as UTC time of day.
std::string time_in_utc(std::string_view text) {
    const size_t sign = text.find_last_of("+-");
    if (sign == std::string_view::npos || sign < 8) {
        return std::string(text);
    }
    const std::string_view off = text.substr(sign + 1);
    int parts[3] = {0, 0, 0};
    size_t part = 0;
    for (const char ch : off) {
        if (ch == ':') {
            part = std::min<size_t>(part + 1, 2);
        } else if (ch >= '0' && ch <= '9') {
            parts[part] = parts[part] * 10 + (ch - '0');
        }
    }
    const int offset = (parts[0] * 3600 + parts[1] * 60 + parts[2]) * (text[sign] == '-' ? -1 : 1);
    const std::string_view clock = text.substr(0, sign);
    const int h = parse_integer<int>(clock.substr(0, 2)).value_or(0);
    const int m = parse_integer<int>(clock.substr(3, 2)).value_or(0);
    const int s = parse_integer<int>(clock.substr(6, 2)).value_or(0);
    int total = ((h * 3600 + m * 60 + s - offset) % 86400 + 86400) % 86400;
    return fmt::format("{:02}:{:02}:{:02}{}", total / 3600, total % 3600 / 60, total % 60,
                       clock.substr(8));
}

// "WITH "data" AS (SELECT … UNION ALL SELECT …)": the rows of a conditional upsert, each value
// as its column's type (typed), named as the columns; with `numbered`, each row's position from
// 0 first, as "__idx__".
std::string data_cte(const table_info& t, std::span<const size_t> columns, size_t rows,
                     bool numbered) {
    std::string sql = "WITH " + q("data") + " AS (";
    size_t n = 1;
    for (size_t r = 0; r < rows; ++r) {
        sql += r == 0 ? "SELECT " : " UNION ALL SELECT ";
        if (numbered) {
            sql += std::to_string(r) + (r == 0 ? " AS " + q("__idx__") + "," : ",");
        }
        for (size_t i = 0; i < columns.size(); ++i) {
            const column_info& c = t.columns[columns[i]];
            sql += (i == 0 ? "" : ",") + typed(c, value_sql(c, n, placeholder));
            if (r == 0) {
                sql += " AS " + q(c.name);
            }
        }
    }
    return sql + ")";
}

class mysql_dialect final : public target_dialect {
public:
    molt::dialect kind() const noexcept override { return dialect::mysql; }
    size_t schema_segments() const noexcept override { return 1; }
    size_t max_parameters() const noexcept override { return 65535; }
    std::string no_foreign_key_checks_sql() const override {
        return "SET SESSION foreign_key_checks = 0";
    }
    std::string no_foreign_key_checks_hint() const override {
        return "any user may set it for its session";
    }
    // A statement travels in one packet, at most the server's max_allowed_packet (MySQL 5.7:
    // 4 MiB by default, 8.0: 64 MiB, MariaDB 10.2 on: 16 MiB); beyond, the server drops the
    // connection (2006, "server has gone away"). 4 MiB of values leaves room for the SQL text
    // under every default.
    size_t max_statement_bytes() const noexcept override { return 4 * 1024 * 1024 - 64 * 1024; }
    // Sessions write values into the statement's text (mysql_session.cpp, send_inline), escaped
    // and quoted, inside the placeholder's conversion (CAST, UNHEX): each escaped byte counts
    // twice, and 24 bytes cover the quotes, the comma and the conversion.
    size_t statement_bytes(const std::optional<std::string>& value) const noexcept override {
        if (!value) {
            return 24;
        }
        size_t escaped = 0;
        for (const char c : *value) {
            escaped += backslash_escape(c) != nullptr ? 1 : 0;
        }
        return 24 + value->size() + escaped;
    }

    std::string upsert_sql(const table_info& t, std::span<const size_t> columns,
                           size_t rows) const override {
        std::string sql = fmt::format("INSERT INTO {} (", t.qualified.quoted(dialect::mysql));
        for (size_t i = 0; i < columns.size(); ++i) {
            sql += (i == 0 ? "" : ",") + q(t.columns[columns[i]].name);
        }
        if (t.conditional()) {
            // A userscript's cas and deadlines: the rows that win, as the original writes them
            // (MySQL 8 and MariaDB 10.2 on take a WITH in INSERT … SELECT).
            sql += ") " + data_cte(t, columns, rows, false) +
                   conditional_ctes(t, dialect::mysql, before_now);
            sql += " SELECT * FROM " + q("action");
        } else {
            sql += ") VALUES " + values_rows(t, columns, rows, placeholder);
        }
        // The key columns are set too. A conflict on the primary key leaves them as they are;
        // a conflict on another unique key (the row that still holds a value this row takes)
        // would otherwise overwrite that row's columns and never insert this one. Setting the
        // key turns that row into this one instead: its own change in the same batch (it gives
        // the value up or is deleted) then writes it again as a whole row, or finds it gone. A
        // conflict on both keys fails (1062) and goes to apply_in_source_order.
        std::string set;
        for (const size_t c : columns) {
            const std::string name = q(t.columns[c].name);
            set += fmt::format("{}{}=VALUES({})", set.empty() ? "" : ",", name, name);
        }
        return sql + " ON DUPLICATE KEY UPDATE " + set;
    }

    std::string merge_conflicts_sql(const table_info& t, std::span<const size_t> columns,
                                    size_t rows) const override {
        // The target's row as a changefeed would send it and a script sees it: numbers as their
        // text, bytes as \\x-prefixed hex, bits as 0s and 1s, geometries as GeoJSON, JSON as
        // itself.
        std::string row_json = "JSON_OBJECT(";
        for (size_t c = 0; c < t.columns.size(); ++c) {
            const column_info& col = t.columns[c];
            const std::string value = q("__t") + "." + q(col.name);
            std::string sql = value;
            if (is_binary(col)) {
                sql = fmt::format("CONCAT(CONVERT(0x5C78 USING utf8mb4), LOWER(HEX({})))", value);
            } else if (is_bit(col)) {
                const size_t open = col.sql_type.find('(');
                const auto width =
                    open == std::string::npos
                        ? std::optional<int>(1)
                        : parse_integer<int>(
                              std::string_view(col.sql_type)
                                  .substr(open + 1, col.sql_type.find(')') - open - 1));
                sql = fmt::format("LPAD(BIN({}), {}, '0')", value, width.value_or(1));
            } else if (is_geometry(col)) {
                // MariaDB's is text: as a JSON value, an object.
                sql = fmt::format("JSON_EXTRACT(ST_AsGeoJSON({}), '$')", value);
            } else if (is_json(col)) {
                sql = fmt::format("JSON_EXTRACT({}, '$')", value);
            } else if (is_floating(col) ||
                       one_of(col.type_name, {"tinyint", "smallint", "mediumint", "int", "integer",
                                              "bigint", "year"})) {
                sql = "CAST(" + value + " AS CHAR)";
            }
            row_json += fmt::format("{}{},{}", c == 0 ? "" : ",", literal(col.name), sql);
        }
        row_json += ")";
        return data_cte(t, columns, rows, true) +
               merge_conflicts_ctes(t, dialect::mysql, before_now, row_json, "FOR UPDATE");
    }

    std::string delete_sql(const table_info& t, size_t rows) const override {
        std::string sql = fmt::format("DELETE FROM {} WHERE (", t.qualified.quoted(dialect::mysql));
        for (size_t k = 0; k < t.pk_count; ++k) {
            sql += (k == 0 ? "" : ",") + q(t.columns[k].name);
        }
        sql += ") IN (";
        size_t n = 1;
        for (size_t r = 0; r < rows; ++r) {
            sql += r == 0 ? "(" : ",(";
            for (size_t k = 0; k < t.pk_count; ++k) {
                sql += (k == 0 ? "" : ",") + value_sql(t.columns[k], n, placeholder);
            }
            sql += ')';
        }
        return sql + ")";
    }

    result<std::optional<std::string>> bind_value(const column_info& c,
                                                  const proto::value& v) const override {
        using kind = proto::value_kind;
        const std::string_view text = v.text;
        if (is_json(c)) {
            // The changefeed sends a JSONB value as itself: true must stay the JSON true (not
            // the 1 of a BOOLEAN column), "pending" must become the JSON string.
            return proto::json_document(v);
        }
        switch (v.kind) {
        case kind::null: return std::optional<std::string>();
        case kind::boolean: return std::optional<std::string>(text == "true" ? "1" : "0");
        case kind::number:
        case kind::json: return std::optional<std::string>(std::string(text));
        case kind::string: break;
        }
        if (is_binary(c)) {
            std::string hex;
            if (text.rfind("\\x", 0) == 0) {
                hex = std::string(text.substr(2));
            } else if (text.size() == 36 && text[8] == '-' && text[13] == '-') {
                // A UUID into BINARY(16).
                hex = std::string(text);
                hex.erase(std::remove(hex.begin(), hex.end(), '-'), hex.end());
            } else {
                return bad(c, text, "expected \\x-prefixed hex bytes");
            }
            if (hex.size() % 2 != 0 || !std::all_of(hex.begin(), hex.end(), [](char ch) {
                    return std::isxdigit(static_cast<unsigned char>(ch)) != 0;
                })) {
                return bad(c, text, "not valid hex");
            }
            return std::optional<std::string>(std::move(hex));
        }
        if (is_bit(c)) {
            if (text.empty() || text.size() > 64 ||
                !std::all_of(text.begin(), text.end(),
                             [](char ch) { return ch == '0' || ch == '1'; })) {
                return bad(c, text, "expected a string of 0 and 1");
            }
            return std::optional<std::string>(
                std::to_string(parse_integer<unsigned long long>(text, 2).value_or(0)));
        }
        if (is_floating(c) && (text == "NaN" || text == "Infinity" || text == "-Infinity")) {
            return bad(c, text, "MySQL cannot store NaN or infinite numbers");
        }
        if (is_datetime(c)) {
            if (!text.empty() &&
                (text.back() == 'Z' || text.find('+', 10) != std::string_view::npos ||
                 text.find('-', 10) != std::string_view::npos)) {
                auto nanos = parse_rfc3339(text);
                if (!nanos) {
                    return bad(c, text, nanos.error().message());
                }
                const civil_time t = civil_from_unix_nanos(*nanos);
                return std::optional<std::string>(
                    fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}", t.year, t.month, t.day,
                                t.hour, t.minute, t.second, t.nanos / 1000));
            }
            std::string local(text);
            if (local.size() > 10 && local[10] == 'T') {
                local[10] = ' ';
            }
            return std::optional<std::string>(std::move(local));
        }
        if (c.type_name == "time") {
            return std::optional<std::string>(time_in_utc(text));
        }
        return std::optional<std::string>(std::string(text));
    }

    progress_statements progress_sql(const qualified_name& schema,
                                     std::string_view table) const override;

    std::string dlq_ddl(const qualified_name& schema, std::string_view table) const override {
        return fmt::format(
            "CREATE TABLE {}.{} (event BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, dlq_name "
            "VARCHAR(256) NOT NULL, source_nanos BIGINT NOT NULL, source_logical BIGINT NOT NULL, "
            "data_after JSON NOT NULL, data_before JSON NOT NULL) ENGINE InnoDB",
            q(schema.parts.back()), q(table));
    }

    std::string dlq_insert_sql(const table_info& dlq) const override {
        return fmt::format(
            "INSERT INTO {} (dlq_name, source_nanos, source_logical, data_after, data_before) "
            "VALUES (:p1, :p2, :p3, :p4, :p5)",
            dlq.qualified.quoted(dialect::mysql));
    }

    bool row_data_error(const error& e) const override {
        // The session writes "(MySQL error N)" after the server's message.
        const std::string& m = e.message();
        const size_t at = m.rfind("(MySQL error ");
        if (at == std::string::npos) {
            return false;
        }
        unsigned int number = 0;
        for (size_t i = at + 13; i < m.size() && m[i] >= '0' && m[i] <= '9'; ++i) {
            number = number * 10 + static_cast<unsigned int>(m[i] - '0');
        }
        switch (number) {
        case 1048:  // column cannot be null
        case 1263:  // NULL for a NOT NULL column in a multi-row insert
        case 1264:  // out of range
        case 1265:  // data truncated
        case 1292:  // incorrect value (dates, numbers)
        case 1364:  // no value and no default
        case 1366:  // incorrect value for the column's type
        case 1367:  // illegal value
        case 1406:  // data too long
        case 1416:  // not a geometry
        case 1690:  // value out of range in an expression
        case 3140:  // invalid JSON (MySQL)
        case 3819:  // CHECK constraint violated (MySQL)
        case 4025:  // CHECK constraint failed (MariaDB)
            return true;
        default: return false;
        }
    }

    result<schema_snapshot> introspect(target_session& s,
                                       const qualified_name& schema) const override;
};

progress_statements mysql_dialect::progress_sql(const qualified_name& schema,
                                                std::string_view table) const {
    progress_statements s;
    s.table = q(schema.parts.back()) + "." + q(table);
    s.create = fmt::format(
        "CREATE TABLE IF NOT EXISTS {} (first_nanos BIGINT NOT NULL, first_logical INT NOT NULL, "
        "last_nanos BIGINT NOT NULL, last_logical INT NOT NULL, applied_at TIMESTAMP(6) NOT NULL "
        "DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (last_nanos, last_logical)) ENGINE InnoDB",
        s.table);
    constexpr std::string_view columns = "(first_nanos, first_logical, last_nanos, last_logical)";
    s.insert = fmt::format("INSERT INTO {} {} VALUES (:p1, :p2, :p3, :p4)", s.table, columns);
    s.record =
        fmt::format("INSERT IGNORE INTO {} {} VALUES (:p1, :p2, :p3, :p4)", s.table, columns);
    s.recorded = "SELECT ROW_COUNT()";
    s.select = fmt::format(
        "SELECT first_nanos, first_logical, last_nanos, last_logical FROM {} ORDER BY last_nanos, "
        "last_logical",
        s.table);
    s.clear = fmt::format("DELETE FROM {}", s.table);
    return s;
}

result<schema_snapshot> mysql_dialect::introspect(target_session& s,
                                                  const qualified_name& schema) const {
    if (schema.parts.size() != 1) {
        return error{errc::not_found,
                     fmt::format("unknown schema \"{}\": MySQL targets are named /<database>",
                                 schema.to_string())};
    }
    auto db = s.query(
        "SELECT schema_name, VERSION() FROM information_schema.schemata "
        "WHERE lower(schema_name) = lower(:p1) ORDER BY schema_name = :p2 DESC LIMIT 1",
        {schema.parts[0], schema.parts[0]});
    if (!db) {
        return std::move(db).error();
    }
    if (db->empty()) {
        return error{errc::not_found,
                     fmt::format("unknown schema \"{}\": no such database", schema.to_string())};
    }
    const std::string database = *db->front()[0];
    const bool mariadb = db->front()[1].value_or("").find("MariaDB") != std::string::npos;
    auto columns = s.query(
        "SELECT c.table_name, c.column_name, c.column_type, lower(c.data_type), "
        "CASE WHEN c.generation_expression IS NOT NULL AND c.generation_expression <> '' "
        "THEN 'true' ELSE 'false' END, c.column_default, "
        "CAST(COALESCE(k.ordinal_position - 1, -1) AS CHAR) "
        "FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_schema = c.table_schema "
        "AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE' "
        "LEFT JOIN information_schema.key_column_usage k ON k.table_schema = c.table_schema "
        "AND k.table_name = c.table_name AND k.column_name = c.column_name "
        "AND k.constraint_name = 'PRIMARY' "
        "WHERE c.table_schema = :p1 ORDER BY c.table_name, c.ordinal_position",
        {database});
    if (!columns) {
        return std::move(columns).error();
    }
    auto fks = s.query(
        "SELECT DISTINCT table_name, referenced_table_name "
        "FROM information_schema.key_column_usage WHERE table_schema = :p1 "
        "AND referenced_table_schema = :p2 AND referenced_table_name IS NOT NULL",
        {database, database});
    if (!fks) {
        return std::move(fks).error();
    }
    // MariaDB's JSON is LONGTEXT with a column check json_valid(`name`) (information_schema
    // reports longtext); MySQL reports json itself and has no table_name in check_constraints.
    std::vector<sql_row> json_checks;
    if (mariadb) {
        auto checks = s.query(
            "SELECT table_name, check_clause FROM information_schema.check_constraints "
            "WHERE constraint_schema = :p1 AND check_clause LIKE 'json\\_valid(%'",
            {database});
        if (!checks) {
            return std::move(checks).error();
        }
        json_checks = std::move(*checks);
    }
    auto is_json_checked = [&](const std::string& table, const std::string& column) {
        const std::string clause = "json_valid(" + q(column) + ")";
        return std::any_of(json_checks.begin(), json_checks.end(), [&](const sql_row& r) {
            return r[0] == table && r[1] && ident_equal(*r[1], clause);
        });
    };
    schema_snapshot out;
    out.schema.parts = {database};  // as the catalog spells it
    for (const sql_row& row : *columns) {
        const std::string& table = *row[0];
        if (out.tables.empty() || out.tables.back().name != table) {
            table_info t;
            t.name = table;
            t.qualified.parts = {database, table};
            out.tables.push_back(std::move(t));
        }
        column_info c;
        c.name = *row[1];
        c.sql_type = *row[2];
        c.type_name = *row[3];
        c.generated = row[4] == "true";
        c.default_expr = row[5];
        c.pk_position = parse_integer<int>(*row[6]).value_or(-1);
        if (c.type_name == "longtext" && is_json_checked(table, c.name)) {
            c.type_name = "json";
        }
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
    return std::make_unique<mysql_dialect>();
}

retry_class classify_error_number(unsigned int number) noexcept {
    switch (number) {
    // Lost a race with another transaction: deadlock, lock wait timeout, a snapshot conflict.
    case 1213:
    case 1205:
    case 1020: return retry_class::retry_now;
    // The connection or the server is gone or full: connect again.
    case 2002:
    case 2003:
    case 2006:
    case 2013:
    case 2014:  // commands out of sync: results left unread, the session takes nothing more
    case 2055:
    case 1040:
    case 1053:
    case 1927: return retry_class::reconnect;
    // A parent row has not arrived yet (1452), or a child row still references it (1451).
    case 1451:
    case 1452: return retry_class::defer;
    // Tables or columns changed under us.
    case 1146:
    case 1054: return retry_class::schema;
    // A unique value another row still holds (another row order may succeed).
    case 1062:
    case 1586: return retry_class::unique;
    default: return retry_class::fatal;
    }
}

}  // namespace molt::replicator::mysql
