#include "molt/emulator/crdb_databases.hpp"

#include <fmt/format.h>

#include "molt/emulator/crdb_names.hpp"

namespace molt::emulator::crdb {
namespace {

std::string raise(std::string_view sqlstate, std::string_view message) {
    return fmt::format("RAISE EXCEPTION USING MESSAGE = {}, ERRCODE = {};", quote_literal(message),
                       quote_literal(sqlstate));
}

// Whether any backend schema of the database with this prefix exists.
std::string database_exists_sql(const std::string& prefix) {
    return fmt::format("EXISTS (SELECT FROM pg_namespace WHERE starts_with(nspname::text, {}))",
                       quote_literal(prefix));
}

statement_result instead(std::string sql) {
    statement_result r;
    r.postgres_sql = std::move(sql);
    return r;
}

statement_result too_long(std::string_view what, const std::string& backend) {
    return statement_result::failure(
        "0A000", fmt::format("unimplemented: crdb-emulator keeps {} in the PostgreSQL schema "
                             "\"{}\", which is longer than PostgreSQL's {} bytes",
                             what, backend, max_identifier_bytes));
}

// The views of information_schema that name the database's own tables, columns and schemas.
std::string information_schema_views(const std::string& database, const std::string& prefix) {
    const std::string schema = quote_identifier(prefix + "information_schema");
    const std::string catalog = quote_literal(database) + "::text";
    const std::string starts = quote_literal(prefix);
    auto local = [&](std::string_view column) {
        return decode_sql(fmt::format("substr({}::text, length({}) + 1)", column, starts));
    };
    return fmt::format(
        "CREATE VIEW {0}.tables AS SELECT {1} AS table_catalog, {2} AS table_schema, "
        "t.table_name::text AS table_name, t.table_type::text AS table_type, "
        "t.is_insertable_into::text AS is_insertable_into, 1::int8 AS version FROM "
        "information_schema.tables AS t WHERE starts_with(t.table_schema::text, {3});\n"
        "CREATE VIEW {0}.columns AS SELECT {1} AS table_catalog, {4} AS table_schema, "
        "c.table_name::text AS table_name, c.column_name::text AS column_name, "
        "c.ordinal_position::int8 AS ordinal_position, c.column_default::text AS column_default, "
        "c.is_nullable::text AS is_nullable, c.data_type::text AS data_type, "
        "c.character_maximum_length::int8 AS character_maximum_length, "
        "c.numeric_precision::int8 AS numeric_precision, c.numeric_scale::int8 AS numeric_scale, "
        "c.datetime_precision::int8 AS datetime_precision, c.udt_name::text AS udt_name, "
        "c.is_generated::text AS is_generated, c.generation_expression::text AS "
        "generation_expression FROM information_schema.columns AS c WHERE "
        "starts_with(c.table_schema::text, {3});\n"
        "CREATE VIEW {0}.schemata AS SELECT {1} AS catalog_name, {5} AS schema_name, "
        "pg_get_userbyid(n.nspowner)::text AS schema_owner FROM pg_namespace AS n WHERE "
        "starts_with(n.nspname::text, {3});\n",
        schema, catalog, local("t.table_schema"), starts, local("c.table_schema"),
        local("n.nspname"));
}

statement_result create(const create_database& d, std::string_view current) {
    if (d.name.empty()) {
        return statement_result::failure("42602", "empty database name");
    }
    if (d.name == current) {
        return d.if_not_exists
                   ? statement_result{}
                   : statement_result::failure(
                         "42P04", fmt::format("database {} already exists", message_quote(d.name)));
    }
    const std::string prefix = database_prefix(d.name);
    if ((prefix + "information_schema").size() > max_identifier_bytes) {
        return too_long(fmt::format("database {}", message_quote(d.name)),
                        prefix + "information_schema");
    }
    const std::string exists =
        raise("42P04", fmt::format("database {} already exists", message_quote(d.name)));
    // Two sessions creating it at once: the later CREATE SCHEMA fails on the catalog's unique
    // index once the first commits.
    return instead(do_block(fmt::format(
        "BEGIN\nIF {} THEN\n{}\nEND IF;\nCREATE SCHEMA {};\nCREATE SCHEMA {};\n{}EXCEPTION WHEN "
        "duplicate_schema OR unique_violation THEN\n{}\nEND",
        database_exists_sql(prefix), d.if_not_exists ? "RETURN;" : exists,
        quote_identifier(prefix + "public"), quote_identifier(prefix + "information_schema"),
        information_schema_views(d.name, prefix), d.if_not_exists ? "NULL;" : exists)));
}

statement_result drop(const drop_database& d, std::string_view current) {
    if (d.name == current) {
        return statement_result::failure(
            "0A000", fmt::format("unimplemented: dropping \"{}\", the database crdb-emulator "
                                 "serves from (its --backend), is not emulated",
                                 d.name));
    }
    const std::string prefix = database_prefix(d.name);
    const std::string restrict_check =
        d.restricted ? fmt::format(
                           "IF EXISTS (SELECT FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = "
                           "c.relnamespace WHERE starts_with(n.nspname::text, {}) AND "
                           "n.nspname::text <> {} AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')) "
                           "THEN\n{}\nEND IF;\n",
                           quote_literal(prefix), quote_literal(prefix + "information_schema"),
                           raise("2BP01", fmt::format("database {} is not empty and RESTRICT was "
                                                      "specified",
                                                      message_quote(d.name))))
                     : std::string();
    // CockroachDB says nothing of what CASCADE drops: the notices stay quiet meanwhile.
    return instead(do_block(fmt::format(
        "DECLARE s text; level text := current_setting('client_min_messages');\nBEGIN\nIF NOT "
        "{} THEN\n{}\nEND IF;\n{}PERFORM set_config('client_min_messages', 'warning', true);\n"
        "FOR s IN SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname::text, {}) "
        "ORDER BY 1 LOOP\nEXECUTE format('DROP SCHEMA %I CASCADE', s);\nEND LOOP;\n"
        "PERFORM set_config('client_min_messages', level, true);\nEND",
        database_exists_sql(prefix),
        d.if_exists
            ? "RETURN;"
            : raise("3D000", fmt::format("database {} does not exist", message_quote(d.name))),
        restrict_check, quote_literal(prefix))));
}

statement_result create_in(const create_schema& cs, std::string_view current) {
    if (cs.database == current) {
        if (cs.schema.find('.') != std::string::npos) {
            return statement_result::failure(
                "0A000", fmt::format("unimplemented: schema names with a '.' (\"{}\") are kept "
                                     "for crdb-emulator's databases",
                                     cs.schema));
        }
        return instead(fmt::format("CREATE SCHEMA {}{}", cs.if_not_exists ? "IF NOT EXISTS " : "",
                                   quote_identifier(cs.schema)));
    }
    const std::string backend = backend_schema(cs.database, cs.schema);
    if (backend.size() > max_identifier_bytes) {
        return too_long(fmt::format("schema {}", display_name({cs.database, cs.schema})), backend);
    }
    const std::string exists =
        raise("42P06", fmt::format("schema {} already exists", message_quote(cs.schema)));
    return instead(do_block(fmt::format(
        "BEGIN\nIF NOT {} THEN\n{}\nEND IF;\nIF EXISTS (SELECT FROM pg_namespace WHERE nspname "
        "= {}) THEN\n{}\nEND IF;\nCREATE SCHEMA {};\nEXCEPTION WHEN duplicate_schema OR "
        "unique_violation THEN\n{}\nEND",
        database_exists_sql(database_prefix(cs.database)),
        raise("3D000", fmt::format("database {} does not exist", message_quote(cs.database))),
        quote_literal(backend), cs.if_not_exists ? "RETURN;" : exists, quote_identifier(backend),
        cs.if_not_exists ? "NULL;" : exists)));
}

statement_result show(const show_databases& s) {
    // The current database, then one row per emulated database (the part before the '.').
    return instead(fmt::format(
        "SELECT d.database_name, d.owner, NULL::text AS primary_region, NULL::text AS "
        "secondary_region, '{{}}'::text[] AS regions, NULL::text AS survival_goal{} FROM (SELECT "
        "current_database()::text AS database_name, pg_get_userbyid(datdba)::text AS owner, "
        "shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = "
        "current_database() UNION ALL SELECT {} AS database_name, "
        "min(pg_get_userbyid(nspowner)::text) AS owner, NULL::text AS comment FROM pg_namespace "
        "WHERE strpos(nspname::text, '.') > 0 GROUP BY 1) AS d ORDER BY d.database_name",
        s.with_comment ? ", d.comment" : "", decode_sql("split_part(nspname::text, '.', 1)")));
}

}  // namespace

std::optional<statement_result> execute_database_statement(const statement& s,
                                                           std::string_view current_database) {
    if (const auto* d = std::get_if<create_database>(&s)) {
        return create(*d, current_database);
    }
    if (const auto* d = std::get_if<drop_database>(&s)) {
        return drop(*d, current_database);
    }
    if (const auto* cs = std::get_if<create_schema>(&s)) {
        return create_in(*cs, current_database);
    }
    if (const auto* sd = std::get_if<show_databases>(&s)) {
        return show(*sd);
    }
    if (const auto* u = std::get_if<use_database>(&s)) {
        if (u->name == current_database) {
            return statement_result{};
        }
        return statement_result::failure(
            "0A000",
            fmt::format("unimplemented: switching the session to database {} is not "
                        "emulated: crdb-emulator sessions stay in \"{}\"; name other "
                        "databases' tables as {}.public.<table>",
                        message_quote(u->name), current_database, display_name({u->name})));
    }
    return std::nullopt;
}

}  // namespace molt::emulator::crdb
