#include "molt/fetch/catalog.hpp"

#include <regex.h>

#include <algorithm>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "molt/common/log.hpp"

namespace molt::fetch {
namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// A compiled, anchored POSIX ERE (validity was checked with the flags).
class name_regex {
public:
    name_regex(const std::string& pattern, bool case_sensitive) {
        const std::string anchored = "^(" + pattern + ")$";
        ok_ = regcomp(&re_, anchored.c_str(),
                      REG_EXTENDED | REG_NOSUB | (case_sensitive ? 0 : REG_ICASE)) == 0;
    }
    name_regex(const name_regex&) = delete;
    name_regex& operator=(const name_regex&) = delete;
    ~name_regex() {
        if (ok_) {
            regfree(&re_);
        }
    }
    [[nodiscard]] bool ok() const { return ok_; }
    [[nodiscard]] bool matches(const std::string& name) const {
        return ok_ && regexec(&re_, name.c_str(), 0, nullptr, 0) == 0;
    }

private:
    regex_t re_{};
    bool ok_ = false;
};

std::vector<table_info> rows_to_tables(const sql_rows& rows) {
    std::vector<table_info> out;
    for (const auto& row : rows.rows) {
        const std::string schema = row[0].value_or("");
        const std::string name = row[1].value_or("");
        if (out.empty() || out.back().schema != schema || out.back().name != name) {
            out.push_back(table_info{schema, name, {}});
        }
        if (row[2]) {
            out.back().primary_key.push_back(*row[2]);
        }
    }
    return out;
}

std::string key_text(const std::vector<std::string>& key) {
    return key.empty() ? "none" : fmt::format("{}", fmt::join(key, ", "));
}

// Oracle: privileges come from grants to the user, its roles and PUBLIC, and from ANY
// privileges. Each statement is parsed without being run (DBMS_SQL.PARSE checks rights and
// raises ORA-01031 or ORA-00942, and takes no lock and fires no trigger). The user's own tables
// need no grant. SELECT, INSERT and UPDATE are required; DELETE only warned of: MOLT's failback
// guide grants SELECT, INSERT, UPDATE and FLASHBACK, yet the changefeed's deletes must be
// applied (each would fail with ORA-01031).
std::string oracle_parse_only(const std::string& sql) {
    return fmt::format(
        "DECLARE c INTEGER := DBMS_SQL.OPEN_CURSOR; BEGIN DBMS_SQL.PARSE(c, {}, DBMS_SQL.NATIVE); "
        "DBMS_SQL.CLOSE_CURSOR(c); EXCEPTION WHEN OTHERS THEN IF DBMS_SQL.IS_OPEN(c) THEN "
        "DBMS_SQL.CLOSE_CURSOR(c); END IF; RAISE; END;",
        quote_literal(dialect::oracle, sql));
}

// The privileges of PRIVILEGES (SELECT, INSERT, UPDATE, DELETE) that `table` lacks, by parsing
// a statement of each kind; key_columns name what the INSERT and UPDATE write (never a virtual
// column).
result<std::vector<std::string>> oracle_missing(sql_client& target, const std::string& table,
                                                const std::vector<std::string>& key_columns,
                                                const std::vector<std::string>& privileges) {
    const dialect d = dialect::oracle;
    std::vector<std::string> keys;
    for (const std::string& k : key_columns) {
        keys.push_back(quote_ident(d, k));
    }
    const std::string list = fmt::format("{}", fmt::join(keys, ", "));
    std::vector<std::string> missing;
    for (const std::string& privilege : privileges) {
        std::string sql;
        if (privilege == "SELECT") {
            sql = fmt::format("SELECT 1 FROM {} WHERE 1 = 0", table);
        } else if (privilege == "INSERT") {
            sql = fmt::format("INSERT INTO {0} ({1}) SELECT {1} FROM {0} WHERE 1 = 0", table, list);
        } else if (privilege == "UPDATE") {
            sql =
                fmt::format("UPDATE {} SET {} = {} WHERE 1 = 0", table, keys.front(), keys.front());
        } else {
            sql = fmt::format("DELETE FROM {} WHERE 1 = 0", table);
        }
        if (auto r = target.query(oracle_parse_only(sql)); !r) {
            // 1031: insufficient privileges; 942: no such table (no privilege at all).
            if (target.last_error_code() == "1031" || target.last_error_code() == "942") {
                missing.push_back(privilege);
            } else {
                return std::move(r).error();
            }
        }
    }
    return missing;
}

result<std::vector<std::string>> check_oracle_privileges(sql_client& target,
                                                         const std::vector<table_pair>& tables,
                                                         bool needs_create) {
    const dialect d = dialect::oracle;
    // The user as Oracle knows it (an unquoted name in the URL logs in upper case), for GRANTs.
    auto who = target.query("SELECT USER FROM DUAL");
    if (!who) {
        return std::move(who).error();
    }
    const std::string user = who->rows.at(0).at(0).value_or("");
    const std::string grantee = quote_ident(d, user);
    std::vector<std::string> problems;
    std::vector<std::string> schemas;
    for (const table_pair& p : tables) {
        const std::string t = quote_ident(d, p.target.schema) + "." + quote_ident(d, p.target.name);
        auto missing = oracle_missing(target, t, p.target.primary_key,
                                      {"SELECT", "INSERT", "UPDATE", "DELETE"});
        if (!missing) {
            return std::move(missing).error();
        }
        if (!missing->empty() && missing->back() == "DELETE") {
            missing->pop_back();
            log::warn()
                .str("table", p.target.display())
                .msg(fmt::format("--target: user {} cannot DELETE on {}: deletes made on "
                                 "CockroachDB will fail to apply there; run GRANT DELETE ON "
                                 "{} TO {};",
                                 user, p.target.display(), t, grantee));
        }
        if (!missing->empty()) {
            const std::string list = fmt::format("{}", fmt::join(*missing, ", "));
            problems.push_back(
                fmt::format("--target: user {} cannot {} on {}: run GRANT {} ON "
                            "{} TO {};",
                            user, list, p.target.display(), list, t, grantee));
        }
        if (std::find(schemas.begin(), schemas.end(), p.target.schema) == schemas.end()) {
            schemas.push_back(p.target.schema);
        }
    }
    if (!needs_create) {
        return problems;
    }
    // The consistent mode's progress table: the replicator reads, inserts and deletes its rows
    // and creates it when it is missing. In another user's schema a table it created would be
    // that user's, with no rights for the replicator's user: there, the owner creates it.
    auto can_create = target.query(
        "SELECT COUNT(*) FROM SESSION_PRIVS WHERE PRIVILEGE IN ('CREATE TABLE', 'CREATE ANY "
        "TABLE')");
    if (!can_create) {
        return std::move(can_create).error();
    }
    const bool create_own = can_create->rows.at(0).at(0).value_or("0") != "0";
    for (const std::string& schema : schemas) {
        const std::string table = quote_ident(d, schema) + ".\"_replicator_progress\"";
        auto there = target.query(
            fmt::format("SELECT COUNT(*) FROM ALL_TABLES WHERE OWNER = {} AND TABLE_NAME = "
                        "'_replicator_progress'",
                        quote_literal(d, schema)));
        if (!there) {
            return std::move(there).error();
        }
        if (there->rows.at(0).at(0).value_or("0") != "0") {
            auto missing = oracle_missing(target, table, {"last_nanos", "last_logical"},
                                          {"SELECT", "INSERT", "DELETE"});
            if (!missing) {
                return std::move(missing).error();
            }
            if (!missing->empty()) {
                const std::string list = fmt::format("{}", fmt::join(*missing, ", "));
                problems.push_back(fmt::format(
                    "--target: user {} cannot {} on the replicator's progress table {}: run "
                    "GRANT {} ON {} TO {};",
                    user, list, table, list, table, grantee));
            }
            continue;
        }
        if (schema == user && create_own) {
            continue;  // the replicator creates it in the user's own schema
        }
        problems.push_back(fmt::format(
            "--target: the replicator's progress table {} is missing, and user {} cannot create "
            "it {}: have {} run CREATE TABLE {} (first_nanos NUMBER(19) NOT NULL, first_logical "
            "NUMBER(10) NOT NULL, last_nanos NUMBER(19) NOT NULL, last_logical NUMBER(10) NOT "
            "NULL, applied_at TIMESTAMP(6) DEFAULT SYSTIMESTAMP NOT NULL, PRIMARY KEY "
            "(last_nanos, last_logical)); GRANT SELECT, INSERT, DELETE ON {} TO {};",
            table, user,
            schema == user ? "(no CREATE TABLE privilege)"
                           : "for use (a table made in another user's schema is that user's)",
            quote_ident(d, schema), table, table, grantee));
    }
    return problems;
}

}  // namespace

