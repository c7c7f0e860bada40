#pragma once
// Hand-built target schemas for the planner and golden SQL tests (no database).

#include <string>
#include <vector>

#include "molt/replicator/core/schema.hpp"

namespace molt::replicator::testing {

inline column_info col(std::string name, std::string sql_type, std::string type_name, int pk = -1,
                       bool generated = false, bool array = false) {
    column_info c;
    c.name = std::move(name);
    c.sql_type = std::move(sql_type);
    c.type_name = std::move(type_name);
    c.pk_position = pk;
    c.generated = generated;
    c.array = array;
    return c;
}

inline table_info table(std::vector<std::string> qualified, std::vector<column_info> columns,
                        std::vector<std::string> parents = {}) {
    table_info t;
    t.name = qualified.back();
    t.qualified.parts = std::move(qualified);
    t.columns = std::move(columns);
    t.parents = std::move(parents);
    order_primary_key_first(t);
    t.index_columns();
    return t;
}

}  // namespace molt::replicator::testing
