// The Oracle dialect: MERGE and DELETE written for one row and run with parameter arrays,
// values as text for Oracle's conversion functions, the catalog through ALL_TAB_COLS and
// ALL_CONSTRAINTS, errors by ORA number.
#include <algorithm>

#include <fmt/format.h>

#include "molt/common/integer_text.hpp"
#include "molt/common/log.hpp"
#include "molt/common/odbc_setup.hpp"
#include "molt/proto/batch.hpp"
#include "molt/replicator/dialect/oracle.hpp"

namespace molt::replicator::oracle {
namespace {

std::string q(std::string_view name) {
    return quote_ident(name, dialect::oracle);
}

bool one_of(std::string_view v, std::initializer_list<std::string_view> set) {
    return std::find(set.begin(), set.end(), v) != set.end();
}

bool is_character(const column_info& c) {
    return one_of(c.type_name,
                  {"varchar2", "varchar", "char", "nvarchar2", "nchar", "clob", "nclob", "long"});
}
bool is_number(const column_info& c) {
    return one_of(c.type_name, {"number", "float", "integer", "int", "smallint", "decimal"});
}
bool is_binary_float(const column_info& c) {
    return c.type_name == "binary_double" || c.type_name == "binary_float";
}
bool is_zoned(const column_info& c) {
    return c.type_name == "timestamp with time zone" ||
           c.type_name == "timestamp with local time zone";
}

// The SQL expression for one bound value of a column. Character values are bound as they are:
// a CAST to VARCHAR2(n) could cut a value that the column then stores, where the column itself
// refuses one that is too long (ORA-12899). Parameters are ODBC's own ?: SOCI rewrites each
// :name it finds outside single quotes, and binds by position anyway.
std::string placeholder(const column_info& c) {
    // By base type: the function that reads the bound text.
    static constexpr std::pair<std::string_view, std::string_view> readers[] = {
        {"date", "TO_DATE(?, 'YYYY-MM-DD HH24:MI:SS')"},
        {"timestamp", "TO_TIMESTAMP(?, 'YYYY-MM-DD HH24:MI:SS.FF9')"},
        {"timestamp with time zone", "TO_TIMESTAMP_TZ(?, 'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM')"},
        {"timestamp with local time zone",
         "TO_TIMESTAMP_TZ(?, 'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM')"},
        {"interval day to second", "TO_DSINTERVAL(?)"},
        {"interval year to month", "TO_YMINTERVAL(?)"},
        {"raw", "HEXTORAW(?)"},
        {"blob", "TO_BLOB(HEXTORAW(?))"},
        {"clob", "TO_CLOB(?)"},
        {"nclob", "TO_NCLOB(?)"},
        {"binary_double", "TO_BINARY_DOUBLE(?)"},
        {"binary_float", "TO_BINARY_FLOAT(?)"},
    };
    for (const auto& [type, reader] : readers) {
        if (c.type_name == type) {
            return std::string(reader);
        }
    }
    if (is_number(c)) {
        return fmt::format("CAST(? AS {})", c.sql_type);
    }
    return "?";
}

error bad(const column_info& c, const error& why) {
    return why.with_context(fmt::format("column \"{}\" ({})", c.name, c.sql_type));
}
error bad(const column_info& c, std::string_view value, std::string_view why) {
    return bad(c, error{errc::invalid_argument,
                        fmt::format("cannot store \"{}\": {}", value.substr(0, 64), why)});
}

result<std::optional<std::string>> some(result<std::string> r, const column_info& c) {
    if (!r) {
        return bad(c, r.error());
    }
    return std::optional<std::string>(std::move(*r));
}

// The ORA number of a failure: from the message, else from the native code the ODBC session
// writes after it ("native error N").
int ora_number_of(const error& e) {
    const std::string& m = e.message();
    if (const int n = odbc_setup::ora_number(m); n != 0) {
        return n;
    }
    constexpr std::string_view marker = "native error ";
    const size_t at = m.rfind(marker);
    if (at == std::string::npos) {
        return 0;
    }
    size_t end = at + marker.size();
    while (end < m.size() && m[end] >= '0' && m[end] <= '9') {
        ++end;
    }
    return parse_integer<int>(
               std::string_view(m).substr(at + marker.size(), end - at - marker.size()))
        .value_or(0);
}

class oracle_dialect final : public target_dialect {
public:
    molt::dialect kind() const noexcept override { return dialect::oracle; }
    size_t schema_segments() const noexcept override { return 1; }
    size_t max_parameters() const noexcept override { return 65535; }
    std::string no_foreign_key_checks_sql() const override {
        return "ALTER SESSION SET CONSTRAINTS = DEFERRED";
    }
    std::string no_foreign_key_checks_hint() const override {
        return "Oracle defers only constraints declared DEFERRABLE (to the commit); others are "
               "still checked at each statement";
    }