result<std::vector<table_info>> list_tables(sql_client& db, bool is_source) {
    std::string sql;
    if (db.dialect() == dialect::oracle) {
        // Tables of every user schema (not Oracle's own), with their primary key columns.
        sql =
            "SELECT t.OWNER, t.TABLE_NAME, k.COLUMN_NAME FROM ALL_TABLES t "
            "LEFT JOIN ALL_CONSTRAINTS p ON p.OWNER = t.OWNER AND p.TABLE_NAME = t.TABLE_NAME "
            "AND p.CONSTRAINT_TYPE = 'P' "
            "LEFT JOIN ALL_CONS_COLUMNS k ON k.OWNER = p.OWNER AND k.CONSTRAINT_NAME = "
            "p.CONSTRAINT_NAME AND k.TABLE_NAME = t.TABLE_NAME "
            "WHERE t.DROPPED = 'NO' AND t.NESTED = 'NO' AND t.SECONDARY = 'N' AND t.OWNER IN "
            "(SELECT USERNAME FROM ALL_USERS WHERE ORACLE_MAINTAINED = 'N') "
            "ORDER BY t.OWNER, t.TABLE_NAME, k.POSITION";
    } else if (db.dialect() == dialect::mysql) {
        sql =
            "SELECT t.TABLE_SCHEMA, t.TABLE_NAME, k.COLUMN_NAME FROM information_schema.TABLES t "
            "LEFT JOIN information_schema.KEY_COLUMN_USAGE k ON k.TABLE_SCHEMA = t.TABLE_SCHEMA "
            "AND k.TABLE_NAME = t.TABLE_NAME AND k.CONSTRAINT_NAME = 'PRIMARY' "
            "WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE' "
            "ORDER BY t.TABLE_NAME, k.ORDINAL_POSITION";
    } else if (is_source) {
        sql =
            "SELECT t.table_schema, t.table_name, k.column_name FROM information_schema.tables t "
            "LEFT JOIN information_schema.table_constraints c ON c.table_catalog = "
            "t.table_catalog AND c.table_schema = t.table_schema AND c.table_name = t.table_name "
            "AND c.constraint_type = 'PRIMARY KEY' "
            "LEFT JOIN information_schema.key_column_usage k ON k.constraint_catalog = "
            "c.constraint_catalog AND k.constraint_schema = c.constraint_schema AND "
            "k.constraint_name = c.constraint_name AND k.table_name = t.table_name "
            "WHERE t.table_type = 'BASE TABLE' AND t.table_catalog = current_database() AND "
            "t.table_schema NOT IN ('pg_catalog', 'information_schema', 'crdb_internal', "
            "'pg_extension') "
            "ORDER BY t.table_schema, t.table_name, k.ordinal_position";
    } else {
        sql =
            "SELECT n.nspname, c.relname, a.attname FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary "
            "LEFT JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true "
            "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
            "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN "
            "('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' "
            "ORDER BY n.nspname, c.relname, k.ord";
    }
    auto rows = db.query(sql);
    if (!rows) {
        return std::move(rows).error();
    }
    return rows_to_tables(*rows);
}

