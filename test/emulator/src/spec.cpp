#include "molt/emulator/spec.hpp"

#include <algorithm>
#include <cctype>
#include <functional>

#include <fmt/format.h>

#include "molt/common/ident.hpp"
#include "molt/proto/json.hpp"

namespace molt::emulator {
namespace {

error bad(std::string message) {
    return {errc::invalid_argument, "workload spec: " + message};
}

// "DECIMAL(12,2)" -> 12, 2.
void type_arguments(std::string_view type, int& a, int& b) {
    const size_t open = type.find('(');
    if (open == std::string_view::npos) {
        return;
    }
    const std::string args(type.substr(open + 1, type.find(')') - open - 1));
    a = std::atoi(args.c_str());
    const size_t comma = args.find(',');
    if (comma != std::string::npos) {
        b = std::atoi(args.c_str() + comma + 1);
    }
}

std::string q(std::string_view name, dialect d) {
    return quote_ident(name, d);
}

// The target type for a column, per dialect.
std::string target_type(const column_spec& c, dialect d) {
    using proto::sql_type;
    const bool my = d == dialect::mysql;
    std::string base;
    switch (c.family.base) {
    case sql_type::boolean: base = my ? "BOOLEAN" : "boolean"; break;
    case sql_type::integer: base = my ? "BIGINT" : "bigint"; break;
    case sql_type::float4: base = my ? "FLOAT" : "real"; break;
    case sql_type::float8: base = my ? "DOUBLE" : "double precision"; break;
    case sql_type::decimal:
        base = c.precision > 0
                   ? fmt::format("{}({},{})", my ? "DECIMAL" : "numeric", c.precision, c.scale)
                   : (my ? "DECIMAL(38,10)" : "numeric");
        break;
    case sql_type::string:
        base = my ? (is_long_text(c) ? "LONGTEXT" : "VARCHAR(255)") : "text";
        break;
    case sql_type::bytes: base = my ? "VARBINARY(255)" : "bytea"; break;
    case sql_type::uuid: base = my ? "CHAR(36)" : "uuid"; break;
    case sql_type::date: base = my ? "DATE" : "date"; break;
    case sql_type::time: base = my ? "TIME(6)" : "time"; break;
    case sql_type::timetz: base = my ? "TIME(6)" : "timetz"; break;
    case sql_type::timestamp: base = my ? "DATETIME(6)" : "timestamp"; break;
    case sql_type::timestamptz: base = my ? "TIMESTAMP(6) NULL" : "timestamptz"; break;
    case sql_type::interval: base = my ? "VARCHAR(64)" : "interval"; break;
    case sql_type::inet: base = my ? "VARCHAR(64)" : "inet"; break;
    case sql_type::jsonb: base = my ? "JSON" : "jsonb"; break;
    case sql_type::bit:
        base = fmt::format("{}({})", my ? "BIT" : "bit", std::max(1, c.precision));
        break;
    case sql_type::enumeration: {
        if (my) {
            std::string labels;
            for (const std::string& l : c.labels) {
                labels += (labels.empty() ? "'" : ",'") + l + "'";
            }
            base = "ENUM(" + labels + ")";
        } else {
            base = q(c.type, d);
        }
        break;
    }
    default: base = my ? "VARCHAR(255)" : "text"; break;
    }
    if (c.family.array && !my) {
        base += "[]";
    }
    return base;
}

}  // namespace

bool is_long_text(const column_spec& c) {
    return !c.family.array && ident_equal(c.type, "text");
}

const column_spec* table_spec::column(std::string_view column_name) const {
    for (const column_spec& c : columns) {
        if (ident_equal(c.name, column_name)) {
            return &c;
        }
    }
    return nullptr;
}

const table_spec* workload_spec::table(std::string_view table_name) const {
    for (const table_spec& t : tables) {
        if (ident_equal(t.name, table_name)) {
            return &t;
        }
    }
    return nullptr;
}

result<workload_spec> workload_spec::parse(std::string_view json_text) {
    auto doc = proto::json::parse(json_text);
    if (!doc) {
        return bad(doc.error().message());
    }
    const proto::json* tables = doc->find("tables");
    if (doc->kind() != proto::json::type::object || tables == nullptr ||
        tables->kind() != proto::json::type::array || tables->items().empty()) {
        return bad("expected {\"tables\": [ ... ]} with at least one table");
    }
    workload_spec out;
    for (const proto::json& t : tables->items()) {
        table_spec table;
        const proto::json* name = t.find("name");
        const proto::json* columns = t.find("columns");
        const proto::json* pk = t.find("primary_key");
        if (name == nullptr || name->kind() != proto::json::type::string || columns == nullptr ||
            columns->kind() != proto::json::type::array || pk == nullptr ||
            pk->kind() != proto::json::type::array || pk->items().empty()) {
            return bad("each table needs \"name\", \"columns\" and a non-empty \"primary_key\"");
        }
        table.name = name->text();
        for (const proto::json& c : columns->items()) {
            const proto::json* cname = c.find("name");
            const proto::json* ctype = c.find("type");
            if (cname == nullptr || ctype == nullptr ||
                cname->kind() != proto::json::type::string ||
                ctype->kind() != proto::json::type::string) {
                return bad(
                    fmt::format("table {}: each column needs \"name\" and \"type\"", table.name));
            }
            column_spec col;
            col.name = cname->text();
            col.type = ctype->text();
            col.family = proto::column_type_from_name(col.type);
            type_arguments(col.type, col.precision, col.scale);
            if (const proto::json* unique = c.find("unique")) {
                col.unique = unique->kind() == proto::json::type::boolean && unique->as_bool();
            }
            if (const proto::json* labels = c.find("labels")) {
                for (const proto::json& l : labels->items()) {
                    col.labels.push_back(l.text());
                }
            }
            if (col.family.base == proto::sql_type::enumeration && col.labels.empty()) {
                return bad(
                    fmt::format("table {}: column {} has type \"{}\", which is not a known "
                                "type; an ENUM needs \"labels\"",
                                table.name, col.name, col.type));
            }
            table.columns.push_back(std::move(col));
        }
        for (const proto::json& k : pk->items()) {
            column_spec* col = nullptr;
            for (column_spec& c : table.columns) {
                if (c.name == k.text()) {
                    col = &c;
                }
            }
            if (col == nullptr || col->family.base != proto::sql_type::integer ||
                col->family.array) {
                return bad(
                    fmt::format("table {}: primary key column \"{}\" must be an integer "
                                "column of the table",
                                table.name, k.text()));
            }
            col->primary_key = true;
            table.primary_key.push_back(k.text());
        }
        if (const proto::json* fks = t.find("foreign_keys")) {
            for (const proto::json& fk : fks->items()) {
                const proto::json* column = fk.find("column");
                const proto::json* references = fk.find("references");
                if (column == nullptr || references == nullptr) {
                    return bad(
                        fmt::format("table {}: a foreign key needs \"column\" and "
                                    "\"references\"",
                                    table.name));
                }
                table.foreign_keys.push_back({column->text(), references->text()});
            }
        }
        out.tables.push_back(std::move(table));
    }
    // Check references and order parents first.
    for (const table_spec& t : out.tables) {
        for (const foreign_key_spec& fk : t.foreign_keys) {
            const table_spec* parent = out.table(fk.references);
            const column_spec* column = t.column(fk.column);
            if (parent == nullptr || parent->primary_key.size() != 1 || column == nullptr ||
                column->family.base != proto::sql_type::integer || column->primary_key) {
                return bad(
                    fmt::format("table {}: foreign key {} -> {} must be a non-key integer "
                                "column referencing a table with a one-column primary key",
                                t.name, fk.column, fk.references));
            }
        }
    }
    std::vector<table_spec> ordered;
    std::function<void(const table_spec&, int)> place = [&](const table_spec& t, int depth) {
        if (depth > 32 || std::any_of(ordered.begin(), ordered.end(),
                                      [&](const table_spec& o) { return o.name == t.name; })) {
            return;
        }
        for (const foreign_key_spec& fk : t.foreign_keys) {
            if (fk.references != t.name) {
                place(*out.table(fk.references), depth + 1);
            }
        }
        ordered.push_back(t);
    };
    for (const table_spec& t : out.tables) {
        place(t, 0);
    }
    out.tables = std::move(ordered);
    return out;
}

std::vector<std::string> workload_spec::ddl(dialect d, bool replace) const {
    std::vector<std::string> out;
    if (replace) {
        for (auto it = tables.rbegin(); it != tables.rend(); ++it) {
            out.push_back(fmt::format("DROP TABLE IF EXISTS {}", q(it->name, d)));
        }
        if (d == dialect::postgres) {
            for (const table_spec& t : tables) {
                for (const column_spec& c : t.columns) {
                    if (c.family.base == proto::sql_type::enumeration) {
                        out.push_back(fmt::format("DROP TYPE IF EXISTS {}", q(c.type, d)));
                    }
                }
            }
        }
    }
    for (const table_spec& t : tables) {
        if (d == dialect::postgres) {
            for (const column_spec& c : t.columns) {
                if (c.family.base == proto::sql_type::enumeration) {
                    std::string labels;
                    for (const std::string& l : c.labels) {
                        labels += (labels.empty() ? "'" : ", '") + l + "'";
                    }
                    out.push_back(fmt::format("CREATE TYPE {} AS ENUM ({})", q(c.type, d), labels));
                }
            }
        }
        std::string sql = fmt::format("CREATE TABLE {} (", q(t.name, d));
        for (const column_spec& c : t.columns) {
            sql += fmt::format("{} {}, ", q(c.name, d), target_type(c, d));
        }
        std::string key;
        for (const std::string& k : t.primary_key) {
            key += (key.empty() ? "" : ", ") + q(k, d);
        }
        sql += fmt::format("PRIMARY KEY ({})", key);
        for (const column_spec& c : t.columns) {
            if (c.unique) {
                sql += fmt::format(", UNIQUE ({})", q(c.name, d));
            }
        }
        for (const foreign_key_spec& fk : t.foreign_keys) {
            sql += fmt::format(", FOREIGN KEY ({}) REFERENCES {} ({})", q(fk.column, d),
                               q(fk.references, d), q(table(fk.references)->primary_key[0], d));
        }
        sql += ")";
        if (d == dialect::mysql) {
            sql += " CHARACTER SET utf8mb4";
        }
        out.push_back(std::move(sql));
    }
    return out;
}

workload_spec default_spec() {
    return workload_spec::parse(R"spec({"tables": [
      {"name": "wl_accounts", "primary_key": ["id"], "columns": [
        {"name": "id", "type": "INT8"}, {"name": "owner", "type": "STRING"},
        {"name": "balance", "type": "DECIMAL(18,2)"}, {"name": "rate", "type": "FLOAT8"},
        {"name": "active", "type": "BOOL"}, {"name": "opened", "type": "DATE"},
        {"name": "updated_at", "type": "TIMESTAMPTZ"}, {"name": "seen", "type": "TIMESTAMP"},
        {"name": "token", "type": "UUID"}, {"name": "blob", "type": "BYTES"},
        {"name": "attrs", "type": "JSONB"}]
},
      {"name": "wl_transfers", "primary_key": ["account_id", "seq"], "columns": [
        {"name": "account_id", "type": "INT8"}, {"name": "seq", "type": "INT8"},
        {"name": "amount", "type": "DECIMAL(12,4)"}, {"name": "memo", "type": "STRING"},
        {"name": "payee_id", "type": "INT8"}],
        "foreign_keys": [{"column": "payee_id", "references": "wl_accounts"}]}
    ]
})spec")
        .value();
}