    bool binds_columns(const table_info& /*t*/,
                       std::span<const size_t> /*columns*/) const override {
        return true;
    }
    bool binds_arrays() const noexcept override { return true; }
    bool releases_savepoints() const noexcept override { return false; }
    sql_params pack_columns(sql_params row_major, size_t columns) const override {
        if (columns == 0) {
            return row_major;
        }
        const size_t rows = row_major.size() / columns;
        sql_params out(row_major.size());
        for (size_t r = 0; r < rows; ++r) {
            for (size_t c = 0; c < columns; ++c) {
                out[c * rows + r] = std::move(row_major[r * columns + c]);
            }
        }
        return out;
    }

    std::string upsert_sql(const table_info& t, std::span<const size_t> columns,
                           size_t /*rows*/) const override {
        const std::string table = t.qualified.quoted(dialect::oracle);
        std::string names;
        std::string values;
        std::string inserted;
        std::string on;
        std::string set;
        for (size_t i = 0; i < columns.size(); ++i) {
            const column_info& c = t.columns[columns[i]];
            const std::string name = q(c.name);
            names += (i == 0 ? "" : ",") + name;
            values += (i == 0 ? "" : ", ") + placeholder(c);
            inserted += (i == 0 ? "" : ", ") + fmt::format("x.{}", name);
            if (c.pk_position >= 0) {
                on += fmt::format("{}{}.{} = x.{}", on.empty() ? "" : " AND ", table, name, name);
            } else {
                // Never a key column: Oracle refuses to update the columns MERGE joins on.
                set += fmt::format("{}{} = x.{}", set.empty() ? "" : ", ", name, name);
            }
        }
        std::string sql = fmt::format(
            "MERGE INTO {} USING (\nWITH data ({}) AS (\nSELECT {} FROM DUAL\n)\nSELECT * FROM "
            "data) x ON ({})\nWHEN NOT MATCHED THEN INSERT ({}) VALUES ({})",
            table, names, values, on, names, inserted);
        if (!set.empty()) {
            sql += "\nWHEN MATCHED THEN UPDATE SET " + set;
        }
        return sql;
    }

    std::string delete_sql(const table_info& t, size_t /*rows*/) const override {
        std::string names;
        std::string values;
        for (size_t k = 0; k < t.pk_count; ++k) {
            names += (k == 0 ? "" : ",") + q(t.columns[k].name);
            values += (k == 0 ? "" : ",") + placeholder(t.columns[k]);
        }
        return fmt::format("DELETE FROM {} WHERE ({})IN(({}))", t.qualified.quoted(dialect::oracle),
                           names, values);
    }