result<table_selection> select_tables(const std::vector<table_info>& source,
                                      const std::vector<table_info>& target,
                                      const table_filters& filters, dialect target_dialect) {
    const name_regex schema_re(filters.schema, filters.case_sensitive);
    const name_regex table_re(filters.table, filters.case_sensitive);
    std::unique_ptr<name_regex> exclusion_re;
    if (!filters.exclusion.empty()) {
        exclusion_re = std::make_unique<name_regex>(filters.exclusion, filters.case_sensitive);
    }
    if (!schema_re.ok() || !table_re.ok() || (exclusion_re && !exclusion_re->ok())) {
        return error{errc::invalid_argument, "a table filter is not a POSIX regular expression"};
    }
    const bool mysql = target_dialect == dialect::mysql;
    auto selected = [&](const table_info& t, bool apply_schema) {
        return (!apply_schema || schema_re.matches(t.schema)) && table_re.matches(t.name) &&
               !(exclusion_re && exclusion_re->matches(t.name));
    };
    // Oracle keeps unquoted names in upper case, CockroachDB in lower case (MOLT's schema
    // conversion lower-cases them): Oracle tables are matched ignoring case, whatever
    // --case-sensitive says.
    const bool fold_case = !filters.case_sensitive || target_dialect == dialect::oracle;
    auto fold = [&](const std::string& s) { return fold_case ? lower(s) : s; };
    // MySQL has no schemas: the target's tables are the connected database's, by name.
    auto target_key = [&](const std::string& schema, const std::string& name) {
        return mysql ? fold(name) : fold(schema) + "\x1f" + fold(name);
    };
    std::map<std::string, const table_info*> targets;
    for (const table_info& t : target) {
        targets.emplace(target_key(t.schema, t.name), &t);
    }

    table_selection out;
    std::map<std::string, std::string> claimed;  // target key -> the source table using it
    for (const table_info& s : source) {
        if (!selected(s, true)) {
            continue;
        }
        const auto it = targets.find(target_key(s.schema, s.name));
        if (it == targets.end()) {
            out.skipped.push_back(fmt::format(
                "{}: missing on the target{} (or the target user cannot see it)", s.display(),
                mysql ? "" : fmt::format(" (no table {} there)", s.display())));
            continue;
        }
        const table_info& t = *it->second;
        if (s.primary_key.empty()) {
            out.skipped.push_back(fmt::format("{}: no primary key on the source", s.display()));
            continue;
        }
        std::vector<std::string> sk;
        std::vector<std::string> tk;
        for (const auto& c : s.primary_key) {
            sk.push_back(fold(c));
        }
        for (const auto& c : t.primary_key) {
            tk.push_back(fold(c));
        }
        if (sk != tk) {
            out.skipped.push_back(fmt::format(
                "{}: primary keys differ (source {}: {}; target {}: {})", s.display(), s.display(),
                key_text(s.primary_key), t.display(), key_text(t.primary_key)));
            continue;
        }
        if (auto [c, fresh] = claimed.emplace(it->first, s.display()); !fresh) {
            return error{errc::invalid_argument,
                         fmt::format("source tables {} and {} would both fail back into {}: "
                                     "narrow --schema-filter to one source schema",
                                     c->second, s.display(), t.display())};
        }
        out.tables.push_back(table_pair{s, t});
    }
    std::sort(out.tables.begin(), out.tables.end(), [](const table_pair& a, const table_pair& b) {
        return std::tie(a.source.schema, a.source.name) < std::tie(b.source.schema, b.source.name);
    });
    return out;
}

