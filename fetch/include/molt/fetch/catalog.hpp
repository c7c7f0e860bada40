#pragma once
// Which tables fail back: listed on both sides, filtered, matched, checked.
//
// Filters are POSIX extended regular expressions matched against whole names (anchored:
// 'employees|payments' selects exactly those two tables), case-insensitively unless
// --case-sensitive. A table is kept when its schema matches --schema-filter, its name matches
// --table-filter and not --table-exclusion-filter. On a PostgreSQL target a source table
// matches the target table of the same schema and name; on MySQL (no schemas) the table of the
// same name in the target database. Kept tables must have the same primary key on both sides
// (column names, in order). Each table left out is reported with its reason.

#include <string>
#include <vector>

#include "molt/common/dialect.hpp"
#include "molt/common/result.hpp"
#include "molt/fetch/sql_client.hpp"

namespace molt::fetch {

struct table_info {
    std::string schema;  ///< MySQL: the database
    std::string name;
    std::vector<std::string> primary_key;  ///< column names in key order; empty: none

    [[nodiscard]] std::string display() const { return schema + "." + name; }
};

struct table_filters {
    std::string schema = ".*";
    std::string table = ".*";
    std::string exclusion;  ///< empty: none
    bool case_sensitive = false;
};

struct table_pair {
    table_info source;
    table_info target;
};

struct table_selection {
    std::vector<table_pair> tables;    ///< sorted by source schema, then name
    std::vector<std::string> skipped;  ///< "<table>: <reason>", one per table left out
};

/// Every base table with its primary key. Source: CockroachDB (information_schema of the
/// connected database); target: PostgreSQL (pg_catalog, so tables the user cannot read still
/// show), MySQL (the connected database) or Oracle (every user schema's tables the user can
/// see).
[[nodiscard]] result<std::vector<table_info>> list_tables(sql_client& db, bool is_source);

/// Applies the filters and matches source tables to target tables.
[[nodiscard]] result<table_selection> select_tables(const std::vector<table_info>& source,
                                                    const std::vector<table_info>& target,
                                                    const table_filters& filters,
                                                    dialect target_dialect);

/// Problems with the target user's rights on the selected target tables, each naming the GRANT
/// to run. `needs_create`: the schema must let the user create the replicator's progress table
/// (Oracle: the table must be there with rights on it, or the schema the user's own). Oracle's
/// rights are checked by parsing statements without running them; its missing DELETE is
/// logged as a warning, not returned.
[[nodiscard]] result<std::vector<std::string>> check_target_privileges(
    sql_client& target, const std::string& user, const std::vector<table_pair>& tables,
    bool needs_create);

}  // namespace molt::fetch