    result<std::optional<std::string>> bind_value(const column_info& c,
                                                  const proto::value& v) const override {
        using kind = proto::value_kind;
        const std::string_view text = v.text;
        const std::string& t = c.type_name;
        if (t == "json") {
            return proto::json_document(v);
        }
        switch (v.kind) {
        case kind::null: return std::optional<std::string>();
        case kind::boolean:
            if (is_number(c) || is_binary_float(c)) {
                return std::optional<std::string>(text == "true" ? "1" : "0");
            }
            if (t == "boolean") {
                return std::optional<std::string>(text == "true" ? "TRUE" : "FALSE");
            }
            if (is_character(c)) {
                return std::optional<std::string>(std::string(text));
            }
            return bad(c, text, "a boolean fits NUMBER, BOOLEAN and character columns only");
        case kind::number:
            if (is_number(c)) {
                return some(plain_number(text), c);
            }
            if (is_binary_float(c) || is_character(c)) {
                return std::optional<std::string>(std::string(text));
            }
            return bad(c, text, "a number fits number and character columns only");
        case kind::json:
            if (is_character(c)) {
                return std::optional<std::string>(std::string(text));
            }
            return bad(c, text,
                       "Oracle has no array or object type here: use a JSON, CLOB or VARCHAR2 "
                       "column");
        case kind::string: break;
        }
        if (t == "date") {
            return some(date_text(text), c);
        }
        if (t == "timestamp") {
            return some(timestamp_text(text), c);
        }
        if (is_zoned(c)) {
            return some(timestamp_tz_text(text), c);
        }
        if (t == "interval day to second") {
            return some(interval_ds_text(text), c);
        }
        if (t == "interval year to month") {
            return some(interval_ym_text(text), c);
        }
        if (t == "raw") {
            return some(raw_hex(text, true), c);
        }
        if (t == "blob") {
            return some(raw_hex(text, false), c);
        }
        if (text == "NaN" || text == "Infinity" || text == "-Infinity") {
            if (is_binary_float(c)) {
                return std::optional<std::string>(text == "NaN"        ? "NaN"
                                                  : text == "Infinity" ? "INF"
                                                                       : "-INF");
            }
            if (is_number(c)) {
                return bad(c, text,
                           "Oracle NUMBER cannot store NaN or infinite numbers (BINARY_DOUBLE "
                           "can)");
            }
        }
        if (is_number(c)) {
            return some(plain_number(text), c);
        }
        return std::optional<std::string>(std::string(text));
    }

    progress_statements progress_sql(const qualified_name& schema,
                                     std::string_view table) const override {
        progress_statements s;
        s.table = q(schema.parts.back()) + "." + q(table);
        // No CREATE TABLE IF NOT EXISTS before 23ai: ORA-00955 (name already used) is ignored.
        std::string quoted_table;
        for (const char c : s.table) {
            quoted_table += c;
            if (c == '\'') {
                quoted_table += '\'';
            }
        }
        s.create = fmt::format(
            "BEGIN EXECUTE IMMEDIATE 'CREATE TABLE {} (first_nanos NUMBER(19) NOT NULL, "
            "first_logical NUMBER(10) NOT NULL, last_nanos NUMBER(19) NOT NULL, last_logical "
            "NUMBER(10) NOT NULL, applied_at TIMESTAMP(6) DEFAULT SYSTIMESTAMP NOT NULL, PRIMARY "
            "KEY (last_nanos, last_logical))'; EXCEPTION WHEN OTHERS THEN IF SQLCODE <> -955 "
            "THEN RAISE; END IF; END;",
            quoted_table);
        s.insert = fmt::format(
            "INSERT INTO {} (first_nanos, first_logical, last_nanos, last_logical) VALUES (?, ?, "
            "?, ?)",
            s.table);
        s.record = s.insert;
        s.present =
            fmt::format("SELECT 1 FROM {} WHERE last_nanos = ? AND last_logical = ?", s.table);
        // As text: ODBC reads NUMBER as a double, which cannot hold 19 digits.
        s.select = fmt::format(
            "SELECT TO_CHAR(first_nanos), TO_CHAR(first_logical), TO_CHAR(last_nanos), "
            "TO_CHAR(last_logical) FROM {} ORDER BY last_nanos, last_logical",
            s.table);
        s.clear = fmt::format("DELETE FROM {}", s.table);
        return s;
    }

    std::string dlq_ddl(const qualified_name& schema, std::string_view table) const override {
        return fmt::format(
            "CREATE TABLE {}.{} (event NUMBER GENERATED ALWAYS AS IDENTITY PRIMARY KEY, dlq_name "
            "VARCHAR2(256) NOT NULL, source_nanos NUMBER(19) NOT NULL, source_logical NUMBER(10) "
            "NOT NULL, data_after CLOB NOT NULL, data_before CLOB NOT NULL)",
            q(schema.parts.back()), q(table));
    }