result<std::vector<std::string>> check_target_privileges(sql_client& target,
                                                         const std::string& user,
                                                         const std::vector<table_pair>& tables,
                                                         bool needs_create) {
    const dialect d = target.dialect();
    std::vector<std::string> problems;
    if (d == dialect::postgres) {
        std::vector<std::string> schemas;
        for (const table_pair& p : tables) {
            const std::string q = quote_literal(
                d, quote_ident(d, p.target.schema) + "." + quote_ident(d, p.target.name));
            auto rows = target.query(fmt::format(
                "SELECT has_table_privilege({0}, 'SELECT'), has_table_privilege({0}, 'INSERT'), "
                "has_table_privilege({0}, 'UPDATE'), has_table_privilege({0}, 'DELETE')",
                q));
            if (!rows) {
                return std::move(rows).error();
            }
            std::vector<std::string> missing;
            const char* names[] = {"SELECT", "INSERT", "UPDATE", "DELETE"};
            for (size_t i = 0; i < 4; ++i) {
                if (rows->rows.at(0).at(i).value_or("f") != "t") {
                    missing.emplace_back(names[i]);
                }
            }
            if (!missing.empty()) {
                const std::string list = fmt::format("{}", fmt::join(missing, ", "));
                problems.push_back(fmt::format(
                    "--target: user {} cannot {} on {}: run GRANT {} ON {}.{} TO {};", user, list,
                    p.target.display(), list, quote_ident(d, p.target.schema),
                    quote_ident(d, p.target.name), quote_ident(d, user)));
            }
            if (std::find(schemas.begin(), schemas.end(), p.target.schema) == schemas.end()) {
                schemas.push_back(p.target.schema);
            }
        }
        for (const std::string& schema : schemas) {
            const std::string s = quote_literal(d, schema);
            auto rows = target.query(fmt::format(
                "SELECT has_schema_privilege({0}, 'USAGE'), has_schema_privilege({0}, 'CREATE'), "
                "EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON "
                "n.oid = c.relnamespace WHERE n.nspname = {1} AND c.relname = "
                "'_replicator_progress')",
                s, quote_literal(d, schema)));
            if (!rows) {
                return std::move(rows).error();
            }
            const auto& row = rows->rows.at(0);
            if (row.at(0).value_or("f") != "t") {
                problems.push_back(fmt::format(
                    "--target: user {} cannot use schema {}: run GRANT USAGE ON SCHEMA {} TO {};",
                    user, schema, quote_ident(d, schema), quote_ident(d, user)));
            } else if (needs_create && row.at(1).value_or("f") != "t" &&
                       row.at(2).value_or("f") != "t") {
                problems.push_back(fmt::format(
                    "--target: user {} cannot create the replicator's progress table "
                    "_replicator_progress in schema {}: run GRANT CREATE ON SCHEMA {} TO {}; (or "
                    "create the table as its owner)",
                    user, schema, quote_ident(d, schema), quote_ident(d, user)));
            }
        }
        return problems;
    }
    if (d == dialect::oracle) {
        return check_oracle_privileges(target, tables, needs_create);
    }
    // MySQL: privileges come from users, hosts, roles, databases, tables and columns. Rather
    // than re-deriving them, run statements that touch no row and see what the server refuses.
    // The account as the server resolved it ('user'@'host'), for the GRANT hints.
    std::string account = quote_literal(d, user);
    if (auto who = target.query("SELECT CURRENT_USER()"); who && !who->rows.empty()) {
        const std::string text = who->rows[0][0].value_or("");
        if (const size_t at = text.rfind('@'); at != std::string::npos) {
            account =
                quote_literal(d, text.substr(0, at)) + "@" + quote_literal(d, text.substr(at + 1));
        }
    }
    if (auto r = target.query("START TRANSACTION"); !r) {
        return std::move(r).error();
    }
    for (const table_pair& p : tables) {
        const std::string t = quote_ident(d, p.target.name);
        const std::string k = quote_ident(d, p.target.primary_key.front());
        const std::pair<const char*, std::string> probes[] = {
            {"SELECT", fmt::format("SELECT 1 FROM {} WHERE 1 = 0", t)},
            // Every column (SELECT *): naming only the key fails in strict mode with 1364
            // "Field ... doesn't have a default value" on any NOT NULL column without a default,
            // even for zero rows; generated columns are fine here (checked per row).
            {"INSERT", fmt::format("INSERT INTO {0} SELECT * FROM {0} WHERE 1 = 0", t)},
            {"UPDATE", fmt::format("UPDATE {} SET {} = {} WHERE 1 = 0", t, k, k)},
            {"DELETE", fmt::format("DELETE FROM {} WHERE 1 = 0", t)},
        };
        std::vector<std::string> missing;
        for (const auto& [privilege, sql] : probes) {
            if (auto r = target.query(sql); !r) {
                // 1142: command denied; 1143: column command denied.
                if (target.last_error_code() == "1142" || target.last_error_code() == "1143") {
                    missing.emplace_back(privilege);
                } else {
                    (void)target.query("ROLLBACK");
                    return std::move(r).error();
                }
            }
        }
        if (!missing.empty()) {
            const std::string list = fmt::format("{}", fmt::join(missing, ", "));
            problems.push_back(fmt::format(
                "--target: user {} cannot {} on {}: run GRANT {} ON {}.{} TO {};", user, list,
                p.target.display(), list, quote_ident(d, p.target.schema), t, account));
        }
    }
    (void)target.query("ROLLBACK");
    return problems;
}

}  // namespace molt::fetch
