#pragma once
// The tables a workload writes: names, columns and CockroachDB types, primary keys (integer
// columns), and single-column foreign keys to another table's primary key.
//
//   {"tables": [
//     {"name": "parents", "primary_key": ["id"],
//      "columns": [{"name": "id", "type": "INT8"}, {"name": "note", "type": "STRING"}]},
//     {"name": "children", "primary_key": ["id"],
//      "columns": [{"name": "id", "type": "INT8"}, {"name": "parent_id", "type": "INT8"}],
//      "foreign_keys": [{"column": "parent_id", "references": "parents"}]}]}
//
// Column types are CockroachDB or PostgreSQL names (INT8, STRING, DECIMAL(12,2), TIMESTAMPTZ,
// bigint[], ...); an ENUM column lists its labels: {"name": "e", "type": "mood",
// "labels": ["sad", "ok"]}. A column may be a UNIQUE secondary key: {"name": "email", "type":
// "STRING", "unique": true}. TEXT is a STRING that MySQL keeps as LONGTEXT (long values),
// where STRING becomes VARCHAR(255).

#include <optional>
#include <string>
#include <vector>

#include "molt/common/dialect.hpp"
#include "molt/common/result.hpp"
#include "molt/proto/crdb_types.hpp"

namespace molt::emulator {

struct column_spec {
    std::string name;
    std::string type;                 ///< as written in the spec
    proto::column_type family;        ///< what the generator makes
    int precision = 0, scale = 0;     ///< DECIMAL(p,s) and bit/varchar lengths (precision)
    std::vector<std::string> labels;  ///< ENUM labels
    bool primary_key = false;
    bool unique = false;  ///< a UNIQUE secondary key (the generator keeps its values unique)
};

/// A TEXT column (long values; LONGTEXT on MySQL).
[[nodiscard]] bool is_long_text(const column_spec& c);

struct foreign_key_spec {
    std::string column;
    std::string references;  ///< parent table (its single-column primary key)
};

struct table_spec {
    std::string name;
    std::vector<column_spec> columns;
    std::vector<std::string> primary_key;
    std::vector<foreign_key_spec> foreign_keys;

    [[nodiscard]] const column_spec* column(std::string_view name) const;
};

struct workload_spec {
    std::vector<table_spec> tables;  ///< parents before children

    [[nodiscard]] const table_spec* table(std::string_view name) const;
    /// Parses and checks a spec (types known, keys are integer columns, references exist);
    /// orders tables parents first.
    [[nodiscard]] static result<workload_spec> parse(std::string_view json_text);
    /// CREATE TABLE statements for a target (DROP first when `replace`).
    [[nodiscard]] std::vector<std::string> ddl(dialect d, bool replace) const;
};

/// A spec covering the types both PostgreSQL and MySQL store, with a parent/child foreign key.
[[nodiscard]] workload_spec default_spec();
/// The `rich` profile's tables: wl_rich_users with a UNIQUE email, long TEXT, JSONB, DATE,
/// TIMESTAMPTZ, TIMESTAMP and DECIMAL(38,10); wl_rich_notes (composite key, a foreign key to
/// wl_rich_users) with the same kinds of values.
[[nodiscard]] workload_spec rich_spec();

}  // namespace molt::emulator