    std::string dlq_insert_sql(const table_info& dlq) const override {
        return fmt::format(
            "INSERT INTO {} (dlq_name, source_nanos, source_logical, data_after, data_before) "
            "VALUES (?, ?, ?, TO_CLOB(?), TO_CLOB(?))",
            dlq.qualified.quoted(dialect::oracle));
    }

    bool row_data_error(const error& e) const override {
        return ora_row_data_error(ora_number_of(e));
    }

    result<schema_snapshot> introspect(target_session& s,
                                       const qualified_name& schema) const override;
};

result<schema_snapshot> oracle_dialect::introspect(target_session& s,
                                                   const qualified_name& schema) const {
    if (schema.parts.size() != 1) {
        return error{errc::not_found,
                     fmt::format("unknown schema \"{}\": Oracle targets are named /<SCHEMA>",
                                 schema.to_string())};
    }
    // The owner as the catalog spells it: the path's spelling if it exists, else the one owner
    // that matches ignoring case (the docs write /MIGRATION_SCHEMA; /migration_schema works too).
    const auto& sql = introspection_sql();
    auto owners = s.query(sql[0], {schema.parts[0]});
    if (!owners) {
        return std::move(owners).error();
    }
    std::optional<std::string> owner;
    for (const sql_row& row : *owners) {
        if (row[0] == schema.parts[0] || owners->size() == 1) {
            owner = row[0];
        }
    }
    if (!owner) {
        return error{
            errc::not_found,
            fmt::format("unknown schema \"{}\": no tables of that owner are visible to "
                        "this user{}",
                        schema.to_string(),
                        owners->empty() ? "" : " (several owners match it ignoring case)")};
    }
    auto columns = s.query(sql[1], {*owner});
    if (!columns) {
        return std::move(columns).error();
    }
    // Foreign keys within the owner (a parent in another schema is not ordered against).
    auto fks = s.query(sql[2], {*owner, *owner});
    if (!fks) {
        return std::move(fks).error();
    }
    return snapshot_from_catalog(*owner, *columns, *fks);
}

}  // namespace

const std::vector<std::string>& introspection_sql() {
    static const std::vector<std::string> statements = {
        // The owner, matched ignoring case.
        "SELECT DISTINCT OWNER FROM ALL_TABLES WHERE UPPER(OWNER) = UPPER(?) AND DROPPED = 'NO'",
        // Every column of the owner's tables.
        "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, TO_CHAR(c.DATA_LENGTH), "
        "TO_CHAR(c.DATA_PRECISION), TO_CHAR(c.DATA_SCALE), TO_CHAR(c.CHAR_LENGTH), c.CHAR_USED, "
        "CASE WHEN c.HIDDEN_COLUMN = 'YES' OR c.VIRTUAL_COLUMN = 'YES' OR "
        "i.GENERATION_TYPE = 'ALWAYS' THEN 't' ELSE 'f' END, TO_CHAR(k.POSITION) "
        "FROM ALL_TAB_COLS c "
        "JOIN ALL_TABLES t ON t.OWNER = c.OWNER AND t.TABLE_NAME = c.TABLE_NAME AND "
        "t.DROPPED = 'NO' "
        "LEFT JOIN ALL_CONSTRAINTS p ON p.OWNER = c.OWNER AND p.TABLE_NAME = c.TABLE_NAME AND "
        "p.CONSTRAINT_TYPE = 'P' "
        "LEFT JOIN ALL_CONS_COLUMNS k ON k.OWNER = p.OWNER AND k.CONSTRAINT_NAME = "
        "p.CONSTRAINT_NAME AND k.TABLE_NAME = c.TABLE_NAME AND k.COLUMN_NAME = c.COLUMN_NAME "
        "LEFT JOIN ALL_TAB_IDENTITY_COLS i ON i.OWNER = c.OWNER AND i.TABLE_NAME = c.TABLE_NAME "
        "AND i.COLUMN_NAME = c.COLUMN_NAME "
        "WHERE c.OWNER = ? ORDER BY c.TABLE_NAME, c.COLUMN_ID NULLS LAST, c.COLUMN_NAME",
        // Foreign keys within the owner.
        "SELECT DISTINCT r.TABLE_NAME, p.TABLE_NAME FROM ALL_CONSTRAINTS r "
        "JOIN ALL_CONSTRAINTS p ON p.OWNER = r.R_OWNER AND p.CONSTRAINT_NAME = "
        "r.R_CONSTRAINT_NAME "
        "WHERE r.OWNER = ? AND r.CONSTRAINT_TYPE = 'R' AND p.OWNER = ? AND "
        "p.CONSTRAINT_TYPE IN ('P', 'U') AND r.TABLE_NAME <> p.TABLE_NAME",
    };
    return statements;
}

std::unique_ptr<target_dialect> make_dialect() {
    return std::make_unique<oracle_dialect>();
}

result<schema_snapshot> snapshot_from_catalog(const std::string& owner,
                                              const std::vector<sql_row>& columns,
                                              const std::vector<sql_row>& fks) {
    auto number = [](const std::optional<std::string>& v) -> std::optional<long> {
        return v ? parse_integer<long>(*v) : std::nullopt;
    };
    // SOCI's ODBC layer scans statements for :name placeholders outside single quotes: a name
    // holding ' or : would be taken for a quote or a placeholder (and shift the quotes after
    // it). Such a table is left out, with a warning; its rows are then refused as an unknown
    // table.
    auto unsafe = [](std::string_view name) {
        return name.find_first_of("':") != std::string_view::npos;
    };
    if (unsafe(owner)) {
        return error{errc::invalid_argument,
                     fmt::format("schema \"{}\": Oracle names holding ' or : cannot be written "
                                 "through the ODBC layer",
                                 log::sanitize(owner))};
    }
    std::vector<std::string> left_out;
    for (const sql_row& row : columns) {
        if (row.size() >= 2 && row[0] && row[1] && (unsafe(*row[0]) || unsafe(*row[1])) &&
            std::find(left_out.begin(), left_out.end(), *row[0]) == left_out.end()) {
            left_out.push_back(*row[0]);
            log::warn()
                .str("table", log::sanitize(owner + "." + *row[0]))
                .msg(
                    "left out: its name or a column's holds ' or :, which the ODBC layer "
                    "cannot pass in SQL text; rename it to replicate it");
        }
    }
    schema_snapshot out;
    out.schema.parts = {owner};
    for (const sql_row& row : columns) {
        if (row.size() < 10 || !row[0] || !row[1] || !row[2]) {
            return error{errc::database_error, "unexpected row from ALL_TAB_COLS"};
        }
        const std::string& table = *row[0];
        if (std::find(left_out.begin(), left_out.end(), table) != left_out.end()) {
            continue;
        }
        if (out.tables.empty() || out.tables.back().name != table) {
            table_info t;
            t.name = table;
            t.qualified.parts = {owner, table};
            out.tables.push_back(std::move(t));
        }
        catalog_column cc;
        cc.data_type = *row[2];
        cc.data_length = number(row[3]);
        cc.data_precision = number(row[4]);
        cc.data_scale = number(row[5]);
        cc.char_length = number(row[6]);
        cc.char_used = row[7].value_or("");
        column_info c;
        c.name = *row[1];
        c.sql_type = type_string(cc);
        c.type_name = base_type(cc.data_type);
        c.generated = row[8] == "t";
        c.pk_position = row[9] ? static_cast<int>(number(row[9]).value_or(0)) - 1 : -1;
        out.tables.back().columns.push_back(std::move(c));
    }
    for (table_info& t : out.tables) {
        order_primary_key_first(t);
    }
    for (const sql_row& row : fks) {
        for (table_info& t : out.tables) {
            if (row.size() >= 2 && row[0] == t.name && row[1] && *row[1] != t.name) {
                t.parents.push_back(*row[1]);
            }
        }
    }
    out.finish();
    return out;
}

}  // namespace molt::replicator::oracle