workload_spec rich_spec() {
    return workload_spec::parse(R"spec({"tables": [
      {"name": "wl_rich_users", "primary_key": ["id"], "columns": [
        {"name": "id", "type": "INT8"}, {"name": "email", "type": "STRING", "unique": true},
        {"name": "name", "type": "STRING"}, {"name": "bio", "type": "TEXT"},
        {"name": "doc", "type": "JSONB"}, {"name": "born", "type": "DATE"},
        {"name": "seen_at", "type": "TIMESTAMPTZ"}, {"name": "local_at", "type": "TIMESTAMP"},
        {"name": "balance", "type": "DECIMAL(38,10)"}]
},
      {"name": "wl_rich_notes", "primary_key": ["user_id", "seq"], "columns": [
        {"name": "user_id", "type": "INT8"}, {"name": "seq", "type": "INT8"},
        {"name": "author_id", "type": "INT8"}, {"name": "body", "type": "TEXT"},
        {"name": "meta", "type": "JSONB"}, {"name": "due", "type": "DATE"},
        {"name": "noted_at", "type": "TIMESTAMPTZ"}, {"name": "amount", "type": "DECIMAL(38,10)"}],
        "foreign_keys": [{"column": "author_id", "references": "wl_rich_users"}]}
    ]
})spec")
        .value();
}

}  // namespace molt::emulator
